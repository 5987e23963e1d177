"""One walk over a module: parents, textual order and the nodes rules look for.

Every other fact in ``dllint.analysis`` is built from this index, so a module is
walked once however many rules run. Positions (line/column) come from libcst's
``PositionProvider`` only when a finding is actually reported.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterator

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

Scope = cst.Module | cst.FunctionDef | cst.Lambda | cst.ClassDef


class _Indexer(cst.CSTVisitor):
    def __init__(self, index: TreeIndex) -> None:
        self.index = index
        self.stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        index = self.index
        index.order[node] = len(index.order)
        if self.stack:
            index.parent[node] = self.stack[-1]
        index.by_type[type(node)].append(node)
        self.stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()
        self.index.last[original_node] = len(self.index.order) - 1


class TreeIndex:
    """Parents, pre-order positions and per-type node lists of one module."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.order: dict[cst.CSTNode, int] = {}
        self.last: dict[cst.CSTNode, int] = {}
        self.parent: dict[cst.CSTNode, cst.CSTNode] = {}
        self.by_type: dict[type, list[cst.CSTNode]] = defaultdict(list)
        module.visit(_Indexer(self))
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
