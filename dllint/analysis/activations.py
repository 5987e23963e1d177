"""Which activation produced a value: softmax, log-softmax, sigmoid, log-sigmoid or ReLU.

The loss-input rules (DL301 probabilities into a logit loss, DL302 logits into a
probability loss, DL303 log of softmax) ask what a tensor *is*: raw scores, or the
output of a squashing function. ``activation_of(facts, expr)`` answers when EVERY
value ``expr`` can hold (``facts.values.origins``) was made by the same activation:

- a function: ``F.softmax``, ``torch.softmax``, ``torch.sigmoid``, ``F.log_softmax``...
  (by qualified name, so a user's own ``def softmax`` is not torch's);
- a tensor method: ``x.softmax(dim)``, ``x.sigmoid()``, ``x.log_softmax(-1)``;
- a module called: ``nn.Softmax(dim=1)`` as the last layer of an ``nn.Sequential``,
  ``self.act = nn.Softmax(dim=1)`` then ``self.act(x)``, ``nn.Sigmoid()(x)``;
- ``exp`` of a log-softmax is a softmax (``torch.exp(F.log_softmax(x))``), ``log`` of a
  softmax is a log-softmax (the unstable spelling, still log-probabilities).

Values keep their activation through tensor pass-throughs (``.to(device)``,
``.float()``, ``.view(...)``, ``.reshape``, ``.squeeze``, ``.contiguous()``, slicing,
``clamp``) and through the value flow of ``facts.values`` (assignments, returns,
``forward`` of in-module models, tuple elements, parameters). A name whose latest
assignment sits under an ``if``/loop/``except`` that does not also hold the use may
still hold its earlier value, so it is unknown. Any unknown origin makes the answer
None: unknown is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.names import CALL, ITEM, ITER
from dllint.analysis.tree import argument, dotted, literal_value
from dllint.analysis.values import SEQUENTIAL

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

SOFTMAX = "softmax"
LOG_SOFTMAX = "log_softmax"
SIGMOID = "sigmoid"
LOGSIGMOID = "logsigmoid"
RELU = "relu"

FUNCTIONS = {
    "torch.softmax": SOFTMAX,
    "torch.nn.functional.softmax": SOFTMAX,
    "torch.special.softmax": SOFTMAX,
    "torch.log_softmax": LOG_SOFTMAX,
    "torch.nn.functional.log_softmax": LOG_SOFTMAX,
    "torch.special.log_softmax": LOG_SOFTMAX,
    "torch.sigmoid": SIGMOID,
    "torch.nn.functional.sigmoid": SIGMOID,
    "torch.special.expit": SIGMOID,
    "torch.nn.functional.logsigmoid": LOGSIGMOID,
    "torch.relu": RELU,
    "torch.nn.functional.relu": RELU,
}
MODULES = {
    "Softmax": SOFTMAX,
    "Softmax2d": SOFTMAX,
    "LogSoftmax": LOG_SOFTMAX,
    "Sigmoid": SIGMOID,
    "LogSigmoid": LOGSIGMOID,
    "ReLU": RELU,
}
MODULE_PREFIXES = ("torch.nn.", "torch.nn.modules.activation.", "torch.nn.modules.")
# Tensor methods (``x.softmax(1)``); Tensor has no ``logsigmoid`` method.
METHODS = {"softmax": SOFTMAX, "log_softmax": LOG_SOFTMAX, "sigmoid": SIGMOID, "relu": RELU}

EXP_FUNCTIONS = ("torch.exp", "torch.special.exp")
LOG_FUNCTIONS = ("torch.log",)
EXP_OF = {LOG_SOFTMAX: SOFTMAX, LOGSIGMOID: SIGMOID}
LOG_OF = {SOFTMAX: LOG_SOFTMAX, SIGMOID: LOGSIGMOID}

# Tensor methods and torch functions whose result holds the same values, reshaped or
# moved (the first argument for functions).
PASSTHROUGH_METHODS = frozenset(
    {
        "to", "float", "double", "half", "bfloat16", "cuda", "cpu", "type", "type_as",
        "view", "view_as", "reshape", "reshape_as", "squeeze", "unsqueeze", "flatten",
        "contiguous", "clone", "detach", "permute", "transpose", "clamp", "clamp_min",
        "clip",
    }
)  # fmt: skip
PASSTHROUGH_FUNCTIONS = frozenset(
    f"torch.{name}"
    for name in ("squeeze", "unsqueeze", "reshape", "flatten", "clamp", "clip", "permute",
                 "transpose")
)  # fmt: skip

# Statements under which an assignment may not run before a later use.
CONDITIONAL = (cst.If, cst.For, cst.While, cst.ExceptHandler, cst.MatchCase)
# What ``through`` returns for a value that must not be followed: a fresh node that
# ``Values`` keeps as a leaf, and that is no activation.
_UNKNOWN = cst.Ellipsis()
MAX_DEPTH = 4


@dataclass(frozen=True)
class Activation:
    """The activation every origin of a value shares, and the nodes that apply it.

    ``sources`` are the calls (or ``nn.Softmax(...)`` constructions) in textual
    order; ``label`` says how the first one is written, in backticks for a message:
    "`F.softmax`", "`.softmax()`", "`nn.Softmax(dim=1)`", "`torch.exp` of
    `F.log_softmax`".
    """

    kind: str
    sources: tuple[cst.CSTNode, ...]
    label: str


def output_activation(facts: ModuleFacts, expr: cst.CSTNode | None) -> str | None:
    """ "softmax", "log_softmax", "sigmoid", "logsigmoid" or "relu" when every origin of
    ``expr`` is that activation's output; None when any origin is something else or
    unknown."""
    found = activation_of(facts, expr)
    return found.kind if found is not None else None


def activation_of(facts: ModuleFacts, expr: cst.CSTNode | None) -> Activation | None:
    """The activation every origin of ``expr`` shares (see the module docstring)."""
    if expr is None:
        return None
    return _Finder(facts).activation(expr, 0)


class _Finder:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts

    def activation(self, expr: cst.CSTNode, depth: int) -> Activation | None:
        if depth > MAX_DEPTH:
            return None
        values = self.facts.values
        found: list[Activation] = []
        for leaf in values.origins(expr, through=self.through):
            if not all(step[0] in (ITEM, ITER) for step in leaf.path[1:]):
                return None
            first = leaf.path[0][0] if leaf.path else None
            if first == CALL:
                activation = self._module_output(leaf.node)
            elif first in (None, ITEM, ITER):
                activation = self._leaf(leaf.node, depth)
            else:
                activation = None
            if activation is None:
                return None
            found.append(activation)
        if not found or len({a.kind for a in found}) != 1:
            return None
        sources = tuple(s for a in found for s in a.sources)
        order = self.facts.tree.order
        sources = tuple(sorted(dict.fromkeys(sources), key=lambda n: order.get(n, -1)))
        first = min(found, key=lambda a: order.get(a.sources[0], -1))
        return Activation(found[0].kind, sources, first.label)

    # -- value flow ------------------------------------------------------------------
    def through(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """Tensor pass-throughs, module wrappers, and names that may hold older values."""
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in PASSTHROUGH_METHODS:
                if self.facts.qualname(func) is None:
                    return func.value
            if self.facts.qualname(func) in PASSTHROUGH_FUNCTIONS:
                return argument(node, 0, "input")
        elif isinstance(node, cst.Subscript) and not _integer_index(node):
            return node.value  # slicing, masks, ``[:, 0]`` keep the values
        elif isinstance(node, cst.Name) and self._conditionally_bound(node):
            return _UNKNOWN
        return self.facts.values.module_passthrough(node)

    def _conditionally_bound(self, name: cst.Name) -> bool:
        """The assignment ``name`` sees is under a branch or loop the use is not in."""
        binding = self.facts.names.binding_at(name.value, name)
        if binding is None or binding.kind != "assign":
            return False
        tree = self.facts.tree
        if tree.scope_of(binding.node) is not tree.scope_of(name):
            return False  # a global read in a function: the branch ran before the call
        for ancestor in tree.ancestors(binding.node):
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.Module)):
                return False
            if isinstance(ancestor, CONDITIONAL) and not tree.contains(ancestor, name):
                if isinstance(ancestor, cst.For) and tree.contains(ancestor.target, binding.node):
                    return False  # the loop variable itself
                return True
        return False

    # -- leaves ----------------------------------------------------------------------
    def _leaf(self, node: cst.CSTNode, depth: int) -> Activation | None:
        """A value that is the result of an expression (not of calling a module)."""
        if not isinstance(node, cst.Call):
            return None
        facts = self.facts
        func = node.func
        qualname = facts.qualname(func)
        if qualname in FUNCTIONS:
            return Activation(FUNCTIONS[qualname], (node,), _code(facts, func))
        if qualname in EXP_FUNCTIONS or qualname in LOG_FUNCTIONS:
            table = EXP_OF if qualname in EXP_FUNCTIONS else LOG_OF
            return self._transformed(node, argument(node, 0, "input"), table, func, depth)
        if qualname is None and isinstance(func, cst.Attribute) and self._tensor_receiver(node):
            method = func.attr.value
            if method in METHODS and _tensor_method_arguments(node, method):
                return Activation(METHODS[method], (node,), f"`.{method}()`")
            if method in ("exp", "log"):
                table = EXP_OF if method == "exp" else LOG_OF
                return self._transformed(node, func.value, table, None, depth)
        # Calling a module instance the value flow kept as a leaf (``self.act(x)``).
        if qualname is None:
            return self._called_module(func)
        return None

    def _transformed(self, node, inner, table, func, depth) -> Activation | None:
        """``exp``/``log`` of another activation's output."""
        if inner is None:
            return None
        found = self.activation(inner, depth + 1)
        if found is None or found.kind not in table:
            return None
        name = _code(self.facts, func) if func is not None else f"`.{node.func.attr.value}()`"
        return Activation(table[found.kind], (node,), f"{name} of {found.label}")

    def _tensor_receiver(self, call: cst.Call) -> bool:
        """``x.softmax(1)`` is a tensor method unless ``x`` is ``self``, an import or
        an instance of an in-module class (whose own ``softmax`` method it would be)."""
        receiver = call.func.value
        facts = self.facts
        if facts.classes.self_of(receiver) is not None:
            return False
        if facts.qualname(receiver) is not None:
            return False
        return facts.values.instance_class(receiver) is None

    def _called_module(self, func: cst.CSTNode) -> Activation | None:
        """``self.act(x)`` / ``nn.Softmax(dim=1)(x)``: every value of the callee is the
        same activation module."""
        values = self.facts.values
        leaves = values.origins(func, through=values.module_passthrough)
        found = []
        for leaf in leaves:
            if leaf.path:
                return None
            activation = self._module_output(leaf.node)
            if activation is None:
                return None
            found.append(activation)
        if not found or len({a.kind for a in found}) != 1:
            return None
        return Activation(found[0].kind, tuple(a.sources[0] for a in found), found[0].label)

    def _module_output(self, node: cst.CSTNode) -> Activation | None:
        """The output of calling ``node`` when it is an activation module's construction."""
        if not isinstance(node, cst.Call):
            return None
        qualname = self.facts.qualname(node.func) or ""
        for prefix in MODULE_PREFIXES:
            kind = MODULES.get(qualname[len(prefix) :]) if qualname.startswith(prefix) else None
            if kind is not None:
                return Activation(kind, (node,), _code(self.facts, node))
        return None


