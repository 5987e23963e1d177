"""DL302 logits-into-probability-loss: raw scores fed to a loss that expects
(log-)probabilities, or ReLU-clipped scores fed to a loss that expects logits.

``nn.NLLLoss``/``F.nll_loss`` take log-probabilities and ``nn.BCELoss``/
``F.binary_cross_entropy`` take probabilities; given the raw output of a final
``nn.Linear``/``nn.Conv`` layer, NLL is just minus the target score (unbounded below)
and BCE sees values outside [0, 1]. ``nn.CrossEntropyLoss``/``BCEWithLogitsLoss`` take
raw logits; a ReLU on the final output clips every negative logit to zero. Only
values KNOWN to be such outputs are reported (see ``raw_logits_of`` and
``activation_of``); losses computed where no gradient flows are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.activations import RELU, activation_of, raw_logits_of
from dllint.analysis.evaluation import evaluation_reason
from dllint.analysis.losses import LossCall
from dllint.finding import Finding
from dllint.rule import Rule

# loss kind -> (module class name, what it expects, what goes wrong, the fix)
PROBABILITY_LOSSES = {
    "nll": (
        "NLLLoss",
        "log-probabilities",
        "the loss is just minus the target's score, which falls without bound while "
        "nothing is learned about the other classes",
        "apply `F.log_softmax(..., dim=1)` first, or use `nn.CrossEntropyLoss` on the logits",
    ),
    "bce": (
        "BCELoss",
        "probabilities in [0, 1]",
        "scores outside that range make it fail (a device-side assert on CUDA) or train on "
        "meaningless values",
        "use `nn.BCEWithLogitsLoss` on the logits, which applies the sigmoid stably",
    ),
}
LOGIT_LOSSES = {
    "cross_entropy": (
        "CrossEntropyLoss",
        "every negative logit becomes 0, so those classes get no gradient and no class "
        "can be pushed below the others",
    ),
    "bce_with_logits": (
        "BCEWithLogitsLoss",
        "the logit is never below 0, so the predicted probability never drops below 0.5 "
        "and negatives cannot be learned",
    ),
}


class LogitsIntoProbabilityLoss(Rule):
    code = "DL302"
    name = "logits-into-probability-loss"
    summary = "raw logits passed to a loss that expects probabilities, or ReLU before a logit loss"
    severity = "error"
    needs = (
        ("Linear", "linear", "Conv", "conv", "relu", "ReLU"),
        (
            "NLLLoss", "nll_loss", "BCELoss", "binary_cross_entropy", "CrossEntropyLoss",
            "cross_entropy", "BCEWithLogitsLoss",
        ),
    )  # fmt: skip

    def check(self) -> Iterator[Finding]:
        for loss in self.facts.losses.calls():
            if loss.kind in PROBABILITY_LOSSES:
                found = self.raw_logits(loss)
            elif loss.kind in LOGIT_LOSSES:
                found = self.relu_output(loss)
            else:
                continue
            if found is None or evaluation_reason(self.facts, loss.call) is not None:
                continue
            message, source, label = found
            yield self.finding(loss.call, message, related=((source, f"{label} is here"),))

    def raw_logits(self, loss: LossCall) -> tuple[str, cst.CSTNode, str] | None:
        logits = raw_logits_of(self.facts, loss.input)
        if logits is None:
            return None
        class_name, expects, effect, fix = PROBABILITY_LOSSES[loss.kind]
        place = self.facts.place(logits.sources[0])
        message = (
            f"{self.callee(loss, class_name)} receives `{self.code_of(loss.input)}`, the raw "
            f"output of {logits.label} ({place}), but {class_name} expects {expects}: "
            f"{effect}; {fix}."
        )
        return message, logits.sources[0], f"the raw output of {logits.label}"

    def relu_output(self, loss: LossCall) -> tuple[str, cst.CSTNode, str] | None:
        activation = activation_of(self.facts, loss.input)
        if activation is None or activation.kind != RELU:
            return None
        class_name, effect = LOGIT_LOSSES[loss.kind]
        place = self.facts.place(activation.sources[0])
        message = (
            f"{self.callee(loss, class_name)} receives `{self.code_of(loss.input)}`, the "
            f"output of {activation.label} ({place}), but {class_name} expects raw "
            f"logits: {effect}; remove the final ReLU."
        )
        return message, activation.sources[0], f"{activation.label}"

    def callee(self, loss: LossCall, class_name: str) -> str:
        code = self.code_of(loss.call.func)
        if loss.functional or loss.callee is loss.call.func:
            return f"`{code}`"
        return f"`{code}` (nn.{class_name})"

    def code_of(self, node) -> str:
        text = " ".join(self.facts.module.code_for_node(node).split())
        return text if len(text) <= 40 else text[:37] + "..."
