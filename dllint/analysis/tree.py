"""One walk over a module: parents, textual order and the nodes rules look for.

Every other fact in ``dllint.analysis`` is built from this index, so a module is
walked once however many rules run. Positions (line/column) come from libcst's
``PositionProvider`` only when a finding is actually reported.
"""

from __future__ import annotations

import inspect
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterator

import libcst as cst
from libcst import MaybeSentinel
from libcst.metadata import MetadataWrapper, PositionProvider

Scope = cst.Module | cst.FunctionDef | cst.Lambda | cst.ClassDef


# A field a node type visits, as libcst's own visiting code names it.
_VISITED_FIELD = re.compile(r"visit_\w+\(\s*self,\s*\"(\w+)\"")
_CHILD_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _child_fields(kind: type) -> tuple[str, ...] | None:
    """The fields of a node type that hold its children, in textual order.

    Read once per type from libcst's ``_visit_and_replace_children``, which visits
    them in that order. Walking those fields directly is several times faster than
    ``module.visit``, which rebuilds (and re-validates) every node it passes.
    None when libcst's source cannot be read (then ``node.children`` is used).
    """
    if kind not in _CHILD_FIELDS:
        try:
            source = inspect.getsource(kind._visit_and_replace_children)
        except (OSError, TypeError):
            _CHILD_FIELDS[kind] = None
        else:
            _CHILD_FIELDS[kind] = tuple(dict.fromkeys(_VISITED_FIELD.findall(source)))
    return _CHILD_FIELDS[kind]


def _index(index: TreeIndex, node: cst.CSTNode, parent: cst.CSTNode | None) -> None:
    """Record ``node`` and everything under it, in the order ``module.visit`` would."""
    index.order[node] = len(index.order)
    if parent is not None:
        index.parent[node] = parent
    index.by_type[type(node)].append(node)
    fields = _child_fields(type(node))
    if fields is None:
        for child in node.children:
            _index(index, child, node)
        fields = ()
    for name in fields:
        value = getattr(node, name)
        kind = type(value)
        if kind is tuple or kind is list:
            for child in value:
                _index(index, child, node)
        elif value is not None and kind is not MaybeSentinel:  # a node (isinstance
            _index(index, value, node)  # on the CSTNode ABC costs a third of the walk)
    index.last[node] = len(index.order) - 1


class TreeIndex:
    """Parents, pre-order positions and per-type node lists of one module."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.order: dict[cst.CSTNode, int] = {}
        self.last: dict[cst.CSTNode, int] = {}
        self.parent: dict[cst.CSTNode, cst.CSTNode] = {}
        self.by_type: dict[type, list[cst.CSTNode]] = defaultdict(list)
        _index(self, module, None)
        self._positions = None
        self._order_lists: dict[type, list[int]] = {}

    # -- navigation ---------------------------------------------------------------
    def nodes(self, *types: type) -> list[cst.CSTNode]:
        found: list[cst.CSTNode] = []
        for kind in types:
            found.extend(self.by_type.get(kind, ()))
        if len(types) > 1:
            found.sort(key=self.order.__getitem__)
        return found

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        node = self.parent.get(node)
        while node is not None:
            yield node
            node = self.parent.get(node)

    def contains(self, outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
        return self.order[outer] <= self.order[inner] <= self.last[outer]

    def descendants(self, node: cst.CSTNode, *types: type) -> list[cst.CSTNode]:
        """Nodes of the given types inside ``node`` (itself included), in textual order."""
        start, end = self.order[node], self.last[node]
        found: list[cst.CSTNode] = []
        for kind in types:
            nodes = self.by_type.get(kind)
            if not nodes:
                continue
            orders = self._orders(kind)
            found.extend(nodes[bisect_left(orders, start) : bisect_right(orders, end)])
        if len(types) > 1:
            found.sort(key=self.order.__getitem__)
        return found

    def _orders(self, kind: type) -> list[int]:
        """Pre-order positions of the nodes of one type (their lists are in that order)."""
        orders = self._order_lists.get(kind)
        if orders is None:
            orders = [self.order[n] for n in self.by_type[kind]]
            self._order_lists[kind] = orders
        return orders

    def before(self, first: cst.CSTNode, second: cst.CSTNode) -> bool:
        """True when ``first`` ends before ``second`` starts in the text."""
        return self.last[first] < self.order[second]

    def scope_of(self, node: cst.CSTNode) -> Scope:
        """The function (or lambda) whose body holds ``node``, else the module.

        Class bodies are skipped, as Python does for names used inside methods.
        """
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda)):
                return ancestor
        return self.module

    def function_of(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.FunctionDef):
                return ancestor
        return None

    def class_of(self, node: cst.CSTNode) -> cst.ClassDef | None:
        """The class whose method holds ``node`` (the nearest enclosing class)."""
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.ClassDef):
                return ancestor
        return None

    def statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        """The simple or compound statement that holds ``node``."""
        current = node
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                return ancestor
            current = ancestor
        return current

    # -- positions ----------------------------------------------------------------
    def span(self, node: cst.CSTNode) -> tuple[tuple[int, int], tuple[int, int]]:
        """1-based (line, column) of the node's start and end, as an editor shows them."""
        if self._positions is None:
            wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
            self._positions = wrapper.resolve(PositionProvider)
        position = self._positions[node]
        return (
            (position.start.line, position.start.column + 1),
            (position.end.line, position.end.column + 1),
        )


def dotted(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def call_name(call: cst.Call) -> str | None:
    """The method or function name a call uses (``step`` for ``opt.step()``)."""
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def argument(call: cst.Call, position: int, name: str | None = None) -> cst.BaseExpression | None:
    """The argument given at ``position`` or as keyword ``name``."""
    if name is not None:
        found = keyword(call, name)
        if found is not None:
            return found.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if position < len(positional):
        return positional[position].value
    return None


def literal_value(node: cst.CSTNode):
    """The Python value of a simple literal (numbers, strings, True/False/None, -n)."""
    if isinstance(node, cst.Integer):
        return int(node.value.replace("_", ""), 0)
    if isinstance(node, cst.Float):
        return float(node.value.replace("_", ""))
    if isinstance(node, cst.SimpleString):
        try:
            return node.evaluated_value
        except Exception:
            return None
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    if (
        isinstance(node, cst.UnaryOperation)
        and isinstance(node.operator, cst.Minus)
        and isinstance(node.expression, (cst.Integer, cst.Float))
    ):
        return -literal_value(node.expression)
    return None
