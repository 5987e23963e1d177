"""Loss calls: which calls compute a known PyTorch loss, and their input and target.

``criterion(out, y)`` is a loss call when every value ``criterion`` can hold is the
same ``torch.nn`` loss module (``nn.CrossEntropyLoss()``, possibly through aliases,
``self.`` attributes, parameters or ``.to(device)``); ``F.mse_loss(out, y)`` is one
by its qualified name.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from dllint.analysis.tree import argument

LOSS_MODULES = {
    "CrossEntropyLoss": "cross_entropy",
    "NLLLoss": "nll",
    "MSELoss": "mse",
    "L1Loss": "l1",
    "SmoothL1Loss": "smooth_l1",
    "HuberLoss": "huber",
    "BCELoss": "bce",
    "BCEWithLogitsLoss": "bce_with_logits",
    "KLDivLoss": "kl_div",
    "PoissonNLLLoss": "poisson_nll",
    "GaussianNLLLoss": "gaussian_nll",
    "SoftMarginLoss": "soft_margin",
    "MultiLabelSoftMarginLoss": "multilabel_soft_margin",
}
LOSS_FUNCTIONS = {
    "cross_entropy": "cross_entropy",
    "nll_loss": "nll",
    "mse_loss": "mse",
    "l1_loss": "l1",
    "smooth_l1_loss": "smooth_l1",
    "huber_loss": "huber",
    "binary_cross_entropy": "bce",
    "binary_cross_entropy_with_logits": "bce_with_logits",
    "kl_div": "kl_div",
    "poisson_nll_loss": "poisson_nll",
    "gaussian_nll_loss": "gaussian_nll",
    "soft_margin_loss": "soft_margin",
    "multilabel_soft_margin_loss": "multilabel_soft_margin",
}
MODULE_PREFIXES = ("torch.nn.", "torch.nn.modules.loss.")
FUNCTION_PREFIXES = ("torch.nn.functional.", "torch.")

# Losses that compare input and target elementwise (shapes must match).
ELEMENTWISE = frozenset({"mse", "l1", "smooth_l1", "huber", "bce", "bce_with_logits"})


@dataclass(frozen=True)
class LossCall:
    call: cst.Call
    kind: str  # e.g. "cross_entropy", "mse", "bce_with_logits"
    functional: bool
    input: cst.BaseExpression | None
    target: cst.BaseExpression | None
    callee: cst.CSTNode  # the loss module construction, or the function expression


def loss_kind_of_name(qualname: str | None, table: dict, prefixes: tuple) -> str | None:
    if not qualname:
        return None
    for prefix in prefixes:
        if qualname.startswith(prefix):
            rest = qualname[len(prefix) :]
            if rest in table:
                return table[rest]
    return None


class Losses:
    def __init__(self, facts) -> None:
        self.facts = facts
        self._calls: list[LossCall] | None = None
        # A loss module is built only where the text names its class: without one,
        # no called name needs its values followed (that can cost seconds per file).
        self._names_a_module = any(name in facts.text for name in LOSS_MODULES)

    def calls(self) -> list[LossCall]:
        if self._calls is None:
            self._calls = [
                found for call in self.facts.calls() if (found := self.loss_call(call)) is not None
            ]
        return self._calls

    def loss_call(self, call: cst.Call) -> LossCall | None:
        facts = self.facts
        kind = loss_kind_of_name(facts.qualname(call.func), LOSS_FUNCTIONS, FUNCTION_PREFIXES)
        if kind is not None:
            return LossCall(
                call, kind, True, argument(call, 0, "input"), argument(call, 1, "target"), call.func
            )
        constructions = self.loss_modules(call.func)
        if constructions is None:
            return None
        kind, construction = constructions
        return LossCall(
            call, kind, False, argument(call, 0, "input"), argument(call, 1, "target"), construction
        )

    def loss_modules(self, expr: cst.CSTNode) -> tuple[str, cst.Call] | None:
        """(kind, construction) when every value ``expr`` may hold is one loss module kind."""
        facts = self.facts
        if isinstance(expr, cst.Call):  # constructed and called at once: nn.MSELoss()(a, b)
            kind = loss_kind_of_name(facts.qualname(expr.func), LOSS_MODULES, MODULE_PREFIXES)
            return (kind, expr) if kind is not None else None
        if not isinstance(expr, (cst.Name, cst.Attribute)) or not self._names_a_module:
            return None
        kinds = set()
        construction = None
        for leaf in facts.values.origins(expr, through=facts.values.module_passthrough):
            node = leaf.node
            if not leaf.path and isinstance(node, cst.Name) and node.value == "None":
                continue  # a placeholder (``self.loss_op = None``): calling it would raise
            if leaf.path or not isinstance(node, cst.Call):
                return None
            kind = loss_kind_of_name(facts.qualname(node.func), LOSS_MODULES, MODULE_PREFIXES)
            if kind is None:
                return None
            kinds.add(kind)
            construction = node
        if len(kinds) != 1 or construction is None:
            return None
        return kinds.pop(), construction
