"""DL301 probabilities-into-logit-loss: softmax (or sigmoid) output fed to a loss that
applies it again.

``nn.CrossEntropyLoss``/``F.cross_entropy`` take raw logits and apply log-softmax
themselves; ``nn.BCEWithLogitsLoss``/``F.binary_cross_entropy_with_logits`` apply
sigmoid themselves. A loss call whose input is, by the value flow, the output of
softmax (resp. sigmoid) squashes the gradients. Losses computed where no gradient
flows (``torch.no_grad()``, validation and inference code) do not train anything and
are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.activations import (
    SIGMOID,
    SOFTMAX,
    Activation,
    activation_call,
    activation_of,
)
from dllint.analysis.evaluation import evaluation_reason
from dllint.analysis.losses import LossCall
from dllint.finding import Finding
from dllint.fixes import Fix
from dllint.rule import Rule

# loss kind -> (the activation it applies itself, its module class name)
LOGIT_LOSSES = {
    "cross_entropy": (SOFTMAX, "CrossEntropyLoss", "log-softmax"),
    "bce_with_logits": (SIGMOID, "BCEWithLogitsLoss", "sigmoid"),
}


class ProbabilitiesIntoLogitLoss(Rule):
    code = "DL301"
    name = "probabilities-into-logit-loss"
    summary = "softmax/sigmoid output passed to a loss that expects raw logits"
    severity = "error"
    fixable = True
    needs = (
        ("softmax", "Softmax", "sigmoid", "Sigmoid", "expit"),
        ("CrossEntropyLoss", "cross_entropy", "BCEWithLogitsLoss"),
    )

    def check(self) -> Iterator[Finding]:
        for loss in self.facts.losses.calls():
            if loss.kind not in LOGIT_LOSSES:
                continue
            applies, _, _ = LOGIT_LOSSES[loss.kind]
            activation = activation_of(self.facts, loss.input)
            if activation is None or activation.kind != applies:
                continue
            if evaluation_reason(self.facts, loss.call) is not None:
                continue  # no gradient flows: nothing is trained on it
            yield self.finding(
                loss.call,
                self.message(loss, activation),
                self.fix(loss),
                related=((activation.sources[0], f"{activation.label} is applied here"),),
            )

    def message(self, loss: LossCall, activation: Activation) -> str:
        _, class_name, applied = LOGIT_LOSSES[loss.kind]
        code = self.code_of
        if loss.functional or loss.callee is loss.call.func:  # F.cross_entropy, nn.X()(...)
            callee = f"`{code(loss.call.func)}`"
            name = class_name if not loss.functional else code(loss.call.func).rsplit(".", 1)[-1]
        else:
            callee = f"`{code(loss.call.func)}` (nn.{class_name})"
            name = class_name
        place = self.facts.place(activation.sources[0])
        kind = activation.kind
        twice = " (sigmoid then runs twice)" if kind == SIGMOID else ""
        return (
            f"{callee} receives `{code(loss.input)}`, the output of {activation.label} "
            f"({place}), but {name} applies {applied} itself{twice}, so the gradients "
            f"are squashed and training stalls; pass the raw logits and keep {kind} for "
            f"predictions."
        )

    def fix(self, loss: LossCall) -> Fix | None:
        """Drop a softmax (sigmoid) written inline as the loss's input:
        ``criterion(F.softmax(logits, dim=1), y)`` -> ``criterion(logits, y)``. Only
        when the call passes nothing but the input and ``dim`` (a ``dtype=`` would
        change more than the activation) and holds no comment."""
        applies, _, _ = LOGIT_LOSSES[loss.kind]
        inline = activation_call(self.facts, loss.input)
        if inline is None or inline.kind != applies or not inline.simple:
            return None
        code = self.facts.module.code_for_node
        if "#" in code(inline.call) and "#" not in code(inline.input):
            return None
        new = inline.input
        if getattr(new, "lpar", ()) and not isinstance(new, (cst.Tuple, cst.GeneratorExp)):
            new = new.with_changes(lpar=(), rpar=())
        return Fix(f"pass `{self.code_of(new)}` (drop the {inline.kind})", ((inline.call, new),))

    def code_of(self, node) -> str:
        text = " ".join(self.facts.module.code_for_node(node).split())
        return text if len(text) <= 40 else text[:37] + "..."
