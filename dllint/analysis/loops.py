"""Loops and what their bodies reach, through calls of same-module functions."""

from __future__ import annotations

import libcst as cst

from dllint.analysis.tree import TreeIndex
from dllint.analysis.values import Values

LOOP_TYPES = (cst.For, cst.While)
MAX_CALL_DEPTH = 4


class Loops:
    def __init__(self, tree: TreeIndex, values: Values) -> None:
        self.tree = tree
        self.values = values
        self._reach: dict[cst.CSTNode, list[cst.Call]] = {}

    def all(self) -> list[cst.For | cst.While]:
        return self.tree.nodes(*LOOP_TYPES)

    def enclosing(self, node: cst.CSTNode) -> list[cst.For | cst.While]:
        """Loops around ``node`` within its own function, innermost first."""
        found = []
        for ancestor in self.tree.ancestors(node):
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda)):
                break
            if isinstance(ancestor, LOOP_TYPES) and not self.tree.contains(
                ancestor.iter if isinstance(ancestor, cst.For) else ancestor.test, node
            ):
                found.append(ancestor)
        return found

    def callee(self, call: cst.Call) -> cst.FunctionDef | None:
        """The same-module function a call runs: ``f()``, ``self.m()``, ``obj.m()``."""
        function = self.values.called_function(call)
        if function is not None:
            return function
        func = call.func
        if isinstance(func, cst.Attribute):
            owner = self.values.instance_class(func.value)
            if owner is not None:
                return owner.method(func.attr.value)
        return None

    def reach(self, root: cst.CSTNode) -> list[cst.Call]:
        """Every call inside ``root`` plus the calls of the same-module functions
        it runs (transitively, a few levels deep), in the order they are met."""
        cached = self._reach.get(root)
        if cached is None:
            cached = []
            self._collect(root, cached, set(), 0)
            self._reach[root] = cached
        return cached

    def _collect(self, root, found, visited, depth) -> None:
        visited.add(root)
        for call in self.tree.descendants(root, cst.Call):
            found.append(call)
            if depth >= MAX_CALL_DEPTH:
                continue
            function = self.callee(call)
            if (
                function is not None
                and function not in visited
                and not self.tree.contains(function, root)
            ):
                self._collect(function, found, visited, depth + 1)
