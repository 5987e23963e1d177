"""Bindings: what each name is bound to, where, and what imports it stands for.

Names resolve by qualified name, never by spelling: ``import torch.nn as nn``,
``from torch import nn`` and ``from torch.nn import CrossEntropyLoss as CE`` all
lead to ``torch.nn.CrossEntropyLoss``, while a local ``def shuffle`` shadows an
imported ``shuffle``. One pass over the module's statements, no scope metadata.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import libcst as cst

from dllint.analysis.tree import Scope, TreeIndex, dotted

# How a bound value relates to the expression that produced it.
ITEM = "item"  # element i of a tuple/list value (tuple unpacking)
ITER = "iter"  # one element produced by iterating over the value (for-loop targets)
ENTER = "enter"  # the value a ``with`` statement binds
CALL = "call"  # the result of calling the value (a module instance's forward)


# Statements whose body may run or not: a binding inside one is conditional.
BRANCHING = (
    cst.If, cst.Else, cst.For, cst.While, cst.Try, cst.TryStar, cst.ExceptHandler,
    cst.ExceptStarHandler, cst.Finally, cst.Match,
)  # fmt: skip


@dataclass(frozen=True)
class Binding:
    """``name`` bound in ``scope``; effective once the text passes ``effective``.

    ``kind`` is one of: assign, param, import, def, class, augassign, global.
    For assignments ``value`` is the right-hand expression and ``path`` the selectors
    from it to this name (``a, b = f()`` binds ``b`` to item 1 of ``f()``).
    """

    name: str
    kind: str
    node: cst.CSTNode
    scope: Scope
    effective: int
    value: cst.BaseExpression | None = None
    path: tuple = ()
    qualname: str | None = None


@dataclass
class ScopeBindings:
    by_name: dict[str, list[Binding]] = field(default_factory=lambda: defaultdict(list))
    globals: set[str] = field(default_factory=set)


class Names:
    """All bindings of a module, grouped by scope, and resolution of uses."""

    def __init__(self, tree: TreeIndex) -> None:
        self.tree = tree
        self.scopes: dict[Scope, ScopeBindings] = defaultdict(ScopeBindings)
        self._collect()
        # Answers by (name, use): the bindings are complete once collected, and the
        # rules ask the same questions many times over (a 500-line script: 13k asks).
        # Keyed by id(): a node's own hash is Python code, and the tree keeps every
        # node alive as long as this object.
        self._seen: dict[tuple[str, int], Binding | None] = {}
        self._scope_of: dict[tuple[int, bool], Scope] = {}

    # -- collection -------------------------------------------------------------------
    def _add(self, name, kind, node, effective_node, value=None, path=(), qualname=None):
        scope = self._binding_scope(node)
        bindings = self.scopes[scope]
        if name in bindings.globals and scope is not self.tree.module:
            scope, bindings = self.tree.module, self.scopes[self.tree.module]
        bindings.by_name[name].append(
            Binding(name, kind, node, scope, self.tree.last[effective_node], value, path, qualname)
        )

    def _binding_scope(self, node: cst.CSTNode) -> Scope:
        """Where a binding made at ``node`` lives: function/lambda, class body or module."""
        for ancestor in self.tree.ancestors(node):
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                return ancestor
        return self.tree.module

    def _bind_target(self, target, value, effective_node, path=()):
        if isinstance(target, cst.Name):
            self._add(target.value, "assign", target, effective_node, value, path)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for i, element in enumerate(target.elements):
                inner = element.value
                if isinstance(element, cst.StarredElement):
                    self._bind_target(inner, None, effective_node)
                else:
                    self._bind_target(inner, value, effective_node, path + ((ITEM, i),))
        elif isinstance(target, cst.StarredElement):
            self._bind_target(target.value, None, effective_node)

    def _collect(self) -> None:
        tree = self.tree
        for node in tree.nodes(cst.Global):
            scope = self._binding_scope(node)
            self.scopes[scope].globals.update(n.name.value for n in node.names)
        for node in tree.nodes(cst.Import):
            for alias in node.names:
                full = dotted(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self._add(alias.asname.name.value, "import", node, node, qualname=full)
                elif full:
                    head = full.split(".")[0]
                    self._add(head, "import", node, node, qualname=head)
        for node in tree.nodes(cst.ImportFrom):
            if node.relative or isinstance(node.names, cst.ImportStar):
                base = None
            else:
                base = dotted(node.module) if node.module is not None else None
            if isinstance(node.names, cst.ImportStar):
                continue
            for alias in node.names:
                imported = alias.name.value if isinstance(alias.name, cst.Name) else None
                local = imported
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    local = alias.asname.name.value
                if local:
                    qualname = f"{base}.{imported}" if base else None
                    self._add(local, "import", node, node, qualname=qualname)
        for node in tree.nodes(cst.FunctionDef):
            self._add(node.name.value, "def", node, node)
            params = node.params
            for param in (
                *params.posonly_params,
                *params.params,
                *params.kwonly_params,
                params.star_arg,
                params.star_kwarg,
            ):
                if isinstance(param, cst.Param):
                    self._add_param(param, node)
        for node in tree.nodes(cst.Lambda):
            for param in node.params.params:
                self._add_param(param, node)
        for node in tree.nodes(cst.ClassDef):
            self._add(node.name.value, "class", node, node)
        for node in tree.nodes(cst.Assign):
            for target in node.targets:
                self._bind_target(target.target, node.value, node)
        for node in tree.nodes(cst.AnnAssign):
            if node.value is not None:
                self._bind_target(node.target, node.value, node)
        for node in tree.nodes(cst.AugAssign):
            if isinstance(node.target, cst.Name):
                self._add(node.target.value, "augassign", node.target, node, node.value)
        for node in tree.nodes(cst.NamedExpr):
            self._bind_target(node.target, node.value, node)
        for node in tree.nodes(cst.For):
            self._bind_target(node.target, node.iter, node.iter, ((ITER,),))
        for node in tree.nodes(cst.With):
            for item in node.items:
                if item.asname is not None:
                    self._bind_target(item.asname.name, item.item, item.item, ((ENTER,),))
        for node in tree.nodes(cst.CompFor):
            self._bind_target(node.target, node.iter, node.iter, ((ITER,),))
        for scope in self.scopes.values():
            for bindings in scope.by_name.values():
                bindings.sort(key=lambda b: b.effective)

    def _add_param(self, param: cst.Param, function) -> None:
        # A parameter is bound when the function starts: before anything in its body.
        self.scopes[function].by_name[param.name.value].append(
            Binding(
                param.name.value,
                "param",
                param,
                function,
                self.tree.order[function] - 1,
                param.default,
            )
        )

    # -- resolution -------------------------------------------------------------------
    def binding_at(self, name: str, use: cst.CSTNode) -> Binding | None:
        """The binding a use of ``name`` at ``use`` sees (the latest one before it).

        Function scopes look outward through enclosing functions to the module,
        skipping class bodies (as Python does). Where nothing in the module's scope
        precedes the use (a global read inside a function), the latest module-level
        binding is taken.
        """
        key = (name, id(use))
        try:
            return self._seen[key]
        except KeyError:
            found = self._seen[key] = self._resolve(name, use)
            return found

    def _resolve(self, name: str, use: cst.CSTNode) -> Binding | None:
        tree = self.tree
        at = tree.order[use]
        scope = self._enclosing_scope(use, skip_classes=False)
        while True:
            bindings = self.scopes.get(scope)
            candidates = bindings.by_name.get(name) if bindings else None
            if candidates:
                earlier = [b for b in candidates if b.effective < at]
                if earlier:
                    return earlier[-1]
                if scope is tree.module:
                    return candidates[-1]
                # Bound only later in this function: a loop-carried value; unknown.
                return None
            if scope is tree.module:
                return None
            scope = self._enclosing_scope(scope, skip_classes=True)

    def reaching_bindings(self, name: str, use: cst.CSTNode) -> list[Binding]:
        """Every binding of ``name`` that may be the one ``use`` sees: the latest one
        before it (``binding_at``) and, while that one sits in a branch or loop the
        use is not in (``if pretrained: model = resnet18()``), the ones before it too,
        back to one made on every path to the use."""
        latest = self.binding_at(name, use)
        if latest is None:
            return []
        bindings = self.scopes[latest.scope].by_name.get(name, [])
        if latest not in bindings:
            return [latest]
        found = [latest]
        index = bindings.index(latest)
        while self._conditional(found[-1], use) and index > 0:
            index -= 1
            found.append(bindings[index])
        return found

    def _conditional(self, binding: Binding, use: cst.CSTNode) -> bool:
        """Does ``binding`` sit in a branch, loop or ``try`` (within its own scope)
        that does not also hold ``use``?"""
        if binding.kind == "param":
            return False
        tree = self.tree
        for ancestor in tree.ancestors(binding.node):
            if ancestor is binding.scope:
                return False
            if isinstance(ancestor, BRANCHING) and not tree.contains(ancestor, use):
                return True
        return False

    def _enclosing_scope(self, node, skip_classes: bool):
        key = (id(node), skip_classes)
        found = self._scope_of.get(key)
        if found is None:
            found = self._scope_of[key] = self._find_scope(node, skip_classes)
        return found

    def _find_scope(self, node, skip_classes: bool):
        for ancestor in self.tree.ancestors(node):
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda)):
                return ancestor
            if isinstance(ancestor, cst.ClassDef) and not skip_classes:
                return ancestor
        return self.tree.module

    def bindings_of(self, name: str, scope: Scope) -> list[Binding]:
        bindings = self.scopes.get(scope)
        return list(bindings.by_name.get(name, ())) if bindings else []

    def qualname(self, expr: cst.CSTNode, depth: int = 0) -> str | None:
        """The fully qualified name an expression refers to, through imports and aliases.

        ``nn.CrossEntropyLoss`` -> ``torch.nn.CrossEntropyLoss``; ``CE`` after
        ``CE = nn.CrossEntropyLoss`` -> the same. None when it is not an import.
        """
        if depth > 8:
            return None
        if isinstance(expr, cst.Attribute):
            base = self.qualname(expr.value, depth + 1)
            return f"{base}.{expr.attr.value}" if base else None
        if isinstance(expr, cst.Name):
            binding = self.binding_at(expr.value, expr)
            if binding is None:
                return None
            if binding.kind == "import":
                return binding.qualname
            if (
                binding.kind == "assign"
                and not binding.path
                and isinstance(binding.value, (cst.Name, cst.Attribute))
                and binding.value is not expr
            ):
                return self.qualname(binding.value, depth + 1)
        return None