def _tensor_method_arguments(call: cst.Call, method: str) -> bool:
    """The arguments ``Tensor.<method>`` takes: ``softmax(dim)``/``softmax(dim=1)``, and
    nothing for ``sigmoid()``/``relu()``. A tensor passed instead (``self.crf.softmax(h)``)
    means some other object's method."""
    if method not in (SOFTMAX, LOG_SOFTMAX):
        return not call.args
    positional = [a for a in call.args if a.keyword is None]
    if any(a.keyword is not None and a.keyword.value not in ("dim", "dtype") for a in call.args):
        return False
    if len(positional) > 1 or any(a.star for a in positional):
        return False
    if not positional:
        return True
    value = positional[0].value
    if isinstance(literal_value(value), int):
        return True
    text = dotted(value)
    return text is not None and "dim" in text.split(".")[-1].lower()


def _integer_index(node: cst.Subscript) -> bool:
    """``x[0]``: the value flow reads it as an element (a tuple's, or a tensor row)."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return False
    value = literal_value(node.slice[0].slice.value)
    return isinstance(value, int) and not isinstance(value, bool)


def _code(facts: ModuleFacts, node: cst.CSTNode) -> str:
    """The node's code on one line, shortened, in backticks."""
    text = " ".join(facts.module.code_for_node(node).split())
    return f"`{text}`" if len(text) <= 40 else f"`{text[:37]}...`"


