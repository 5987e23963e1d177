"""Submodules that ``nn.Module`` cannot see: built into a plain Python list, dict or tuple.

``nn.Module.__setattr__`` registers a value as a child only when it is a Module (or a
Parameter); a ``list``/``dict``/``tuple`` of modules is stored as a plain attribute, so
``.parameters()``, ``.to(device)``, ``state_dict()`` and ``.train()/.eval()`` never
reach its elements.

``plain_containers()`` lists the ``self.<attr>`` attributes of in-module ``nn.Module``
classes that hold freshly built, stateful submodules (torch.nn layers with parameters
or buffers, dropout, in-module module classes, torchvision/timm models) in such a
container, either in the literal that creates it or through later
``append``/``extend``/``insert``/``update``/``[key] =`` fills. An attribute is left out
(unknown) whenever something else could register or handle its elements: another
assignment of the attribute (``nn.ModuleList(self.layers)``), a use that passes the
container or an element on (``nn.Sequential(*self.layers)``, ``self.head =
self.layers[-1]``), an element that is also bound elsewhere (``self.fc1``), an
``add_module``/``setattr`` of a value that is not a fresh construction, manual handling
(``layer.to(device)``, ``layer.parameters()``) or an overridden ``parameters``/``to``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import MODULE_BASES, ClassInfo, first_param
from dllint.analysis.layers import PLAIN_LIBRARIES, _is_read, normalise_qualname
from dllint.analysis.tree import call_name

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

_DIMS = (1, 2, 3)
# torch.nn classes that hold parameters or buffers (by default).
STATEFUL = {
    "Linear", "Bilinear", "LazyLinear", "Embedding", "EmbeddingBag", "PReLU",
    "LayerNorm", "GroupNorm", "RMSNorm", "SyncBatchNorm",
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
    "MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder",
    "TransformerEncoderLayer", "TransformerDecoderLayer",
    "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
    *(f"{kind}{d}d" for d in _DIMS for kind in (
        "Conv", "ConvTranspose", "LazyConv", "LazyConvTranspose", "BatchNorm",
        "LazyBatchNorm",
    )),
}  # fmt: skip
STATEFUL_QUALNAMES = {f"torch.nn.{name}" for name in STATEFUL}
# Parameter-free modules whose behaviour depends on train/eval mode.
MODE_DEPENDENT = {
    f"torch.nn.{name}"
    for name in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                 "FeatureAlphaDropout")
}  # fmt: skip
MODEL_FACTORIES = {"timm.create_model", "torchvision.models.get_model"}

FILL_METHODS = {"append", "extend", "insert", "update", "setdefault"}
READ_METHODS = {"items", "values", "keys", "get", "index", "count"}
# Element uses that show the user handles the modules by hand.
MANUAL = {
    "parameters", "named_parameters", "buffers", "named_buffers", "to", "cuda", "cpu",
    "state_dict", "load_state_dict", "train", "eval", "half", "float", "double",
    "bfloat16", "type", "requires_grad_", "zero_grad", "apply", "share_memory", "modules",
    "named_modules", "children", "named_children", "register_forward_hook",
}  # fmt: skip
# Overriding these means the class looks after its children itself.
OVERRIDES = {"parameters", "named_parameters", "to", "cuda", "_apply", "state_dict",
             "children", "named_children", "modules", "named_modules", "train",
             "__setattr__", "__getattr__"}  # fmt: skip
COLLECTION_BUILTINS = {"enumerate", "zip", "reversed", "iter"}
HARMLESS_BUILTINS = {"len", "isinstance", "type", "id", "print", "repr", "str", "hash"}
REGISTRATION = {"add_module", "register_module"}
PLAIN_PREFIXES = ("torch.", "builtins.", *(f"{name}." for name in PLAIN_LIBRARIES))


@dataclass(frozen=True, eq=False)
class PlainContainer:
    """``self.<attribute>`` of ``owner``, created by ``statement`` as a plain ``kind``
    (``list``, ``dict`` or ``tuple``) and holding the fresh submodules ``modules``."""

    owner: ClassInfo
    attribute: str
    statement: cst.Assign | cst.AnnAssign
    kind: str
    modules: tuple[cst.Call, ...]

    @property
    def stateful(self) -> bool:
        """Some element has parameters or buffers (else: only dropout)."""
        return any(kind != "mode" for kind in self._kinds)

    _kinds: tuple[str, ...] = ()


class Modules:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.tree = facts.tree
        self.names = facts.names
        self.classes = facts.classes
        self.values = facts.values
        self._class_state: dict[int, str | None] = {}

    # -- what a construction builds ------------------------------------------------------
    def submodule(self, call: cst.Call) -> str | None:
        """``"state"`` when ``call`` builds a module with parameters or buffers, ``"mode"``
        for a parameter-free module that behaves differently in eval mode (dropout),
        None otherwise (activations, pooling, losses, anything unknown)."""
        qualname = normalise_qualname(self.names.qualname(call.func))
        if qualname is not None:
            if qualname in STATEFUL_QUALNAMES:
                return "state"
            if qualname in MODE_DEPENDENT:
                return "mode"
            if qualname.startswith("torch.nn.InstanceNorm") and _literal_true(call, "affine"):
                return "state"
            if qualname in MODEL_FACTORIES:
                return "state"
            if qualname.startswith("torchvision.models.") and _is_model_builder(qualname):
                return "state"
            return None
        info = self.classes.constructed(call)
        if info is not None and info.is_module:
            return self._class_kind(info)
        return None

    def _class_kind(self, info: ClassInfo) -> str | None:
        key = id(info)
        if key not in self._class_state:
            self._class_state[key] = None  # a cycle is not evidence
            self._class_state[key] = self._summarise_class(info)
        return self._class_state[key]

    def _summarise_class(self, info: ClassInfo) -> str | None:
        """An in-module module class has state when it builds a stateful layer,
        registers a parameter or buffer, or builds something imported (unknown)."""
        found = None
        for part in info.lineage():
            for base in part.base_names:
                if base is not None and base not in MODULE_BASES:
                    return "state"  # an imported base may hold anything
            for method in part.methods.values():
                for call in self.tree.descendants(method, cst.Call):
                    if call_name(call) in ("register_buffer", "register_parameter"):
                        return "state"
                    qualname = normalise_qualname(self.names.qualname(call.func))
                    if qualname in ("torch.nn.Parameter", "torch.nn.parameter.Parameter"):
                        return "state"
                    kind = self.submodule(call)
                    if kind == "state":
                        return "state"
                    if kind == "mode":
                        found = "mode"
                    if qualname is not None and not qualname.startswith(PLAIN_PREFIXES):
                        return "state"  # e.g. an imported block: its contents are unknown
        return found

    # -- plain containers ----------------------------------------------------------------
    def plain_containers(self) -> list[PlainContainer]:
        cached = self.facts.__dict__.get("_plain_containers")
        if cached is None:
            cached = self.facts.__dict__["_plain_containers"] = list(self._find())
        return cached

    def _find(self):
        for info in self.classes.by_node.values():
            if not info.is_module:
                continue
            related = self._related(info)
            if any(name in OVERRIDES for part in related for name in part.methods):
                continue
            if self._registers_unknown(related):
                continue
            for attribute, values in info.attributes.items():
                found = self._container(info, attribute, values, related)
                if found is not None:
                    yield found

    def _related(self, info: ClassInfo) -> list[ClassInfo]:
        """The class, its in-module bases and the in-module classes deriving from it."""
        found = {id(part): part for part in info.lineage()}
        for other in self.classes.by_node.values():
            if any(part is info for part in other.lineage()):
                for part in other.lineage():
                    found.setdefault(id(part), part)
        return list(found.values())

    def _registers_unknown(self, related: list[ClassInfo]) -> bool:
        """``self.add_module(name, m)`` / ``setattr(self, name, m)`` of a value that is not a
        fresh construction: it may register the elements of a plain container."""
        for part in related:
            for method in part.methods.values():
                self_name = first_param(method)
                for call in self.tree.descendants(method, cst.Call):
                    name = call_name(call)
                    args = [a.value for a in call.args]
                    if name in REGISTRATION and isinstance(call.func, cst.Attribute):
                        value = args[1] if len(args) >= 2 else None
                    elif name in ("setattr", "__setattr__") and (
                        isinstance(call.func, cst.Name) or name == "__setattr__"
                    ):
                        if name == "setattr" and not (
                            args and isinstance(args[0], cst.Name) and args[0].value == self_name
                        ):
                            continue
                        value = args[-1] if args else None
                    else:
                        continue
                    if not (isinstance(value, cst.Call) and self.submodule(value)):
                        return True
        return False

    def _container(self, info, attribute, values, related) -> PlainContainer | None:
        plain = [(value, found) for value in values if (found := self._plain(value, own=attribute))]
        if not plain:
            return None
        for part in related:
            if any(
                self._plain(v, own=attribute) is None for v in part.attributes.get(attribute, ())
            ):
                return None  # also a ModuleList, a Sequential, None, a parameter...
        elements: list[cst.BaseExpression] = []
        for _, (_, inner) in plain:
            elements.extend(inner)
        fills = self._uses(attribute, related)
        if fills is None:
            return None
        elements.extend(fills)
        modules, kinds = [], []
        for element in elements:
            fresh = self._fresh(element)
            if fresh is not None:
                modules.append(fresh[1])
                kinds.append(fresh[0])
        if not modules:
            return None
        first, (kind, _) = plain[0]
        statement = self.tree.parent.get(first)
        if not isinstance(statement, (cst.Assign, cst.AnnAssign)):
            return None
        return PlainContainer(info, attribute, statement, kind, tuple(modules), tuple(kinds))

    def _plain(self, value: cst.BaseExpression, depth: int = 0, own: str | None = None):
        """(kind, elements) when ``value`` is a plain container: a literal, a local
        variable holding one (``layers = []; layers.append(...); self.x = layers``), the
        attribute grown by concatenation (``self.layers = self.layers + [Block()]``, with
        ``own`` the attribute) or a same-module helper returning one. None otherwise or when
        its contents are unclear."""
        kind = _container_kind(value)
        if kind is not None:
            elements = self._elements(value, own)
            return (kind, elements) if elements is not None else None
        if isinstance(value, cst.Name):
            return self._local(value)
        if isinstance(value, cst.Call) and depth < 3:
            function = self.values.called_function(value)
            if function is None:
                return None
            found, kinds = [], set()
            for returned in self.values.returns(function):
                inner = self._plain(returned, depth + 1)
                if inner is None:
                    return None
                kinds.add(inner[0])
                found.extend(inner[1])
            if len(kinds) != 1:
                return None
            return kinds.pop(), found
        return None

    def _local(self, use: cst.Name):
        """A local list/dict built in a function and stored (or returned) at ``use``."""
        binding = self.names.binding_at(use.value, use)
        if binding is not None and binding.kind == "augassign":  # layers += [...]
            earlier = [
                b
                for b in self.names.bindings_of(use.value, binding.scope)
                if b.kind != "augassign" and b.effective < binding.effective
            ]
            binding = earlier[-1] if earlier else None
        if binding is None or binding.kind != "assign" or binding.path:
            return None
        function = binding.scope
        if not isinstance(function, cst.FunctionDef) or binding.value is None:
            return None
        kind = _container_kind(binding.value)
        elements = self._elements(binding.value) if kind is not None else None
        if elements is None:
            return None
        for name in self.tree.descendants(function, cst.Name):
            if name is use or name.value != use.value or name is binding.node:
                continue
            if not _is_read(name, self.tree):
                if isinstance(self.tree.parent.get(name), (cst.Param, cst.Attribute, cst.Arg)):
                    continue
                return None  # rebound: which list is stored is unclear
            filled = self._collection_use(name, True)
            if filled is None:
                return None
            elements.extend(filled)
        return kind, elements

    def _elements(self, expr: cst.CSTNode, own: str | None = None) -> list | None:
        """What a container expression holds; None when it cannot be told. ``self.<own>``
        stands for the attribute's earlier value, whose elements are counted where it was
        assigned."""
        if own is not None and isinstance(expr, cst.Attribute) and expr.attr.value == own:
            if self.classes.self_of(expr.value) is not None:
                return []
        if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
            return [e.value for e in expr.elements if not isinstance(e, cst.StarredElement)]
        if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            return [expr.elt]
        if isinstance(expr, cst.DictComp):
            return [expr.value]
        if isinstance(expr, cst.Dict):
            return [e.value for e in expr.elements if isinstance(e, cst.DictElement)]
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, cst.Add):
                left, right = self._elements(expr.left, own), self._elements(expr.right, own)
                return None if left is None or right is None else left + right
            if isinstance(expr.operator, cst.Multiply):
                for side in (expr.left, expr.right):
                    if isinstance(side, (cst.List, cst.Tuple)):
                        return self._elements(side)
            return None
        if isinstance(expr, cst.Call) and self._builtin(expr.func) in ("list", "tuple", "dict"):
            if not expr.args:
                return []
            if expr.args[0].keyword is not None:
                return [a.value for a in expr.args if a.keyword is not None]
            return self._elements(expr.args[0].value)
        return None

    def _builtin(self, func: cst.CSTNode) -> str | None:
        if isinstance(func, cst.Name) and self.names.binding_at(func.value, func) is None:
            return func.value
        return None

    def _fresh(self, expr: cst.BaseExpression) -> tuple[str, cst.Call] | None:
        """The kind (``"state"``/``"mode"``) and construction of the submodule an element
        builds, when only this element holds it; else None."""
        expr = self._unwrap(expr)
        if isinstance(expr, cst.Call):
            kind = self._built(expr)
            return (kind, expr) if kind is not None else None
        if not isinstance(expr, cst.Name):
            return None
        binding = self.names.binding_at(expr.value, expr)
        if binding is None or binding.kind != "assign" or binding.path:
            return None
        if not isinstance(binding.scope, cst.FunctionDef) or binding.value is None:
            return None
        value = self._unwrap(binding.value)
        kind = self._built(value) if isinstance(value, cst.Call) else None
        if kind is None:
            return None
        for name in self.tree.descendants(binding.scope, cst.Name):
            if name is expr or name.value != expr.value or not _is_read(name, self.tree):
                continue
            if self.names.binding_at(name.value, name) is not binding:
                continue
            if not self._element_use_harmless(name):
                return None  # also stored or passed elsewhere: maybe registered there
        return kind, value

    def _built(self, call: cst.Call, depth: int = 0) -> str | None:
        """What a construction (or a same-module helper returning one) builds."""
        kind = self.submodule(call)
        if kind is not None or depth > 3:
            return kind
        function = self.values.called_function(call)
        if function is None:
            return None
        kinds = set()
        for value in self.values.returns(function):
            value = self._unwrap(value)
            inner = self._built(value, depth + 1) if isinstance(value, cst.Call) else None
            if inner is None:
                return None
            kinds.add(inner)
        if not kinds:
            return None
        return "state" if "state" in kinds else "mode"

    def _unwrap(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        for _ in range(4):
            inner = self.values.module_passthrough(expr)
            if inner is None or not isinstance(expr, cst.Call):
                break
            if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("train", "eval"):
                break
            expr = inner
        return expr

    # -- uses of the attribute -----------------------------------------------------------
    def _uses(self, attribute: str, related: list[ClassInfo]) -> list | None:
        """The values filled into ``self.<attribute>`` across the related classes, or None
        when some use of it (anywhere in the file) might register or handle them."""
        fills: list[cst.BaseExpression] = []
        related_nodes = {id(part.node) for part in related}
        for node in self.tree.nodes(cst.Attribute):
            if node.attr.value != attribute:
                continue
            owner = self._receiver_class(node.value)
            if owner is not None and id(owner.node) not in related_nodes:
                continue  # another class's attribute of the same name
            if owner is None:
                instance = self.values.instance_class(node.value)
                if instance is not None and id(instance.node) not in related_nodes:
                    continue
            values = self._collection_use(node, owner is not None)
            if values is None:
                return None
            fills.extend(values)
        return fills

    def _receiver_class(self, expr: cst.CSTNode) -> ClassInfo | None:
        """The in-module class ``expr`` is ``self`` of."""
        return self.classes.self_of(expr)

    def _collection_use(self, node: cst.CSTNode, own: bool) -> list | None:
        """Values a use of the container adds to it ([] for a read), None when unclear."""
        parent = self.tree.parent.get(node)
        if isinstance(parent, cst.AssignTarget) or (
            isinstance(parent, cst.AnnAssign) and parent.target is node
        ):
            return [] if own else None
        if isinstance(parent, cst.AugAssign) and parent.target is node:
            if not own or not isinstance(parent.operator, cst.AddAssign):
                return None
            return self._elements(parent.value)
        if own and self._grown_in_place(node, parent):
            return []  # self.layers = self.layers + [...]: the new elements are its value
        if isinstance(parent, cst.Attribute) and parent.value is node:
            call = self.tree.parent.get(parent)
            if not isinstance(call, cst.Call) or call.func is not parent:
                return None
            method = parent.attr.value
            args = [a.value for a in call.args]
            if method in FILL_METHODS and own:
                if method == "append" and args:
                    return [args[0]]
                if method in ("insert", "setdefault") and len(args) == 2:
                    return [args[1]]
                if method in ("extend", "update") and args:
                    return self._elements(args[0]) if call.args[0].keyword is None else None
                return None
            if method in READ_METHODS:
                item = 1 if method == "items" else None
                return [] if self._collection_consumed(call, item) else None
            return None
        if isinstance(parent, cst.Subscript) and parent.value is node:
            grand = self.tree.parent.get(parent)
            if isinstance(grand, cst.AssignTarget) and own:
                assign = self.tree.parent.get(grand)
                return [assign.value] if isinstance(assign, cst.Assign) else None
            return [] if self._element_use_harmless(parent) else None
        return [] if self._collection_consumed(node) else None

    def _grown_in_place(self, node: cst.CSTNode, parent: cst.CSTNode | None) -> bool:
        """``node`` (``self.layers``) is read to build the attribute's own next value."""
        while isinstance(parent, cst.BinaryOperation) and isinstance(parent.operator, cst.Add):
            parent = self.tree.parent.get(parent)
        if not isinstance(parent, cst.Assign) or len(parent.targets) != 1:
            return False
        target = parent.targets[0].target
        return (
            isinstance(target, cst.Attribute)
            and isinstance(node, cst.Attribute)
            and target.attr.value == node.attr.value
            and isinstance(target.value, cst.Name)
            and isinstance(node.value, cst.Name)
            and target.value.value == node.value.value
        )

    def _collection_consumed(self, expr: cst.CSTNode, item: int | None = None) -> bool:
        """Is a collection (the container or a view of it) only measured or iterated,
        with each element only called or inspected? ``item``: the position of the
        module in each iterated tuple (``enumerate``, ``.items()``), when known."""
        parent = self.tree.parent.get(expr)
        if isinstance(parent, cst.Arg) and parent.keyword is None and not parent.star:
            call = self.tree.parent.get(parent)
            builtin = self._builtin(call.func) if isinstance(call, cst.Call) else None
            if builtin in HARMLESS_BUILTINS:
                return True
            if builtin in COLLECTION_BUILTINS:
                position = 1 if builtin == "enumerate" else None
                if builtin == "zip":
                    position = next(i for i, a in enumerate(call.args) if a.value is expr)
                return self._collection_consumed(call, position)
            return False
        if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is expr:
            return self._loop_targets_harmless(parent, item)
        if isinstance(parent, cst.ComparisonTarget):
            return True  # `name in self.heads`
        if isinstance(parent, cst.Subscript) and parent.value is expr:
            return self._element_use_harmless(parent)
        return False

    def _loop_targets_harmless(self, loop: cst.For | cst.CompFor, item: int | None) -> bool:
        scope = loop if isinstance(loop, cst.For) else self.tree.parent.get(loop)
        target: cst.CSTNode = loop.target
        if item is not None and isinstance(target, (cst.Tuple, cst.List)):
            if item >= len(target.elements):
                return False
            target = target.elements[item].value
        for bound in self.tree.descendants(target, cst.Name):
            for name in self.tree.descendants(scope, cst.Name):
                if name is bound or name.value != bound.value:
                    continue
                if not _is_read(name, self.tree):
                    continue
                if not self._element_use_harmless(name):
                    return False
        return True

    def _element_use_harmless(self, expr: cst.CSTNode) -> bool:
        """An element is called (``layer(x)``) or inspected (``layer.weight``), not stored,
        passed on or handled by hand (``layer.to(device)``)."""
        parent = self.tree.parent.get(expr)
        if isinstance(parent, cst.Call) and parent.func is expr:
            return True
        if isinstance(parent, cst.Attribute) and parent.value is expr:
            return parent.attr.value not in MANUAL
        if isinstance(parent, cst.Subscript) and parent.value is expr:
            return self._element_use_harmless(parent)
        if isinstance(parent, cst.Arg) and parent.keyword is None and not parent.star:
            call = self.tree.parent.get(parent)
            return isinstance(call, cst.Call) and self._builtin(call.func) in HARMLESS_BUILTINS
        return False


