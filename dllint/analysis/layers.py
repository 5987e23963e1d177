"""What follows a layer: the activation (or other op) a layer's output goes through.

A *layer* is a ``torch.nn`` module built in the file: an attribute of an in-module
``nn.Module`` class (``self.fc1 = nn.Linear(...)``) or an element of an
``nn.Sequential`` (positional or ``OrderedDict`` form, held by a ``self.``
attribute or a variable). ``following(layer)`` answers what consumes its output:
in the class's methods (``torch.tanh(self.fc1(x))``, ``F.relu(self.fc1(x))``,
``self.fc1(x).tanh()``, ``x = self.fc1(x); x = self.act(x)``) or in the
Sequential (the next element). Ops that only move values around (view, reshape,
flatten, dropout, max pooling) are looked through; any other use makes the
answer unknown. Unknown is unknown: rules must not guess from it.

``inventory(model)`` lists every layer a model holds, and says when it cannot
(an imported submodule, a ``ModuleList`` built in a loop, ``setattr`` with a
computed name): rules that reason about "every ``nn.Linear`` of the model"
(``for m in self.modules()``, ``model.apply(fn)``) need the whole list.
``selections(name)`` tells which modules a loop or ``apply`` variable ranges over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import ClassInfo, first_param
from dllint.analysis.containers import END
from dllint.analysis.names import ITEM, ITER
from dllint.analysis.tree import call_name, literal_value
from dllint.analysis.values import SEQUENTIAL

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

MODULE_LIST = "torch.nn.ModuleList"
MODULE_DICT = "torch.nn.ModuleDict"
CONTAINERS = {SEQUENTIAL, MODULE_LIST, MODULE_DICT}

# Activation families, by the qualified name of a function, module class or tensor method.
_FAMILY_NAMES = {
    "tanh": ("tanh", "tanh_", "Tanh"),
    "sigmoid": ("sigmoid", "sigmoid_", "Sigmoid", "expit"),
    "relu": (
        "relu", "relu_", "ReLU", "relu6", "ReLU6", "leaky_relu", "leaky_relu_", "LeakyReLU",
        "elu", "elu_", "ELU", "gelu", "GELU", "silu", "SiLU",
    ),
}  # fmt: skip
_FAMILY_PREFIXES = ("torch.", "torch.nn.", "torch.nn.functional.", "torch.Tensor.")
ACTIVATION_FAMILIES: dict[str, str] = {
    f"{prefix}{name}": family
    for family, names in _FAMILY_NAMES.items()
    for name in names
    for prefix in _FAMILY_PREFIXES
}
ACTIVATION_FAMILIES["torch.special.expit"] = "sigmoid"

# Ops that keep each value where it was (or pick among them): looked through.
PASS_THROUGH = {
    "torch.flatten", "torch.reshape", "torch.squeeze", "torch.unsqueeze",
    "torch.transpose", "torch.permute",
    "torch.nn.functional.dropout", "torch.nn.functional.dropout1d",
    "torch.nn.functional.dropout2d", "torch.nn.functional.dropout3d",
    "torch.nn.functional.max_pool1d", "torch.nn.functional.max_pool2d",
    "torch.nn.functional.max_pool3d", "torch.nn.functional.adaptive_max_pool1d",
    "torch.nn.functional.adaptive_max_pool2d", "torch.nn.functional.adaptive_max_pool3d",
    "torch.nn.Dropout", "torch.nn.Dropout1d", "torch.nn.Dropout2d", "torch.nn.Dropout3d",
    "torch.nn.Flatten", "torch.nn.Unflatten", "torch.nn.Identity",
    "torch.nn.MaxPool1d", "torch.nn.MaxPool2d", "torch.nn.MaxPool3d",
    "torch.nn.AdaptiveMaxPool1d", "torch.nn.AdaptiveMaxPool2d", "torch.nn.AdaptiveMaxPool3d",
}  # fmt: skip
PASS_THROUGH_METHODS = {
    "view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "transpose",
    "permute", "view_as", "reshape_as",
}  # fmt: skip
METADATA = {"size", "shape", "dim", "ndim", "ndimension", "dtype", "device", "numel"}
TENSOR_METHODS = {name for names in _FAMILY_NAMES.values() for name in names if name[0].islower()}

NORMALISATION = {
    "torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.BatchNorm3d",
    "torch.nn.SyncBatchNorm", "torch.nn.LayerNorm", "torch.nn.GroupNorm", "torch.nn.RMSNorm",
    "torch.nn.InstanceNorm1d", "torch.nn.InstanceNorm2d", "torch.nn.InstanceNorm3d",
    "torch.nn.LazyBatchNorm1d", "torch.nn.LazyBatchNorm2d", "torch.nn.LazyBatchNorm3d",
    "torch.nn.functional.batch_norm", "torch.nn.functional.layer_norm",
    "torch.nn.functional.group_norm", "torch.nn.functional.instance_norm",
    "torch.nn.functional.rms_norm",
}  # fmt: skip
# torch.nn modules that hold Linear layers of their own.
COMPOSITE = {
    "torch.nn.Transformer", "torch.nn.TransformerEncoder", "torch.nn.TransformerDecoder",
    "torch.nn.TransformerEncoderLayer", "torch.nn.TransformerDecoderLayer",
    "torch.nn.MultiheadAttention",
}  # fmt: skip
# Lazy modules become their eager class on the first call (isinstance holds throughout).
EAGER_KIND = {
    "torch.nn.LazyLinear": "torch.nn.Linear",
    **{f"torch.nn.LazyConv{d}d": f"torch.nn.Conv{d}d" for d in (1, 2, 3)},
    **{f"torch.nn.LazyConvTranspose{d}d": f"torch.nn.ConvTranspose{d}d" for d in (1, 2, 3)},
}
# Libraries whose calls never build an nn.Module.
PLAIN_LIBRARIES = {"numpy", "math", "random", "collections", "itertools", "functools",
                   "operator", "os", "sys", "pathlib", "json", "re", "copy", "logging"}  # fmt: skip
BRANCHES = (cst.If, cst.Else, cst.For, cst.While, cst.Try, cst.ExceptHandler, cst.Finally)
_IGNORED_BUILTINS = {"int", "float", "str", "bool", "len", "list", "dict", "tuple", "set",
                     "max", "min", "sum", "abs", "round", "range", "getattr"}  # fmt: skip


def activation_family(qualname: str | None) -> str | None:
    """``"tanh"``, ``"sigmoid"`` or ``"relu"`` (ReLU, LeakyReLU, ELU, GELU, SiLU...)."""
    return ACTIVATION_FAMILIES.get(qualname) if qualname else None


def normalise_qualname(qualname: str | None) -> str | None:
    """``torch.nn.modules.activation.Tanh`` -> ``torch.nn.Tanh``."""
    if qualname and qualname.startswith("torch.nn.modules."):
        last = qualname.rsplit(".", 1)[1]
        if last[:1].isupper():
            return f"torch.nn.{last}"
    return qualname


@dataclass(frozen=True, eq=False)
class Layer:
    """A ``torch.nn`` module built in the file.

    ``owner``/``attribute``: the in-module class and its ``self.`` attribute that
    hold it (directly, or as the Sequential the layer sits in). ``container`` and
    ``index``: the ``nn.Sequential`` (or ``ModuleList``) holding it and its position
    (None when the order is not certain); ``member`` the element expression there when
    it is not ``node`` itself (``conv`` in ``layers += [conv, nn.BatchNorm2d(c)]``).
    ``label`` is how the user's code names it (``self.fc1``, ``self.net[0]``, ``model[2]``).
    """

    node: cst.BaseExpression
    kind: str | None
    label: str
    owner: ClassInfo | None = None
    attribute: str | None = None
    container: cst.Call | None = None
    index: int | None = None
    member: cst.BaseExpression | None = None


@dataclass(frozen=True)
class Follow:
    """What takes a layer's output.

    ``kind``: ``"op"`` (a known function, module or tensor method, ``qualname`` says
    which: ``torch.tanh``, ``torch.nn.Tanh``, ``torch.Tensor.tanh``,
    ``torch.nn.BatchNorm2d``), ``"output"`` (returned from ``forward``, or the last
    layer of a model) or ``"unknown"``. ``label`` is the user's spelling of the op.
    """

    kind: str
    qualname: str | None = None
    label: str | None = None

    @property
    def family(self) -> str | None:
        return activation_family(self.qualname)


UNKNOWN = Follow("unknown")
OUTPUT = Follow("output")


@dataclass
class Inventory:
    """Every layer a model holds. ``complete`` is False when some submodule's
    contents cannot be seen; ``nested`` holds the layers that sit inside another
    in-module model class (their ``"output"`` is that submodule's output)."""

    layers: list[Layer] = field(default_factory=list)
    nested: set[int] = field(default_factory=set)
    complete: bool = True
    normalised: bool = False

    def is_nested(self, layer: Layer) -> bool:
        return id(layer) in self.nested


Model = ClassInfo | cst.Call  # an in-module nn.Module class, or an nn.Sequential call


@dataclass(frozen=True, eq=False)
class Selection:
    """A loop variable or ``apply`` function parameter ranging over the modules of
    ``model``, narrowed by an ``isinstance``/``type`` guard to ``kinds``."""

    model: Model
    kinds: frozenset[str]
    label: str


class Layers:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.tree = facts.tree
        self.names = facts.names
        self.classes = facts.classes
        self.values = facts.values
        self._inventories: dict[int, Inventory] = {}
        self._through: set[str] | frozenset[str] = PASS_THROUGH
        self._through_methods: set[str] | frozenset[str] = PASS_THROUGH_METHODS

    # -- what a module expression is ---------------------------------------------------
    def qualname(self, expr: cst.CSTNode) -> str | None:
        return normalise_qualname(self.names.qualname(expr))

    def module_kind(self, expr: cst.CSTNode) -> str | None:
        """The ``torch.nn`` class every origin of a module expression is built from."""
        kinds = set()
        for leaf in self.values.origins(expr, through=self.values.module_passthrough):
            if leaf.path or not isinstance(leaf.node, cst.Call):
                return None
            kind = self.qualname(leaf.node.func)
            if kind is None or not kind.startswith("torch.nn."):
                return None
            kinds.add(kind)
        return kinds.pop() if len(kinds) == 1 else None

    def code(self, node: cst.CSTNode) -> str:
        return self.facts.module.code_for_node(node).strip()

    # -- naming a layer --------------------------------------------------------------
    def layer_of(self, expr: cst.CSTNode) -> Layer | None:
        """The layer ``self.fc1``, ``model.fc1``, ``self.net[0]`` or ``model[0]`` names."""
        if isinstance(expr, cst.Attribute):
            owner = self._owner_of(expr.value)
            if owner is not None:
                return self._attribute_layer(owner, expr.attr.value, self.code(expr))
            container = self._sequential_named(expr.value)
            if container is not None:
                seq, owner, attribute = container
                held = self.values.containers.of_module(seq)
                keys = held.keys if held is not None and held.keys is not None else ()
                if expr.attr.value in keys:
                    return self._element(seq, keys.index(expr.attr.value), owner, attribute,
                                         self.code(expr))  # fmt: skip
            return None
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
            index = expr.slice[0].slice
            if not isinstance(index, cst.Index):
                return None
            position = literal_value(index.value)
            if not isinstance(position, int) or isinstance(position, bool):
                return None
            container = self._sequential_named(expr.value)
            if container is not None:
                seq, owner, attribute = container
                return self._element(seq, position, owner, attribute, self.code(expr))
        return None

    def _owner_of(self, expr: cst.CSTNode) -> ClassInfo | None:
        """The in-module model class ``expr`` (``self`` or an instance) is."""
        owner = self.classes.self_of(expr)
        if owner is not None:
            return owner if owner.is_module else None
        owner = self.values.instance_class(expr)
        return owner if owner is not None and owner.is_module else None

    def _attribute_layer(self, owner: ClassInfo, attribute: str, label: str) -> Layer | None:
        values = owner.attribute_values(attribute)
        if len(values) != 1 or not isinstance(values[0], cst.Call):
            return None
        kind = self.qualname(values[0].func)
        if kind is None or not kind.startswith("torch.nn.") or kind in CONTAINERS:
            return None
        return Layer(values[0], kind, label, owner, attribute)

    def _sequential_named(self, expr: cst.CSTNode):
        """(Sequential call, owner, attribute) for ``self.net`` / ``model`` holding one."""
        if isinstance(expr, cst.Attribute):
            owner = self._owner_of(expr.value)
            if owner is not None:
                values = owner.attribute_values(expr.attr.value)
                if len(values) == 1 and self._is_sequential(values[0]):
                    return values[0], owner, expr.attr.value
                return None
        leaves = self.values.origins(expr, through=self.values.module_passthrough)
        if len(leaves) == 1 and not leaves[0].path and self._is_sequential(leaves[0].node):
            return leaves[0].node, None, None
        return None

    def _is_sequential(self, node: cst.CSTNode) -> bool:
        return isinstance(node, cst.Call) and self.qualname(node.func) == SEQUENTIAL

    def _element(self, seq, index, owner, attribute, label) -> Layer | None:
        elements = self._ordered(seq)
        if elements is None or not -len(elements) <= index < len(elements):
            return None
        index %= len(elements)
        element = elements[index]
        if not isinstance(element, cst.Call):
            return None
        kind = self.qualname(element.func)
        if kind is None or not kind.startswith("torch.nn.") or kind in CONTAINERS:
            return None
        return Layer(element, kind, label, owner, attribute, seq, index)

    # -- what follows a layer ----------------------------------------------------------
    def following(self, layer: Layer, strict: bool = False) -> Follow:
        """What consumes ``layer``'s output (looking through shape-only ops, unless
        ``strict``: then the very next op, a dropout or a view included)."""
        if not strict:
            return self._following(layer)
        saved = self._through, self._through_methods
        self._through, self._through_methods = frozenset(), frozenset()
        try:
            return self._following(layer)
        finally:
            self._through, self._through_methods = saved

    def _following(self, layer: Layer) -> Follow:
        if layer.container is not None:
            member = layer.member if layer.member is not None else layer.node
            return self._after_element(layer.container, member, layer.owner, layer.attribute)
        if layer.owner is not None and layer.attribute is not None:
            return self._after_attribute(layer.owner, layer.attribute)
        return UNKNOWN

    def _ordered(self, seq: cst.Call) -> tuple[cst.BaseExpression, ...] | None:
        """The elements of a container in order (after any later ``add_module``...)."""
        held = self.values.containers.of_module(seq)
        return held.ordered if held is not None and not held.parts else None

    def _after_element(self, seq, member, owner, attribute, depth=0) -> Follow:
        """What follows element ``member`` of the Sequential ``seq``: the next element
        that is not looked through, or what follows the Sequential itself."""
        if not self._is_sequential(seq):
            return UNKNOWN
        containers = self.values.containers
        for _ in range(64):
            element = containers.successor(seq, member)
            if element is None:
                return UNKNOWN
            if element is END:
                return self._after_module(seq, owner, attribute, depth + 1)
            kind = self.module_kind(element)
            if kind is None:
                return UNKNOWN
            if kind not in self._through:
                return Follow("op", kind, self.code(element))
            member = element
        return UNKNOWN

    def _after_module(self, node, owner, attribute, depth) -> Follow:
        """What follows a module value (a Sequential) where it is built."""
        if depth > 6:
            return UNKNOWN
        # an element of a Sequential (built in the call or from a list); a name element
        # may be called on its own too
        positions = [p for p in self.values.containers.positions(node) if p.member is node]
        if positions:
            if len(positions) != 1:
                return UNKNOWN
            found = positions[0]
            return self._after_element(found.container, found.member, owner, attribute, depth)
        for ancestor in list(self.tree.ancestors(node))[:6]:
            if isinstance(ancestor, cst.Call) and self.qualname(ancestor.func) in CONTAINERS:
                return UNKNOWN
        if owner is not None and attribute is not None:
            if any(value is node for value in owner.attribute_values(attribute)):
                return self._after_attribute(owner, attribute)
        parent = self.tree.parent.get(node)
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = parent.targets[0].target
            if isinstance(target, cst.Attribute):
                info = self.classes.enclosing(node)
                if info is not None and info.is_module:
                    return self._after_attribute(info, target.attr.value)
            if isinstance(target, cst.Name) and not self._used_as_component(node):
                return OUTPUT
        if isinstance(parent, cst.Return) and self._factory_output(node, parent):
            return OUTPUT
        return UNKNOWN

    def _factory_output(self, node: cst.CSTNode, statement: cst.Return) -> bool:
        """A Sequential a same-module factory returns (``def build(): ...; return
        nn.Sequential(*layers)``), where every call of the factory is a whole model:
        bound to a name (``critic = build()``) or used directly (``build().apply(f)``),
        never put into another container or model."""
        function = self.tree.function_of(statement)
        if function is None or self.classes.enclosing(function) is not None:
            return False
        sites = self.values.call_sites(function)
        if not sites:
            return False
        for site in sites:
            parent = self.tree.parent.get(site)
            if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
                if not isinstance(parent.targets[0].target, cst.Name):
                    return False
            elif not (isinstance(parent, cst.Attribute) and parent.value is site):
                return False
            if self._used_as_component(site):
                return False
        return True

    def _used_as_component(self, node: cst.CSTNode) -> bool:
        """Is this module passed into a container or an in-module model class?"""
        for call in self.tree.nodes(cst.Call):
            if self.qualname(call.func) in CONTAINERS or self.classes.constructed(call):
                for arg in call.args:
                    for leaf in self.values.origins(arg.value):
                        if leaf.node is node:
                            return True
                        if isinstance(leaf.node, (cst.List, cst.Tuple)) and any(
                            origin.node is node
                            for element in leaf.node.elements
                            for origin in self.values.origins(element.value)
                        ):
                            return True
        return False

    def _methods(self, info: ClassInfo) -> list[cst.FunctionDef]:
        names = {name for part in info.lineage() for name in part.methods}
        return [info.method(name) for name in sorted(names) if name != "__init__"]

    def _after_attribute(self, info: ClassInfo, attribute: str) -> Follow:
        """What follows every call of ``self.<attribute>`` in the class's methods."""
        follows = []
        for method in self._methods(info):
            self_name = first_param(method)
            if self_name is None:
                continue
            for node in self.tree.descendants(method, cst.Attribute):
                if not (
                    node.attr.value == attribute
                    and isinstance(node.value, cst.Name)
                    and node.value.value == self_name
                ):
                    continue
                parent = self.tree.parent.get(node)
                if isinstance(parent, cst.Call) and parent.func is node:
                    follows.append(self._after_value(parent, method, 0))
                elif isinstance(parent, cst.Attribute) and parent.value is node:
                    continue  # self.fc1.weight, self.fc1.out_features
                else:
                    return UNKNOWN  # passed around: its calls cannot be seen
        return _agreed(follows)

    def _after_value(self, node: cst.CSTNode, function: cst.FunctionDef, depth: int) -> Follow:
        """What consumes the value of ``node`` inside ``function``."""
        while depth < 12:
            depth += 1
            parent = self.tree.parent.get(node)
            if isinstance(parent, cst.Arg):
                call = self.tree.parent.get(parent)
                if not isinstance(call, cst.Call) or parent.star or call.args[0] is not parent:
                    return UNKNOWN
                if parent.keyword is not None and parent.keyword.value != "input":
                    return UNKNOWN
                op = self._op_of(call)
                if op is None:
                    return UNKNOWN
                if op.qualname in self._through:
                    node = call
                    continue
                return op
            if isinstance(parent, cst.Attribute) and parent.value is node:
                call = self.tree.parent.get(parent)
                if not isinstance(call, cst.Call) or call.func is not parent:
                    return UNKNOWN
                method = parent.attr.value
                if method in self._through_methods:
                    node = call
                    continue
                if method in TENSOR_METHODS and not call.args:
                    return Follow("op", f"torch.Tensor.{method}", f".{method}()")
                return UNKNOWN
            if isinstance(parent, (cst.Assign, cst.AnnAssign)):
                targets = (
                    [t.target for t in parent.targets]
                    if isinstance(parent, cst.Assign)
                    else [parent.target]
                )
                if len(targets) == 1 and isinstance(targets[0], cst.Name):
                    return self._after_variable(targets[0], parent, function, depth)
                return UNKNOWN
            if isinstance(parent, cst.Return):
                return OUTPUT if function.name.value in ("forward", "__call__") else UNKNOWN
            return UNKNOWN
        return UNKNOWN

    def _op_of(self, call: cst.Call) -> Follow | None:
        """The known function or ``torch.nn`` module a call runs."""
        qualname = self.qualname(call.func)
        if qualname is not None and qualname.startswith("torch."):
            return Follow("op", qualname, self.code(call.func))
        if isinstance(call.func, (cst.Name, cst.Attribute, cst.Call)):
            kind = self.module_kind(call.func)
            if kind is not None and kind[len("torch.nn.") :][:1].isupper():
                return Follow("op", kind, self.code(call.func))
        return None

    def _after_variable(self, target: cst.Name, assign, function, depth) -> Follow:
        """Follow ``x = <layer output>`` to every later read of that binding."""
        uses = []
        for name in self.tree.descendants(function, cst.Name):
            if name.value != target.value or not self.tree.before(assign, name):
                continue
            if not _is_read(name, self.tree) or _metadata_read(name, self.tree):
                continue
            binding = self.names.binding_at(name.value, name)
            if binding is not None and (
                binding.node is target or self._conditional_after(binding.node, assign, function)
            ):
                uses.append(name)
        return _agreed([self._after_value(use, function, depth) for use in uses])

    def _conditional_after(self, node, assign, function) -> bool:
        """A later rebinding inside a branch or loop that ``assign`` is not in: reads
        that see it may also see ``assign``'s value (``if c: x = tanh(x)`` / ``else``)."""
        if not self.tree.before(assign, node):
            return False
        for ancestor in self.tree.ancestors(node):
            if ancestor is function:
                return False
            if isinstance(ancestor, BRANCHES) and not self.tree.contains(ancestor, assign):
                return True
        return False

    # -- every layer of a model ---------------------------------------------------------
    def model_of(self, expr: cst.CSTNode) -> Model | None:
        """The in-module model class (``self``, an instance) or Sequential ``expr`` holds."""
        owner = self._owner_of(expr)
        if owner is not None:
            return owner
        container = self._sequential_named(expr)
        return container[0] if container is not None else None

    def model_label(self, model: Model) -> str:
        if isinstance(model, ClassInfo):
            return model.name
        parent = self.tree.parent.get(model)
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            return self.code(parent.targets[0].target)
        function = self.tree.function_of(model)
        if isinstance(parent, cst.Return) and function is not None:
            return f"{function.name.value}()"  # the Sequential a factory builds
        return "nn.Sequential"

    def inventory(self, model: Model) -> Inventory:
        cached = self._inventories.get(id(model))
        if cached is None:
            cached = Inventory()
            if isinstance(model, ClassInfo):
                self._collect_class(model, cached, "self", False, 0)
            else:
                self._collect_sequential(model, cached, self.model_label(model), None, None,
                                         False, 0)  # fmt: skip
            self._inventories[id(model)] = cached
        return cached

    def _add(self, inventory: Inventory, layer: Layer, nested: bool) -> None:
        inventory.layers.append(layer)
        if nested:
            inventory.nested.add(id(layer))
        if layer.kind in NORMALISATION:
            inventory.normalised = True

    def _collect_class(self, info: ClassInfo, inventory, prefix, nested, depth) -> None:
        if depth > 5:
            inventory.complete = False
            return
        names = sorted({name for part in info.lineage() for name in part.attributes})
        called = self._called_attributes(info)
        for method in self._methods(info) + [info.method("__init__")]:
            if method is None:
                continue
            for call in self.tree.descendants(method, cst.Call):
                if self.qualname(call.func) in NORMALISATION:
                    inventory.normalised = True
                if call_name(call) in ("setattr", "add_module", "register_module"):
                    name = (
                        call.args[1 if call_name(call) == "setattr" else 0].value
                        if len(call.args) >= 2
                        else None
                    )
                    if not isinstance(name, cst.SimpleString):
                        inventory.complete = False
        for name in names:
            label = f"{prefix}.{name}"
            for value in info.attribute_values(name):
                self._collect_value(value, inventory, label, info, name, name in called,
                                    nested, depth)  # fmt: skip

    def _called_attributes(self, info: ClassInfo) -> set[str]:
        called = set()
        for method in [*self._methods(info), info.method("__init__")]:
            if method is None or first_param(method) is None:
                continue
            for call in self.tree.descendants(method, cst.Call):
                func = call.func
                if (
                    isinstance(func, cst.Attribute)
                    and isinstance(func.value, cst.Name)
                    and func.value.value == first_param(method)
                ):
                    called.add(func.attr.value)
        return called

    def _collect_value(self, value, inventory, label, owner, attribute, called, nested,
                       depth) -> None:  # fmt: skip
        for leaf in self.values.origins(value, through=self.values.module_passthrough):
            node = leaf.node
            if leaf.path:
                if called:
                    inventory.complete = False
                continue
            if not isinstance(node, cst.Call):
                if called and not isinstance(node, (cst.List, cst.Tuple, cst.Dict)):
                    inventory.complete = False
                continue
            self._collect_call(node, inventory, label, owner, attribute, called, nested, depth)

    def _collect_call(self, node, inventory, label, owner, attribute, called, nested, depth):
        kind = self.qualname(node.func)
        info = self.classes.constructed(node)
        if kind == SEQUENTIAL:
            self._collect_sequential(node, inventory, label, owner, attribute, nested, depth)
        elif kind in (MODULE_LIST, MODULE_DICT):
            self._collect_list(node, inventory, label, owner, attribute, nested, depth)
        elif kind in COMPOSITE:
            inventory.complete = False
        elif kind is not None and kind.startswith("torch.nn.") and kind[9:][:1].isupper():
            if kind != "torch.nn.Parameter":
                self._add(inventory, Layer(node, kind, label, owner, attribute), nested)
        elif info is not None and info.is_module:
            self._collect_class(info, inventory, label, True, depth + 1)
        elif kind is not None and kind.startswith("torch."):
            return  # tensors, parameters, initialisers
        elif (
            isinstance(node.func, cst.Name)
            and kind is None
            and (node.func.value in _IGNORED_BUILTINS and not called)
        ):
            return
        elif called or (kind is not None and kind.split(".")[0] not in PLAIN_LIBRARIES):
            inventory.complete = False  # maybe an imported module: its layers cannot be seen

    def _collect_sequential(self, seq, inventory, label, owner, attribute, nested, depth):
        held = self.values.containers.of_module(seq)
        if held is None or held.parts:
            inventory.complete = False
        if held is None:
            return
        elements = held.ordered if held.ordered is not None else held.members
        keys = held.keys if held.ordered is not None else None
        for i, element in enumerate(elements):
            if keys:
                element_label = f"{label}.{keys[i]}"
            else:
                element_label = f"{label}[{i}]" if held.ordered is not None else f"{label}[...]"
            index = i if held.ordered is not None else None
            member = element
            if isinstance(element, cst.Name):  # conv in [conv, nn.BatchNorm2d(c)]
                element = self.values.containers.built_by(element) or element
            if not isinstance(element, cst.Call):
                inventory.complete = False
                continue
            kind = self.qualname(element.func)
            if kind is not None and kind.startswith("torch.nn.") and kind not in CONTAINERS:
                if kind in COMPOSITE:
                    inventory.complete = False
                    continue
                layer = Layer(element, kind, element_label, owner, attribute, seq, index, member)
                self._add(inventory, layer, nested)
            else:
                self._collect_call(element, inventory, element_label, owner, attribute, True,
                                   nested, depth)  # fmt: skip

    def _collect_list(self, node, inventory, label, owner, attribute, nested, depth):
        """ModuleList/ModuleDict: their layers' successors are unknown (a loop runs them)."""
        held = self.values.containers.of_module(node)
        if held is None or held.parts:
            inventory.complete = False
        elements = held.members if held is not None else ()
        for element in elements:
            if isinstance(element, cst.StarredElement) or not isinstance(element, cst.Call):
                inventory.complete = False
                continue
            kind = self.qualname(element.func)
            if kind is not None and kind.startswith("torch.nn.") and kind not in CONTAINERS:
                if kind in COMPOSITE:
                    inventory.complete = False
                    continue
                self._add(inventory, Layer(element, kind, f"{label}[...]", owner, attribute,
                                           node, None), nested)  # fmt: skip
            else:
                self._collect_call(element, inventory, f"{label}[...]", owner, attribute, True,
                                   nested, depth)  # fmt: skip

    def normalised(self, model: Model) -> bool:
        """Does the model (or a model that holds it) normalise activations
        (BatchNorm, LayerNorm, GroupNorm...)? Normalisation re-scales every block."""
        if self.inventory(model).normalised:
            return True
        if isinstance(model, ClassInfo):
            return any(self.inventory(outer).normalised for outer in self._holders(model))
        return False

    def _holders(self, info: ClassInfo) -> list[ClassInfo]:
        """In-module model classes that build ``info`` as a submodule, transitively."""
        found: list[ClassInfo] = []
        frontier = [info]
        while frontier and len(found) < 20:
            current = frontier.pop()
            for outer in self.classes.by_node.values():
                if outer is current or outer in found or not outer.is_module:
                    continue
                for values in outer.attributes.values():
                    if any(
                        self.classes.constructed(call) is current
                        for value in values
                        for call in self.tree.descendants(value, cst.Call)
                    ):
                        found.append(outer)
                        frontier.append(outer)
                        break
        return found

    # -- loops and apply functions over a model's modules --------------------------------
    def selections(self, name: cst.Name) -> list[Selection]:
        """The modules ``m`` (at this use) ranges over: ``for m in model.modules()``,
        ``for _, m in model.named_modules()`` or ``def init(m)`` passed to
        ``model.apply(init)``, narrowed by the ``isinstance(m, ...)`` guard around the use.
        Empty when any of it is unclear."""
        kinds = self._guard_kinds(name)
        if not kinds:
            return []
        binding = self.names.binding_at(name.value, name)
        if binding is None:
            return []
        if binding.kind == "assign":
            receiver = _modules_receiver(binding.value, binding.path)
            if receiver is None:
                return []
            model = self.model_of(receiver)
            return [Selection(model, kinds, self.code(receiver))] if model is not None else []
        if binding.kind == "param" and isinstance(binding.scope, cst.FunctionDef):
            function = binding.scope
            params = [*function.params.posonly_params, *function.params.params]
            if self.tree.class_of(function) is not None and first_param(function):
                params = params[1:]
            if not params or params[0] is not binding.node:
                return []
            found = []
            for call in self.tree.nodes(cst.Call):
                if call_name(call) != "apply" or len(call.args) != 1:
                    continue
                if not isinstance(call.func, cst.Attribute):
                    continue
                if self._function_named(call.args[0].value) is not function:
                    continue
                model = self.model_of(call.func.value)
                if model is not None:
                    found.append(Selection(model, kinds, self.code(call.func.value)))
            return found
        return []

    def _function_named(self, expr: cst.CSTNode) -> cst.FunctionDef | None:
        if isinstance(expr, cst.Name):
            binding = self.names.binding_at(expr.value, expr)
            return binding.node if binding is not None and binding.kind == "def" else None
        if isinstance(expr, cst.Attribute):
            owner = self.classes.self_of(expr.value)
            if owner is not None:
                return owner.method(expr.attr.value)
        return None

    def _guard_kinds(self, name: cst.Name) -> frozenset[str]:
        """The ``torch.nn`` classes an ``if isinstance(m, ...)`` around this use admits.

        Every ``if`` between the use and its loop or function must be such a guard
        on the same name (another condition could narrow the set further)."""
        kinds: frozenset[str] = frozenset()
        child: cst.CSTNode = name
        for ancestor in self.tree.ancestors(name):
            if isinstance(ancestor, (cst.FunctionDef, cst.For, cst.Lambda)):
                break
            if isinstance(ancestor, (cst.While, cst.IfExp, cst.BooleanOperation)):
                return frozenset()
            if isinstance(ancestor, cst.If) and child is not ancestor.test:
                admitted = self._isinstance_kinds(ancestor.test, name.value)
                if admitted is None:
                    return frozenset()
                if self.tree.contains(ancestor.body, name) and not kinds:
                    kinds = admitted
            child = ancestor
        return kinds

    def _isinstance_kinds(self, test: cst.BaseExpression, var: str) -> frozenset[str] | None:
        if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.Or):
            left = self._isinstance_kinds(test.left, var)
            right = self._isinstance_kinds(test.right, var)
            return left | right if left is not None and right is not None else None
        types: list[cst.BaseExpression] = []
        if isinstance(test, cst.Call) and call_name(test) == "isinstance" and len(test.args) == 2:
            subject, spec = test.args[0].value, test.args[1].value
            if not (isinstance(subject, cst.Name) and subject.value == var):
                return None
            types = _elements(spec)
        elif isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
            left = test.left
            operator = test.comparisons[0].operator
            right = test.comparisons[0].comparator
            if not (
                isinstance(left, cst.Call)
                and call_name(left) == "type"
                and len(left.args) == 1
                and isinstance(left.args[0].value, cst.Name)
                and left.args[0].value.value == var
            ):
                return None
            if isinstance(operator, (cst.Equal, cst.Is)):
                types = [right]
            elif isinstance(operator, cst.In):
                types = _elements(right)
            else:
                return None
        else:
            return None
        kinds = set()
        for expr in types:
            kind = self.qualname(expr)
            if kind is None or not kind.startswith("torch.nn.") or kind in COMPOSITE:
                return None
            kinds.add(kind)
        return frozenset(kinds) if kinds else None

    def admits(self, selection: Selection, layer: Layer) -> bool:
        """Is ``layer`` one of the modules ``selection`` runs on?"""
        return EAGER_KIND.get(layer.kind, layer.kind) in selection.kinds