# -- an activation call itself (not followed through values) ---------------------------
@dataclass(frozen=True)
class ActivationCall:
    """``node`` is itself a call of an activation: ``F.softmax(x, dim=1)`` (form
    "function"), ``x.softmax(1)`` (form "method"). ``input`` is the activated tensor;
    ``simple`` when nothing but the input and ``dim`` is passed (no ``dtype=``/``out=``),
    so dropping or renaming the call keeps everything else the same."""

    kind: str
    call: cst.Call
    input: cst.BaseExpression
    form: str
    simple: bool


def activation_call(facts: ModuleFacts, node: cst.CSTNode | None) -> ActivationCall | None:
    """The activation ``node`` calls directly, by qualified name or as a tensor method."""
    if not isinstance(node, cst.Call):
        return None
    func = node.func
    qualname = facts.qualname(func)
    if qualname in FUNCTIONS:
        kind = FUNCTIONS[qualname]
        value = argument(node, 0, "input")
        if value is None or any(a.star for a in node.args):
            return None
        allowed = {"input", "dim"} if kind in (SOFTMAX, LOG_SOFTMAX) else {"input"}
        positional = [a for a in node.args if a.keyword is None]
        limit = 2 if kind in (SOFTMAX, LOG_SOFTMAX) else 1
        simple = len(positional) <= limit and all(
            a.keyword.value in allowed for a in node.args if a.keyword is not None
        )
        return ActivationCall(kind, node, value, "function", simple)
    if qualname is None and isinstance(func, cst.Attribute):
        method = func.attr.value
        if method in METHODS and _tensor_method_arguments(node, method):
            if _Finder(facts)._tensor_receiver(node):
                simple = all(a.keyword is None or a.keyword.value == "dim" for a in node.args)
                return ActivationCall(METHODS[method], node, func.value, "method", simple)
    return None