def modules_of(facts: ModuleFacts) -> Modules:
    """The module's ``Modules`` analysis, computed once per module."""
    cached = facts.__dict__.get("_modules")
    if cached is None:
        cached = facts.__dict__["_modules"] = Modules(facts)
    return cached


def _container_kind(value: cst.CSTNode) -> str | None:
    """``list``, ``dict`` or ``tuple`` for a plain container expression."""
    if isinstance(value, (cst.List, cst.ListComp, cst.Set, cst.SetComp)):
        return "list"
    if isinstance(value, cst.Tuple):
        return "tuple"
    if isinstance(value, (cst.Dict, cst.DictComp)):
        return "dict"
    if isinstance(value, cst.BinaryOperation) and isinstance(
        value.operator, (cst.Add, cst.Multiply)
    ):
        if isinstance(value.left, (cst.List, cst.ListComp)) or isinstance(
            value.right, (cst.List, cst.ListComp)
        ):
            return "list"
        return None
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
        if value.func.value in ("list", "tuple", "dict"):
            return value.func.value
    return None


def _literal_true(call: cst.Call, name: str) -> bool:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return isinstance(arg.value, cst.Name) and arg.value.value == "True"
    return False


def _is_model_builder(qualname: str) -> bool:
    """``torchvision.models.resnet18`` / ``.detection.fasterrcnn_resnet50_fpn`` / ``ResNet``;
    not weights enums or helpers (``get_weight``, ``list_models``)."""
    last = qualname.rsplit(".", 1)[1]
    if "weight" in last.lower() or last in ("list_models", "get_model_builder"):
        return False
    return not last.startswith("_")
