"""Classes defined in the module: their methods, ``self.`` attributes and bases."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import libcst as cst

from dllint.analysis.names import Names
from dllint.analysis.tree import TreeIndex

MODULE_BASES = (
    "torch.nn.Module",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
    "pytorch_lightning.LightningModule",
    "pytorch_lightning.core.LightningModule",
    "pytorch_lightning.core.lightning.LightningModule",
)
LIGHTNING_BASES = tuple(base for base in MODULE_BASES if "ightning" in base)


@dataclass
class ClassInfo:
    node: cst.ClassDef
    base_names: list[str | None]
    bases: list[ClassInfo] = field(default_factory=list)
    methods: dict[str, cst.FunctionDef] = field(default_factory=dict)
    attributes: dict[str, list[cst.BaseExpression]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.name.value

    def lineage(self):
        """This class, then its in-module bases, depth first."""
        seen = set()
        stack = [self]
        while stack:
            info = stack.pop(0)
            if id(info) in seen:
                continue
            seen.add(id(info))
            yield info
            stack.extend(info.bases)

    def method(self, name: str) -> cst.FunctionDef | None:
        for info in self.lineage():
            if name in info.methods:
                return info.methods[name]
        return None

    def attribute_values(self, name: str) -> list[cst.BaseExpression]:
        for info in self.lineage():
            if name in info.attributes:
                return info.attributes[name]
        return []

    def derives_from(self, qualnames: tuple[str, ...]) -> bool:
        return any(base in qualnames for info in self.lineage() for base in info.base_names if base)

    @cached_property
    def is_module(self) -> bool:
        """An ``nn.Module`` (or LightningModule) subclass, directly or via in-module bases."""
        return self.derives_from(MODULE_BASES)

    @cached_property
    def is_lightning(self) -> bool:
        return self.derives_from(LIGHTNING_BASES)


class Classes:
    def __init__(self, tree: TreeIndex, names: Names) -> None:
        self.tree = tree
        self.names = names
        self.by_node: dict[cst.ClassDef, ClassInfo] = {}
        for node in tree.nodes(cst.ClassDef):
            self.by_node[node] = self._summarise(node)
        for info in self.by_node.values():
            for base in info.node.bases:
                target = self.class_named(base.value)
                if target is not None and target is not info:
                    info.bases.append(target)

    def _summarise(self, node: cst.ClassDef) -> ClassInfo:
        info = ClassInfo(node, [self.names.qualname(base.value) for base in node.bases])
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        for statement in body:
            if isinstance(statement, cst.FunctionDef):
                info.methods[statement.name.value] = statement
        for method in info.methods.values():
            self_name = first_param(method)
            if self_name is None:
                continue
            for assign in self.tree.descendants(method, cst.Assign, cst.AnnAssign):
                targets = (
                    [t.target for t in assign.targets]
                    if isinstance(assign, cst.Assign)
                    else [assign.target]
                )
                if assign.value is None:
                    continue
                for target in targets:
                    if (
                        isinstance(target, cst.Attribute)
                        and isinstance(target.value, cst.Name)
                        and target.value.value == self_name
                    ):
                        info.attributes.setdefault(target.attr.value, []).append(assign.value)
            for call in self.tree.descendants(method, cst.Call):
                # self.add_module("name", layer) / setattr(self, "name", layer)
                func = call.func
                args = [a.value for a in call.args]
                if (
                    isinstance(func, cst.Attribute)
                    and func.attr.value in ("add_module", "register_module")
                    and isinstance(func.value, cst.Name)
                    and func.value.value == self_name
                    and len(args) == 2
                    and isinstance(args[0], cst.SimpleString)
                ):
                    info.attributes.setdefault(args[0].evaluated_value, []).append(args[1])
        return info

    def class_named(self, expr: cst.CSTNode) -> ClassInfo | None:
        """The in-module class an expression names at that point (notebooks redefine)."""
        if not isinstance(expr, cst.Name):
            return None
        binding = self.names.binding_at(expr.value, expr)
        if binding is not None and binding.kind == "class":
            return self.by_node.get(binding.node)
        return None

    def constructed(self, call: cst.CSTNode) -> ClassInfo | None:
        """The in-module class a call constructs (``Net(...)``), else None."""
        if isinstance(call, cst.Call):
            return self.class_named(call.func)
        return None

    def self_of(self, expr: cst.CSTNode) -> ClassInfo | None:
        """The in-module class whose method ``expr`` is the first parameter (``self``) of."""
        if not isinstance(expr, cst.Name):
            return None
        method = self.tree.function_of(expr)
        owner = self.enclosing(expr)
        if method is not None and owner is not None and expr.value == first_param(method):
            return owner
        return None

    def enclosing(self, node: cst.CSTNode) -> ClassInfo | None:
        owner = self.tree.class_of(node)
        return self.by_node.get(owner) if owner is not None else None


def first_param(function: cst.FunctionDef) -> str | None:
    params = [*function.params.posonly_params, *function.params.params]
    if not params:
        return None
    decorators = {
        d.decorator.value for d in function.decorators if isinstance(d.decorator, cst.Name)
    }
    if "staticmethod" in decorators:
        return None
    return params[0].name.value
