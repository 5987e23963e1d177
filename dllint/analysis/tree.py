"""One walk over a module: parents, textual order and the nodes rules look for.

Every other fact in ``dllint.analysis`` is built from this index, so a module is
walked once however many rules run. Positions (line/column) come from libcst's
``PositionProvider`` only when a finding is actually reported.
"""

from __future__ import annotations

import ast
import inspect
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterator
from functools import partial

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

    def __init__(self, module: cst.Module, text: str | None = None) -> None:
        self.module = module
        self.text = text  # the source, when known: finds statements' lines cheaply
        self.order: dict[cst.CSTNode, int] = {}
        self.last: dict[cst.CSTNode, int] = {}
        self.parent: dict[cst.CSTNode, cst.CSTNode] = {}
        self.by_type: dict[type, list[cst.CSTNode]] = defaultdict(list)
        _index(self, module, None)
        self._positions: dict | None = None
        self._shifts: dict | None = None
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
        """1-based (line, column) of the node's start and end, as an editor shows them.

        Positions are resolved for the one top-level statement holding the node (a
        module of that statement alone), shifted by the lines before it: a finding in
        a 180k-line file does not pay for the positions of the whole file.
        """
        top = self._top_statement(node)
        shift = self._line_shift(top)
        if shift is not None:
            position = self._positions_of(top)[node]
        else:  # the module itself, or a comment of its header or footer
            position = self._positions_of(self.module)[node]
            shift = 0
        return (
            (position.start.line + shift, position.start.column + 1),
            (position.end.line + shift, position.end.column + 1),
        )

    def _top_statement(self, node: cst.CSTNode) -> cst.CSTNode:
        """The child of the module that holds ``node`` (the module for itself)."""
        current = node
        while True:
            parent = self.parent.get(current)
            if parent is None or parent is self.module:
                return current
            current = parent

    def _positions_of(self, top: cst.CSTNode):
        if self._positions is None:
            self._positions = {}
        found = self._positions.get(top)
        if found is None:
            alone = self.module
            if top is not self.module:
                alone = self.module.with_changes(body=[top], header=[], footer=[])
            wrapper = MetadataWrapper(alone, unsafe_skip_copy=True)
            found = self._positions[top] = wrapper.resolve(PositionProvider)
        return found

    def _line_shift(self, top: cst.CSTNode) -> int | None:
        """How many lines of the module come before ``top``'s own code (its header
        comments and the earlier statements); None when ``top`` is not a statement."""
        if self._shifts is None:
            self._shifts = self._shifts_from_ast() or self._shifts_from_code()
        shift = self._shifts.get(top)
        if callable(shift):
            shift = self._shifts[top] = shift()
        return shift

    def _shifts_from_code(self) -> dict:
        """Line counts of the generated code of every statement (exact, but slow on
        very large files)."""
        shifts = {}
        line = len(self.module.header)
        for statement in self.module.body:
            shifts[statement] = line
            line += self.module.code_for_node(statement).count("\n")
        return shifts

    def _shifts_from_ast(self) -> dict | None:
        """Shifts from CPython's line numbers of the same statements: the line of a
        statement's first token in the file, less its line in the statement-alone
        module. None when the source is unknown or the two parsers disagree."""
        if self.text is None:
            return None
        try:
            body = ast.parse(self.text).body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        shifts: dict = {}
        index = 0
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine):
                anchor, count = statement.body[0], len(statement.body)
            else:
                anchor, count = _first_token_node(statement), 1
            if anchor is None or index + count > len(body):
                return None
            line = body[index].lineno
            shifts[statement] = partial(self._shift_of, statement, anchor, line)
            index += count
        return shifts if index == len(body) else None

    def _shift_of(self, statement: cst.CSTNode, anchor: cst.CSTNode, line: int) -> int:
        return line - self._positions_of(statement)[anchor].start.line


def _first_token_node(statement: cst.CSTNode) -> cst.CSTNode | None:
    """A node of a compound statement that starts on the line CPython's ``lineno``
    names: the ``def``/``class`` name (CPython counts from ``def``, after the
    decorators), else the statement itself (its keyword)."""
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return statement.name
    return statement


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
