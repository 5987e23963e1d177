"""DL104 double-scaling: pixels already scaled to [0, 1] by ToTensor() divided by 255 again."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.transforms import transforms_of
from dllint.analysis.tree import argument, literal_value
from dllint.finding import Finding
from dllint.rule import Rule

DIVIDE_METHODS = {"div", "div_", "true_divide", "true_divide_", "divide", "divide_"}
DIVIDE_FUNCTIONS = {"torch.div", "torch.true_divide", "torch.divide"}
# Methods that keep a tensor's values (only its device or float type changes).
SAME_VALUES = {"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "contiguous"}


class DoubleScaling(Rule):
    code = "DL104"
    name = "double-scaling"
    summary = "tensors already scaled to [0, 1] by ToTensor() are divided by 255 again"
    severity = "error"
    needs = (("255",), ("ToTensor", "ToDtype", "ConvertImageDtype"))

    def check(self) -> Iterator[Finding]:
        transforms = transforms_of(self.facts)
        for node, operand in self._divisions():
            sources = transforms.sample_item_source(operand, through=_same_values)
            if not sources:
                continue
            scalings = []
            for made, item in sources:
                steps = transforms.steps(made.transform) if made.item == item else None
                scaling = transforms.scales_to_unit(steps) if steps else None
                if scaling is None:
                    break
                scalings.append((made, scaling))
            else:
                yield self.finding(node, self._message(node, operand, scalings[0]))

    def _divisions(self) -> Iterator[tuple[cst.CSTNode, cst.BaseExpression]]:
        """``x / 255``, ``x /= 255``, ``x * (1 / 255)``, ``x.div(255)``, ``torch.div(x, 255)``
        with what is divided."""
        tree = self.facts.tree
        for node in tree.nodes(cst.BinaryOperation):
            if isinstance(node.operator, cst.Divide) and _is_255(node.right):
                yield node, node.left
            elif isinstance(node.operator, cst.Multiply) and _is_reciprocal(node.right):
                yield node, node.left
        for node in tree.nodes(cst.AugAssign):
            if isinstance(node.operator, cst.DivideAssign) and _is_255(node.value):
                yield node, node.target
        for call in tree.nodes(cst.Call):
            func = call.func
            qualname = self.facts.qualname(func)
            if isinstance(func, cst.Attribute) and func.attr.value in DIVIDE_METHODS:
                if qualname is None and _is_255(argument(call, 0, "other")):
                    yield call, func.value
            if qualname in DIVIDE_FUNCTIONS:
                divided = argument(call, 0, "input")
                if divided is not None and _is_255(argument(call, 1, "other")):
                    yield call, divided

    def _message(self, node, operand, found) -> str:
        made, scaling = found
        code = self.facts.module.code_for_node
        step = code(scaling.call)
        dataset = code(made.call.func)
        return (
            f"`{code(operand)}` comes from a `{dataset}` dataset whose transform already "
            f"scales pixels to [0, 1] with `{step}`, so dividing by 255 again shrinks every "
            f"input 255-fold and the model trains on nearly constant images; drop the "
            f"division"
        )


def _same_values(node: cst.CSTNode) -> cst.CSTNode | None:
    """``x.to(device)``, ``x.float()``: the same values as ``x``."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        if node.func.attr.value in SAME_VALUES:
            return node.func.value
    return None


def _is_255(node: cst.CSTNode | None) -> bool:
    if node is None:
        return False
    value = literal_value(node)
    return value == 255 and not isinstance(value, bool)


def _is_reciprocal(node: cst.CSTNode) -> bool:
    """``1 / 255`` or ``1.0 / 255.0``."""
    return (
        isinstance(node, cst.BinaryOperation)
        and isinstance(node.operator, cst.Divide)
        and literal_value(node.left) == 1
        and _is_255(node.right)
    )