# -- raw logits -----------------------------------------------------------------------
# Layers whose output is an affine map of their input: raw scores, any real value.
AFFINE_LAYERS = frozenset(
    {
        "Linear", "LazyLinear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "LazyConv1d",
        "LazyConv2d", "LazyConv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
        "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
    }
)  # fmt: skip
AFFINE_FUNCTIONS = frozenset(
    f"torch.nn.functional.{name}"
    for name in ("linear", "bilinear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                 "conv_transpose2d", "conv_transpose3d")
)  # fmt: skip
# Pass-throughs that bound the values: a clamped output is no longer raw logits.
BOUNDING_METHODS = frozenset({"clamp", "clamp_min", "clamp_max", "clip", "clamp_", "clip_"})
BOUNDING_FUNCTIONS = frozenset({"torch.clamp", "torch.clip", "torch.clamp_min", "torch.clamp_max"})


@dataclass(frozen=True)
class Logits:
    """Every origin of a value is the output of an affine layer (``nn.Linear``,
    ``nn.Conv2d``, ``F.linear``): raw scores. ``sources`` are the layer constructions
    (or functional calls); ``label`` quotes the first one for a message."""

    sources: tuple[cst.CSTNode, ...]
    label: str


def raw_logits_of(facts: ModuleFacts, expr: cst.CSTNode | None) -> Logits | None:
    """Logits when EVERY value ``expr`` can hold is known to be an affine layer's
    output: a same-file model whose ``forward`` returns ``self.fc(x)``, an
    ``nn.Sequential`` ending in ``nn.Linear``, ``self.fc(x)``, ``F.linear(...)``.
    None when any origin is unknown, activated, clamped, or built by a layer whose
    holder the file changes later (``seq.add_module(...)``, ``model.fc = ...``, forward
    hooks)."""
    if expr is None:
        return None
    return _LogitFinder(facts).logits(expr)


class _LogitFinder(_Finder):
    def through(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in BOUNDING_METHODS:
                return _UNKNOWN
            if self.facts.qualname(func) in BOUNDING_FUNCTIONS:
                return _UNKNOWN
        return super().through(node)

    def logits(self, expr: cst.CSTNode) -> Logits | None:
        facts = self.facts
        if _changes_models(facts):
            return None
        sources: list[cst.CSTNode] = []
        for leaf in facts.values.origins(expr, through=self.through):
            if leaf.path == ((CALL,),):
                found = self._affine_construction(leaf.node)
            elif not leaf.path:
                found = self._affine_call(leaf.node)
            else:
                found = None
            if found is None:
                return None
            sources.extend(found)
        if not sources:
            return None
        order = facts.tree.order
        sources = sorted(dict.fromkeys(sources), key=lambda n: order.get(n, -1))
        if any(self._changed_later(source) for source in sources):
            return None
        return Logits(tuple(sources), _code(facts, sources[0]))

    def _affine_construction(self, node: cst.CSTNode) -> list[cst.CSTNode] | None:
        if not isinstance(node, cst.Call):
            return None
        qualname = self.facts.qualname(node.func) or ""
        for prefix in MODULE_PREFIXES:
            if qualname.startswith(prefix) and qualname[len(prefix) :] in AFFINE_LAYERS:
                return [node]
        return None

    def _affine_call(self, node: cst.CSTNode) -> list[cst.CSTNode] | None:
        """``F.linear(x, w)``, or calling a module every value of which is an affine layer."""
        if not isinstance(node, cst.Call):
            return None
        func = node.func
        qualname = self.facts.qualname(func)
        if qualname in AFFINE_FUNCTIONS:
            return [node]
        if qualname is not None:
            return None
        values = self.facts.values
        found: list[cst.CSTNode] = []
        for leaf in values.origins(func, through=values.module_passthrough):
            layer = self._affine_construction(leaf.node) if not leaf.path else None
            if layer is None:
                return None
            found.extend(layer)
        return found or None

    def _changed_later(self, source: cst.CSTNode) -> bool:
        """The layer's holder is replaced or extended somewhere in the file
        (``model.fc = ...``, ``seq.add_module(...)``): what the model returns is not
        what it was built to return."""
        facts = self.facts
        for ancestor in facts.tree.ancestors(source):
            if isinstance(ancestor, cst.Call) and facts.qualname(ancestor.func) == SEQUENTIAL:
                if _sequentials_extended(facts):
                    return True
            if isinstance(ancestor, (cst.Assign, cst.AnnAssign)):
                targets = (
                    [t.target for t in ancestor.targets]
                    if isinstance(ancestor, cst.Assign)
                    else [ancestor.target]
                )
                return any(
                    isinstance(t, cst.Attribute) and _patched(facts, t.attr.value, ancestor)
                    for t in targets
                )
            if isinstance(ancestor, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
                return False
        return False


def _changes_models(facts: ModuleFacts) -> bool:
    """The file registers forward hooks, which may change any model's output."""
    return "register_forward_hook" in facts.text and any(
        isinstance(c.func, cst.Attribute) and c.func.attr.value == "register_forward_hook"
        for c in facts.calls()
    )


def _sequentials_extended(facts: ModuleFacts) -> bool:
    """Some container in the file gets modules added or replaced after it is built
    (``seq.add_module(...)``, ``seq.append(nn.LogSoftmax(1))``, ``seq[-1] = ...``)."""
    for call in facts.calls():
        func = call.func
        if not isinstance(func, cst.Attribute):
            continue
        name = func.attr.value
        if name in ("add_module", "register_module", "insert", "extend"):
            return True
        if name == "append" and call.args and _builds_module(facts, call.args[0].value):
            return True
    for target in facts.tree.nodes(cst.AssignTarget):
        if isinstance(target.target, cst.Subscript):
            parent = facts.tree.parent.get(target)
            if isinstance(parent, cst.Assign) and _builds_module(facts, parent.value):
                return True
    return False


def _builds_module(facts: ModuleFacts, expr: cst.CSTNode) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    return (facts.qualname(expr.func) or "").startswith("torch.nn.")


def _patched(facts: ModuleFacts, attribute: str, built: cst.CSTNode | None = None) -> bool:
    """``model.<attribute> = ...`` outside the class's own methods (``self.`` is how
    the class builds it), or ``setattr(model, "<attribute>", ...)``; not ``built``, the
    assignment that makes the layer (``model.fc = nn.Linear(512, 1)`` replacing a
    torchvision head)."""
    tree = facts.tree
    for target in tree.nodes(cst.AssignTarget):
        inner = target.target
        if tree.parent.get(target) is built:
            continue
        if isinstance(inner, cst.Attribute) and inner.attr.value == attribute:
            if facts.classes.self_of(inner.value) is None:
                return True
    for call in facts.calls():
        if isinstance(call.func, cst.Name) and call.func.value == "setattr":
            name = argument(call, 1)
            if name is None or literal_value(name) in (attribute, None):
                return True
    return False
