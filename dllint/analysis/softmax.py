"""Softmax spelled the long way: a log taken of stored probabilities, and
``exp(x) / exp(x).sum()``; plus the local name of ``torch.nn.functional``.

Used by DL303 (unstable log of softmax). Everything here is structural and
conservative: a name counts as "only used by the log" when no other occurrence of the
name exists in its scope, and a hand-written softmax needs the same ``x`` (as written)
in the numerator's and the denominator's ``exp``, with no max-shift in ``x``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.activations import EXP_FUNCTIONS, _Finder
from dllint.analysis.tree import argument

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

FUNCTIONAL = "torch.nn.functional"
SUM_FUNCTIONS = ("torch.sum",)
SQUARE_FUNCTIONS = ("torch.square",)
POW_FUNCTIONS = ("torch.pow",)
LINSPACE_FUNCTIONS = ("torch.linspace",)
ARANGE_FUNCTIONS = ("torch.arange",)


def functional_alias(facts: ModuleFacts, use: cst.CSTNode) -> str | None:
    """The local name bound to ``torch.nn.functional`` that is visible at ``use``
    (``F`` after ``import torch.nn.functional as F``, ``fn`` after ``from torch.nn
    import functional as fn``), or None."""
    names = facts.names
    candidates = sorted(
        {
            binding.name
            for scope in names.scopes.values()
            for bindings in scope.by_name.values()
            for binding in bindings
            if binding.kind == "import" and binding.qualname == FUNCTIONAL
        }
    )
    for name in candidates:
        binding = names.binding_at(name, use)
        if binding is not None and binding.kind == "import" and binding.qualname == FUNCTIONAL:
            return name
    return None


def only_use(facts: ModuleFacts, name: cst.Name) -> cst.BaseExpression | None:
    """The value ``name`` was assigned when ``name`` (at this use) is the ONLY read of
    that variable in its scope and the assignment runs unconditionally before it."""
    binding = facts.names.binding_at(name.value, name)
    if binding is None or binding.kind != "assign" or binding.path or binding.value is None:
        return None
    if _Finder(facts)._conditionally_bound(name):
        return None
    tree = facts.tree
    scope = binding.scope
    if isinstance(scope, cst.ClassDef):
        return None
    region = tree.module if scope is tree.module else scope
    for other in tree.descendants(region, cst.Name):
        if other is name or other is binding.node or other.value != name.value:
            continue
        if _is_label(tree, other):
            continue
        return None
    return binding.value


def _is_label(tree, node: cst.Name) -> bool:
    """An attribute name (``obj.p``) or a keyword (``f(p=1)``), not a variable."""
    parent = tree.parent.get(node)
    if isinstance(parent, cst.Attribute) and parent.attr is node:
        return True
    if isinstance(parent, cst.Arg) and parent.keyword is node:
        return True
    return False


def exp_argument(facts: ModuleFacts, node: cst.CSTNode) -> cst.BaseExpression | None:
    """``x`` of ``torch.exp(x)`` or of the tensor method ``x.exp()``."""
    if not isinstance(node, cst.Call):
        return None
    func = node.func
    if facts.qualname(func) in EXP_FUNCTIONS:
        if len(node.args) == 1 and not node.args[0].star:
            return argument(node, 0, "input")
        return None
    if isinstance(func, cst.Attribute) and func.attr.value == "exp" and not node.args:
        if facts.qualname(func) is None and _Finder(facts)._tensor_receiver(node):
            return func.value
    return None


def handwritten_softmax(
    facts: ModuleFacts,
) -> Iterator[tuple[cst.BinaryOperation, cst.BaseExpression, cst.BaseExpression | None]]:
    """``(division, x, dim)`` for ``torch.exp(x) / torch.exp(x).sum(...)`` (and
    ``torch.sum(torch.exp(x), ...)``, ``x.exp()``, ``e / e.sum(...)`` with
    ``e = torch.exp(x)``) where ``x`` is not shifted by a subtraction (the stable
    ``exp(x - x.max())`` idiom)."""
    for division in facts.tree.nodes(cst.BinaryOperation):
        if not isinstance(division.operator, cst.Divide):
            continue
        summed = _summed(facts, division.right)
        if summed is None:
            continue
        top = _exp_key(facts, division.left)
        bottom = _exp_key(facts, summed)
        if top is None or bottom is None or top[0] != bottom[0]:
            continue
        x = top[1]
        if _shifted(facts, x):
            continue
        yield (
            division,
            x,
            argument(division.right, 1 if _is_function(facts, division.right) else 0, "dim"),
        )


def _is_function(facts: ModuleFacts, call: cst.Call) -> bool:
    return facts.qualname(call.func) in SUM_FUNCTIONS


def _summed(facts: ModuleFacts, node: cst.CSTNode) -> cst.BaseExpression | None:
    """``S`` of ``S.sum(...)`` or ``torch.sum(S, ...)``."""
    if not isinstance(node, cst.Call):
        return None
    func = node.func
    if facts.qualname(func) in SUM_FUNCTIONS:
        return argument(node, 0, "input")
    if isinstance(func, cst.Attribute) and func.attr.value == "sum":
        if facts.qualname(func) is None:
            return func.value
    return None


def _exp_key(facts: ModuleFacts, node: cst.CSTNode):
    """What an ``exp`` term is, comparable between numerator and denominator: the
    normalised code of ``x``, or the binding of a name holding ``exp(x)``."""
    x = exp_argument(facts, node)
    if x is not None:
        return (("code", _code(facts, x)), x)
    if isinstance(node, cst.Name):
        binding = facts.names.binding_at(node.value, node)
        if binding is None or binding.kind != "assign" or binding.path:
            return None
        if _Finder(facts)._conditionally_bound(node):
            return None
        x = exp_argument(facts, binding.value)
        if x is not None:
            return (("binding", id(binding.node)), x)
    return None


def _shifted(facts: ModuleFacts, x: cst.BaseExpression) -> bool:
    """``x - x.max(...)`` (or a name assigned one, or ``x -= ...``): the stable form.
    Also a negated square (``exp(-0.5 * (k / s) ** 2)``, a Gaussian kernel
    normalised to sum 1): it is never positive, so it cannot overflow."""
    if isinstance(x, cst.BinaryOperation) and isinstance(x.operator, cst.Subtract):
        return True
    if _negated(x) and _squares(facts, x):
        return True
    if _non_positive_range(facts, x):
        return True
    if isinstance(x, cst.Name):
        binding = facts.names.binding_at(x.value, x)
        if binding is not None and binding.kind == "augassign":
            return True
        if binding is not None and binding.kind == "assign":
            value = binding.value
            if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Subtract):
                return True
    return False


def _negated(x: cst.BaseExpression) -> bool:
    """``-e`` or a product/quotient with a negated or negative factor first."""
    if isinstance(x, cst.UnaryOperation) and isinstance(x.operator, cst.Minus):
        return True
    if isinstance(x, cst.BinaryOperation) and isinstance(x.operator, (cst.Multiply, cst.Divide)):
        return _negated(x.left) or (isinstance(x.operator, cst.Multiply) and _negated(x.right))
    return False


def _squares(facts: ModuleFacts, x: cst.BaseExpression) -> bool:
    """``x`` holds a square: ``e ** 2``, ``e.pow(2)``, ``e.square()``, ``torch.pow(e, 2)``,
    ``torch.square(e)``."""
    for node in facts.tree.descendants(x, cst.BinaryOperation, cst.Call):
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, cst.Power) and _is_two(node.right):
                return True
            continue
        qualname = facts.qualname(node.func)
        if qualname in SQUARE_FUNCTIONS:
            return True
        if qualname in POW_FUNCTIONS:
            exponent = argument(node, 1, "exponent")
            if exponent is not None and _is_two(exponent):
                return True
        elif qualname is None and isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            if method == "square" or (
                method == "pow" and node.args and _is_two(node.args[0].value)
            ):
                return True
    return False


def _non_positive_range(facts: ModuleFacts, x: cst.BaseExpression, depth: int = 0) -> bool:
    """``x`` is a range whose values cannot be positive: ``torch.linspace(-eta, 0, n)``,
    ``torch.arange(-n, 0)`` (exponential decay weights normalised to sum 1), or a name
    assigned one. Its ``exp`` lies in (0, 1] and cannot overflow."""
    if isinstance(x, cst.Name) and depth < 3:
        binding = facts.names.binding_at(x.value, x)
        if binding is None or binding.kind != "assign" or binding.path:
            return False
        return binding.value is not None and _non_positive_range(facts, binding.value, depth + 1)
    if not isinstance(x, cst.Call) or any(arg.star for arg in x.args):
        return False
    qualname = facts.qualname(x.func)
    if qualname in LINSPACE_FUNCTIONS:
        ends = (argument(x, 0, "start"), argument(x, 1, "end"))
        return all(end is not None and _non_positive(end) for end in ends)
    if qualname in ARANGE_FUNCTIONS:
        end = argument(x, 1, "end")
        return end is not None and _non_positive(end)  # values below the end
    return False


def _non_positive(node: cst.BaseExpression) -> bool:
    """A literal ``0``/``-1.5`` or a negated name or number (``-eta``, ``-n``)."""
    if isinstance(node, (cst.Integer, cst.Float)):
        return float(node.value.replace("_", "")) == 0
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return isinstance(node.expression, (cst.Name, cst.Attribute, cst.Integer, cst.Float))
    return False


def _is_two(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Integer) and node.value == "2"


def _code(facts: ModuleFacts, node: cst.CSTNode) -> str:
    return " ".join(facts.module.code_for_node(node).split())