def layers_of(facts: ModuleFacts) -> Layers:
    """The module's ``Layers`` analysis, computed once per module."""
    cached = facts.__dict__.get("_layers")
    if cached is None:
        cached = facts.__dict__["_layers"] = Layers(facts)
    return cached


def _agreed(follows: list[Follow]) -> Follow:
    if not follows:
        return UNKNOWN
    first = follows[0]
    if all(f.kind == first.kind and f.qualname == first.qualname for f in follows):
        return first
    return UNKNOWN


def _elements(expr: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        return [e.value for e in expr.elements]
    return [expr]


def _modules_receiver(value, path) -> cst.BaseExpression | None:
    """``model`` in ``for m in model.modules()`` / ``for _, m in model.named_modules()``."""
    if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Attribute):
        return None
    method = value.func.attr.value
    if method == "modules" and path == ((ITER,),):
        return value.func.value
    if method == "named_modules" and path == ((ITER,), (ITEM, 1)):
        return value.func.value
    return None


def _metadata_read(name: cst.Name, tree) -> bool:
    """``x.size(0)``, ``x.shape``: reads that do not consume the values."""
    parent = tree.parent.get(name)
    return (
        isinstance(parent, cst.Attribute)
        and parent.value is name
        and (parent.attr.value in METADATA)
    )


def _is_read(name: cst.Name, tree) -> bool:
    """A load of the name (not an assignment target, attribute name, keyword...)."""
    parent = tree.parent.get(name)
    if isinstance(parent, cst.Attribute) and parent.attr is name:
        return False
    if isinstance(parent, cst.Arg) and parent.keyword is name:
        return False
    if isinstance(parent, (cst.Param, cst.FunctionDef, cst.ClassDef, cst.ImportAlias,
                           cst.AsName, cst.NameItem)):  # fmt: skip
        return False
    node: cst.CSTNode = name
    while isinstance(parent, (cst.Element, cst.Tuple, cst.List, cst.StarredElement)):
        node, parent = parent, tree.parent.get(parent)
    if isinstance(parent, cst.AssignTarget):
        return False
    if isinstance(parent, (cst.For, cst.CompFor)) and parent.target is node:
        return False
    if isinstance(parent, (cst.NamedExpr, cst.AnnAssign)) and parent.target is node:
        return False
    return True
