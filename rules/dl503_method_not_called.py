"""DL503 method-not-called: ``model.eval`` written without parentheses does nothing.

A bare ``model.eval``, ``optimizer.zero_grad``, ``optimizer.step``, ``loss.backward``
or ``scheduler.step`` statement only looks the method up; the mode switch, the
clearing, the update or the backward pass never happens, and nothing complains.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.classes import ClassInfo
from dllint.analysis.syntax import FRAMEWORK_ROOTS, method_self, syntax_of
from dllint.finding import Finding
from dllint.fixes import Fix
from dllint.rule import Rule

METHODS = ("eval", "train", "zero_grad", "step", "backward")
MODULE_METHODS = ("eval", "train", "zero_grad")  # what every nn.Module has

EFFECTS = {
    "eval": (
        "{owner} stays in training mode: dropout stays active and batch norm keeps "
        "updating its running statistics"
    ),
    "train": (
        "{owner} is not put back into training mode (after an `eval()`, dropout stays off "
        "and batch norm statistics stay frozen)"
    ),
    "zero_grad": (
        "the gradients are never cleared and each step applies the sum of all earlier gradients"
    ),
    "backward": (
        "no gradients are computed and the optimizer step that follows has nothing new to apply"
    ),
    "step:optimizer": "the optimizer never updates the weights",
    "step:scheduler": "the learning rate never changes",
    "step": (
        "nothing is stepped (an optimizer never updates the weights, a scheduler never "
        "changes the learning rate)"
    ),
}


class MethodNotCalled(Rule):
    code = "DL503"
    name = "method-not-called"
    summary = "training method such as model.eval or optimizer.step named but not called"
    severity = "error"
    fixable = True
    needs = (
        (".eval", ".train", ".zero_grad", ".step", ".backward"),
        FRAMEWORK_ROOTS,
    )

    def check(self) -> Iterator[Finding]:
        syntax = syntax_of(self.facts)
        if not syntax.imports_framework:
            return
        for statement in self.facts.tree.nodes(cst.Expr):
            attribute = statement.value
            if not isinstance(attribute, cst.Attribute):
                continue
            method = attribute.attr.value
            if method not in METHODS or method in syntax.data_attributes:
                continue
            if self.facts.qualname(attribute) is not None:
                continue  # a module's attribute (``torch.nn.Module.train``), not a method
            kind = self.receiver_kind(attribute.value, method)
            if kind is None:
                continue
            text = self.facts.module.code_for_node(attribute.with_changes(lpar=(), rpar=()))
            yield self.finding(
                statement,
                self.message(text, attribute, method, kind),
                fix=Fix(f"call it: `{text}()`", ((attribute, cst.Call(func=attribute)),)),
            )

    def receiver_kind(self, receiver: cst.BaseExpression, method: str) -> str | None:
        """ "optimizer", "scheduler", "module" or "" (plausible, unknown) when the receiver
        can have this method; None when it is known not to be a training object."""
        info = self.own_class(receiver)
        if info is not None:
            if info.method(method) is not None:
                return "module" if info.is_module else ""
            if info.is_module and method in MODULE_METHODS:
                return "module"
            return None
        kinds = set()
        for leaf in self.facts.values.origins(receiver):
            if leaf.path or not isinstance(leaf.node, cst.Call):
                return ""
            qualname = self.facts.qualname(leaf.node.func)
            if qualname is None:
                return ""
            root = qualname.split(".")[0]
            if root not in FRAMEWORK_ROOTS:
                return None  # ``env = gym.make(...)``: some other library's object
            if qualname.startswith("torch.optim.lr_scheduler."):
                kinds.add("scheduler")
            elif qualname.startswith("torch.optim."):
                kinds.add("optimizer")
            else:
                kinds.add("")
        return kinds.pop() if len(kinds) == 1 else ""

    def own_class(self, receiver: cst.BaseExpression) -> ClassInfo | None:
        """The same-file class of ``self`` in its methods, or of a known instance."""
        facts = self.facts
        if isinstance(receiver, cst.Name):
            function = facts.tree.function_of(receiver)
            if function is not None and receiver.value == method_self(facts, function):
                return facts.classes.enclosing(function)
        return facts.values.instance_class(receiver)

    def message(self, text: str, attribute: cst.Attribute, method: str, kind: str) -> str:
        owner = f"`{self.facts.module.code_for_node(attribute.value)}`"
        key = f"step:{kind}" if method == "step" and kind in ("optimizer", "scheduler") else method
        effect = EFFECTS[key].format(owner=owner)
        return (
            f"`{text}` is missing its parentheses: the statement only looks the method up, "
            f"so {effect}; write `{text}()`."
        )
