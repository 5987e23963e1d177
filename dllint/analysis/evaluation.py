"""Code that runs without training gradients: evaluation, validation, inference.

A rule about what training *learns* (DL301: a loss on probabilities stalls training)
has nothing to say about a loss computed where no gradient flows. ``evaluation_reason``
tells why a node runs in such code, or None when it may train:

- inside ``with torch.no_grad()`` / ``torch.inference_mode()`` /
  ``torch.set_grad_enabled(False)``, or in a function decorated with them;
- in a LightningModule's ``validation_step`` / ``test_step`` / ``predict_step`` (and
  their ``on_...`` hooks), which Lightning runs without gradients;
- in a function named for evaluation (``evaluate``, ``validate``, ``val_epoch``,
  ``test``, ``predict``, ``inference``) that runs no backward pass itself;
- in a same-module function every caller of which is such code.

Names only ever excuse code here, never accuse it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.tree import argument, literal_value

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts
    from dllint.analysis.names import Names

NO_GRAD = {
    "torch.no_grad": "torch.no_grad()",
    "torch.autograd.no_grad": "torch.no_grad()",
    "torch.autograd.grad_mode.no_grad": "torch.no_grad()",
    "torch.inference_mode": "torch.inference_mode()",
    "torch.autograd.inference_mode": "torch.inference_mode()",
    "torch.autograd.grad_mode.inference_mode": "torch.inference_mode()",
}
SET_GRAD_ENABLED = ("torch.set_grad_enabled", "torch.autograd.set_grad_enabled")
LIGHTNING_EVAL_HOOK = re.compile(r"^(on_)?(validation|test|predict)_")
EVALUATION_WORDS = frozenset(
    {"eval", "evaluate", "evaluation", "val", "valid", "validate", "validation", "test",
     "testing", "predict", "prediction", "predictions", "inference", "infer"}
)  # fmt: skip
MAX_CALLER_DEPTH = 3


def evaluation_reason(facts: ModuleFacts, node: cst.CSTNode, depth: int = 0) -> str | None:
    """Why ``node`` runs without training gradients (``torch.no_grad()``,
    ``@torch.no_grad()``, ``validation_step()``, ``evaluate()``), or None."""
    tree = facts.tree
    for ancestor in tree.ancestors(node):
        if isinstance(ancestor, cst.With):
            for item in ancestor.items:
                how = grad_disabling(facts, item.item)
                if how is not None and not tree.contains(item, node):
                    return how
        elif isinstance(ancestor, cst.FunctionDef):
            reason = _function_reason(facts, ancestor)
            if reason is not None:
                return reason
    function = tree.function_of(node)
    if function is None or depth >= MAX_CALLER_DEPTH:
        return None
    callers = facts.values.call_sites(function)
    if not callers:
        return None
    reasons = [evaluation_reason(facts, call, depth + 1) for call in callers]
    return reasons[0] if all(reasons) else None


def grad_disabling(facts: ModuleFacts | Names, expr: cst.CSTNode) -> str | None:
    """``torch.no_grad()``-like context managers and decorators, as the code shows them.

    The one place that knows them: the evaluation regions of ``modes`` (DL501) and
    the no-gradient code of this module (DL301, DL403...) both ask here. ``facts``
    is anything with ``qualname`` (the module's facts, or its ``Names``)."""
    qualname = facts.qualname(expr.func if isinstance(expr, cst.Call) else expr)
    if qualname in NO_GRAD:
        if isinstance(expr, cst.Call):
            mode = argument(expr, 0, "mode")
            if mode is not None and literal_value(mode) is not True:
                return None
        return NO_GRAD[qualname]
    if qualname in SET_GRAD_ENABLED and isinstance(expr, cst.Call):
        mode = argument(expr, 0, "mode")
        if mode is not None and literal_value(mode) is False:
            return "torch.set_grad_enabled(False)"
    return None


def _function_reason(facts: ModuleFacts, function: cst.FunctionDef) -> str | None:
    for decorator in function.decorators:
        how = grad_disabling(facts, decorator.decorator)
        if how is not None:
            return f"@{how}"
    name = function.name.value
    owner = facts.classes.enclosing(function)
    if owner is not None and owner.is_lightning and LIGHTNING_EVAL_HOOK.match(name):
        return f"{name}()"
    words = {word.lower() for word in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name)}
    if words & EVALUATION_WORDS and not _runs_backward(facts, function):
        return f"{name}()"
    return None


def _runs_backward(facts: ModuleFacts, function: cst.FunctionDef) -> bool:
    is_backward = facts.training.is_backward
    return any(is_backward(call) for call in facts.tree.descendants(function, cst.Call))
