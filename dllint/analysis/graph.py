"""Autograd graph facts: does an expression carry gradient back to a model, or was it
cut from the graph on the way?

``Graph.status(expr)`` answers with one of four words:

- ``LIVE``: it is (or is computed from, through arithmetic, tensor methods and
  ``torch`` functions) the output of a model call made with gradients enabled: a
  same-module ``nn.Module`` instance, a ``torch.nn`` layer, a library model, or
  anything whose parameters an optimizer in the file holds;
- ``CUT``: it is computed from such an output, or from a value of unknown origin,
  only through a cut: ``.detach()``, ``.data``, ``.item()``, ``.numpy()``,
  ``.tolist()``, ``float()``, ``torch.tensor(...)``/``torch.Tensor(...)``/
  ``torch.as_tensor(...)`` re-wraps, numpy functions, or a model call under
  ``torch.no_grad()``;
- ``NONE``: it carries no gradient and is not a model output: literals, data from
  iterating a loader, fresh tensors (``torch.zeros``), shapes;
- ``UNKNOWN``: anything else. Rules never accuse an unknown value.

Parts combine as: any ``LIVE`` part makes the whole ``LIVE`` (one live path is enough
for the gradient to reach the model); otherwise any ``UNKNOWN`` part makes it
``UNKNOWN``; otherwise any ``CUT`` part makes it ``CUT``; else ``NONE``.

``Graph.graph_loss(expr)`` asks the DL403 question: is ``expr`` a loss tensor known to
hold an autograd graph (a loss call made under gradients whose input is not cut, or
arithmetic and graph-keeping methods of one)? True, False (known cut) or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.evaluation import evaluation_reason, grad_disabling
from dllint.analysis.names import ITER
from dllint.analysis.tree import argument, dotted, keyword, literal_value

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

LIVE = "live"
CUT = "cut"
NONE = "none"
UNKNOWN = "unknown"
_RANK = {LIVE: 3, UNKNOWN: 2, CUT: 1, NONE: 0}
MAX_DEPTH = 24

# Tensor methods whose result has no autograd history.
CUT_METHODS = frozenset({"detach", "item", "numpy", "tolist"})
CUT_ATTRIBUTES = frozenset({"data"})
# Tensor methods whose result keeps the graph of the receiver (and of tensor arguments).
KEEP_METHODS = frozenset(
    {"mean", "sum", "cpu", "cuda", "to", "float", "double", "half", "bfloat16", "clone",
     "view", "view_as", "reshape", "reshape_as", "squeeze", "unsqueeze", "flatten",
     "contiguous", "permute", "transpose", "t", "expand", "expand_as", "log", "exp",
     "sqrt", "pow", "abs", "neg", "clamp", "clamp_min", "clamp_max", "mul", "div",
     "add", "sub", "sigmoid", "tanh", "relu", "softmax", "log_softmax", "norm", "prod",
     "square", "type_as", "masked_fill", "gather", "index_select", "split", "chunk",
     "narrow", "select", "squeeze_", "unsqueeze_", "requires_grad_"}
)  # fmt: skip
# Attributes with no gradient (metadata).
META_ATTRIBUTES = frozenset({"shape", "device", "dtype", "ndim", "requires_grad", "is_cuda"})
META_METHODS = frozenset({"size", "dim", "numel", "nelement", "argmax", "argmin"})
# Functions that copy values into a new tensor (or array, or number): no history.
REWRAP_FUNCTIONS = frozenset(
    {"torch.tensor", "torch.Tensor", "torch.as_tensor", "torch.from_numpy",
     "torch.FloatTensor", "torch.LongTensor", "torch.DoubleTensor",
     "torch.cuda.FloatTensor"}
)  # fmt: skip
REWRAP_BUILTINS = frozenset({"float", "int"})
FRESH_FUNCTIONS = frozenset(
    {"torch.zeros", "torch.ones", "torch.empty", "torch.full", "torch.rand",
     "torch.randn", "torch.randint", "torch.arange", "torch.linspace", "torch.eye",
     "torch.zeros_like", "torch.ones_like", "torch.empty_like", "torch.full_like",
     "torch.rand_like", "torch.randn_like", "torch.randint_like", "torch.randperm"}
)  # fmt: skip
LEGACY_VARIABLE = ("torch.autograd.Variable", "torch.autograd.variable.Variable")
PARAMETERLESS = frozenset(
    {"ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
     "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Softplus", "Hardtanh", "Hardswish",
     "Hardsigmoid", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
     "Flatten", "Unflatten", "Identity", "MaxPool1d", "MaxPool2d", "MaxPool3d",
     "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
     "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Upsample",
     "PixelShuffle"}
)  # fmt: skip
# Receivers of ``X.backward(loss)`` that are trainers, not tensors.
TRAINER_WORDS = ("accelerator", "fabric", "engine")


def combine(statuses) -> str:
    found = list(statuses)
    if not found:
        return NONE
    return max(found, key=_RANK.__getitem__)


@dataclass(frozen=True)
class Status:
    """How an expression relates to the graph; for ``CUT``, where.

    ``cut`` is the first cutting expression met on a model-derived path (what the
    message quotes); ``loss`` the loss call nearest the top whose result is cut.
    """

    word: str
    cut: cst.CSTNode | None = None
    loss: cst.CSTNode | None = None


def _merge(parts: list[Status]) -> Status:
    word = combine(p.word for p in parts)
    cut = next((p.cut for p in parts if p.word == CUT and p.cut is not None), None)
    loss = next((p.loss for p in parts if p.word == CUT and p.loss is not None), None)
    return Status(word, cut if word == CUT else None, loss if word == CUT else None)


class Graph:
    """Graph facts of one module; ask through ``graph_of(facts)``."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self._status: dict[cst.CSTNode, Status] = {}
        self._active: set[cst.CSTNode] = set()

    # -- status -----------------------------------------------------------------------
    def status(self, expr: cst.CSTNode | None, depth: int = 0) -> Status:
        if expr is None:
            return Status(NONE)
        cached = self._status.get(expr)
        if cached is not None:
            return cached
        if depth > MAX_DEPTH or expr in self._active:
            return Status(UNKNOWN)
        self._active.add(expr)
        try:
            found = self._status_of(expr, depth + 1)
        finally:
            self._active.discard(expr)
        self._status[expr] = found
        return found

    def _status_of(self, expr: cst.CSTNode, depth: int) -> Status:
        status = lambda e: self.status(e, depth)  # noqa: E731
        if isinstance(expr, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
            return Status(NONE)
        if isinstance(expr, cst.Name) and expr.value in ("True", "False", "None"):
            return Status(NONE)
        if isinstance(expr, cst.BinaryOperation):
            return _merge([status(expr.left), status(expr.right)])
        if isinstance(expr, cst.UnaryOperation):
            return status(expr.expression)
        if isinstance(expr, (cst.Tuple, cst.List)):
            return _merge([status(e.value) for e in expr.elements])
        if isinstance(expr, cst.Subscript):
            return status(expr.value)
        if isinstance(expr, cst.Call):
            return self._call_status(expr, depth)
        if isinstance(expr, cst.Attribute):
            if expr.attr.value in CUT_ATTRIBUTES:
                return self._cut(expr, status(expr.value))
            if expr.attr.value in META_ATTRIBUTES:
                return Status(NONE)
            return self._attribute_status(expr, depth)
        if isinstance(expr, cst.Name):
            return self._name_status(expr, depth)
        return Status(UNKNOWN)

    @staticmethod
    def _cut(node: cst.CSTNode, inner: Status) -> Status:
        """``node`` cuts ``inner`` from the graph."""
        if inner.word == LIVE:
            return Status(CUT, cut=node)
        if inner.word == UNKNOWN:
            return Status(CUT, cut=None)  # no history, but not known to be a model's
        return inner

    def _name_status(self, name: cst.Name, depth: int) -> Status:
        binding = self.facts.names.binding_at(name.value, name)
        if binding is None:
            return Status(UNKNOWN)
        if binding.kind == "assign" and binding.value is not None:
            if binding.path and binding.path[0] == (ITER,):
                # One element of an iteration: a batch from a loader is data.
                inner = self.status(binding.value, depth)
                return inner if inner.word in (LIVE, CUT) else Status(NONE)
            if binding.path:
                return self._leaves_status(name, depth)
            return self.status(binding.value, depth)
        if binding.kind == "param":
            return self._leaves_status(name, depth)
        return Status(UNKNOWN)

    def _leaves_status(self, expr: cst.CSTNode, depth: int) -> Status:
        """The status of what ``expr`` holds, from its value-flow leaves."""
        leaves = self.facts.values.origins(expr)
        if not leaves or any(leaf.node is expr for leaf in leaves):
            return Status(UNKNOWN)
        parts = []
        for leaf in leaves:
            inner = self.status(leaf.node, depth)
            if any(step[0] == ITER for step in leaf.path) and inner.word not in (LIVE, CUT):
                inner = Status(NONE)  # an element of an iteration over data
            parts.append(inner)
        return _merge(parts)

    def _attribute_status(self, expr: cst.Attribute, depth: int) -> Status:
        if isinstance(expr.value, cst.Name) and expr.value.value == "self":
            return self._leaves_status(expr, depth)
        base = self.status(expr.value, depth)
        # ``outputs.loss``/``outputs.logits`` of a model's output stay in its graph.
        return base if base.word in (LIVE, CUT) else Status(UNKNOWN)

    def _call_status(self, call: cst.Call, depth: int) -> Status:
        facts = self.facts
        status = lambda e: self.status(e, depth)  # noqa: E731
        func = call.func
        args = [a.value for a in call.args]
        qualname = facts.qualname(func)
        if isinstance(func, cst.Attribute) and qualname is None:
            method = func.attr.value
            if method in CUT_METHODS:
                return self._cut(call, status(func.value))
            if method in META_METHODS:
                return Status(NONE)
            if method in KEEP_METHODS and self._module_kind(func.value) is None:
                return _merge([status(func.value), *(status(a) for a in args)])
        if qualname is not None:
            if qualname in REWRAP_FUNCTIONS:
                inner = _merge([status(a) for a in args[:1]])
                if inner.word == NONE:
                    return inner
                return self._cut(call, inner) if inner.word != UNKNOWN else Status(UNKNOWN)
            if qualname in FRESH_FUNCTIONS:
                return Status(NONE)
            if qualname in LEGACY_VARIABLE:
                return _merge([status(a) for a in args[:1]])
            if qualname.startswith("numpy."):
                inner = _merge([status(a) for a in args])
                return self._cut(call, inner) if inner.word == LIVE else inner
        if isinstance(func, cst.Name) and func.value in REWRAP_BUILTINS:
            if facts.names.binding_at(func.value, func) is None and len(args) == 1:
                return self._cut(call, status(args[0]))
        loss = facts.losses.loss_call(call)
        if loss is not None:
            found = _merge([status(loss.input), status(loss.target)])
            if found.word == CUT:
                return Status(CUT, found.cut, call)
            return found
        kind = self._model_call_kind(call)
        if kind == "layer":  # a parameterless layer: its output is its input's
            return _merge([status(a) for a in args])
        if kind == "model":
            if self._grad_disabled(call):
                return Status(CUT, cut=call)
            return Status(LIVE)
        function = facts.values.called_function(call)
        if function is not None:
            returns = facts.values.returns(function)
            if not returns:
                return Status(UNKNOWN)
            return _merge([status(r) for r in returns])
        if qualname is not None and qualname.startswith("torch."):
            if _nn_layer(facts, call) is not None:
                return Status(UNKNOWN)  # a layer construction
            return _merge([status(a) for a in args])  # F.relu(x), torch.cat([a, b]), ...
        return Status(UNKNOWN)

    def _is_model(self, expr: cst.CSTNode) -> bool:
        return self._module_kind(expr) == "model"

    def _module_kind(self, expr: cst.CSTNode) -> str | None:
        """ "model" (holds parameters), "layer" (a parameterless torch.nn layer) or None."""
        facts = self.facts
        if facts.qualname(expr) is not None:
            return None
        if isinstance(expr, cst.Name) and expr.value == "self":
            info = facts.classes.enclosing(expr)
            return "model" if info is not None and info.is_module else None
        if not isinstance(expr, (cst.Name, cst.Attribute)):
            return None
        if isinstance(expr, cst.Attribute):
            base = expr.value
            is_self = isinstance(base, cst.Name) and base.value == "self"
            if not is_self and self._module_kind(base) != "model":
                return None  # a method of a tensor (``loss.backward``), not a submodule
        values = facts.values
        leaves = values.origins(expr, through=values.module_passthrough)
        layers = [_nn_layer(facts, leaf.node) if not leaf.path else None for leaf in leaves]
        if leaves and all(layer is not None for layer in layers):
            return "layer" if all(layer in PARAMETERLESS for layer in layers) else "model"
        if facts.training.is_model(expr):
            return "model"
        return None

    def _model_call_kind(self, call: cst.Call) -> str | None:
        func = call.func
        if isinstance(func, cst.Call):  # nn.Linear(4, 2)(x)
            layer = _nn_layer(self.facts, func)
            if layer is None:
                return None
            return "layer" if layer in PARAMETERLESS else "model"
        return self._module_kind(func)

    def cut_by_no_grad(self, node: cst.CSTNode) -> bool:
        """``node`` is a model call cut because it runs under ``torch.no_grad()``."""
        return (
            isinstance(node, cst.Call)
            and self._model_call_kind(node) == "model"
            and self._grad_disabled(node)
        )

    def _grad_disabled(self, node: cst.CSTNode) -> bool:
        """Inside a ``torch.no_grad()``-like block or decorated function."""
        tree = self.facts.tree
        for ancestor in tree.ancestors(node):
            if isinstance(ancestor, cst.With):
                for item in ancestor.items:
                    if grad_disabling(self.facts, item.item) and not tree.contains(item, node):
                        return True
            elif isinstance(ancestor, cst.FunctionDef):
                if any(grad_disabling(self.facts, d.decorator) for d in ancestor.decorators):
                    return True
        return False

    # -- losses with graphs (DL403) --------------------------------------------------------
    def graph_loss(self, expr: cst.CSTNode, depth: int = 0) -> bool | None:
        """True when ``expr`` is a loss tensor known to hold a graph, False when it is
        known to be cut from one, None when unknown."""
        if depth > MAX_DEPTH:
            return None
        recurse = lambda e: self.graph_loss(e, depth + 1)  # noqa: E731
        facts = self.facts
        if isinstance(expr, cst.BinaryOperation):
            parts = [recurse(expr.left), recurse(expr.right)]
            return True if True in parts else (False if parts == [False, False] else None)
        if isinstance(expr, cst.UnaryOperation):
            return recurse(expr.expression)
        if isinstance(expr, cst.Attribute):
            return False if expr.attr.value in CUT_ATTRIBUTES else None
        if isinstance(expr, cst.Name):
            binding = facts.names.binding_at(expr.value, expr)
            if binding is None or binding.kind != "assign" or binding.path:
                return None
            if binding.value is None:
                return None
            return recurse(binding.value)
        if not isinstance(expr, cst.Call):
            return None
        func = expr.func
        if isinstance(func, cst.Attribute) and facts.qualname(func) is None:
            if func.attr.value in CUT_METHODS:
                return False
            if func.attr.value in KEEP_METHODS and func.attr.value != "requires_grad_":
                return recurse(func.value)
        if isinstance(func, cst.Name) and func.value in REWRAP_BUILTINS:
            if facts.names.binding_at(func.value, func) is None:
                return False
        if (facts.qualname(func) or "") in REWRAP_FUNCTIONS:
            return False
        if facts.losses.loss_call(expr) is not None:
            return self.loss_has_graph(expr)
        function = facts.values.called_function(expr)
        if function is not None:
            returns = facts.values.returns(function)
            found = {recurse(r) for r in returns}
            return found.pop() if len(found) == 1 else None
        return None

    def loss_has_graph(self, call: cst.Call) -> bool:
        """A loss call made with gradients enabled whose input is not known to be cut."""
        if evaluation_reason(self.facts, call) is not None or self._grad_disabled(call):
            return False
        return self.status(call).word not in (CUT, NONE)

    def scalar_loss(self, expr: cst.CSTNode) -> bool:
        """``expr`` is (a name bound to) a loss call that reduces to a scalar."""
        if isinstance(expr, cst.Name):
            binding = self.facts.names.binding_at(expr.value, expr)
            if binding is None or binding.kind != "assign" or binding.path:
                return False
            expr = binding.value
        if not isinstance(expr, cst.Call) or self.facts.losses.loss_call(expr) is None:
            return False
        reduction = keyword(expr, "reduction")
        loss = self.facts.losses.loss_call(expr)
        if not loss.functional:
            reduction = (
                keyword(loss.callee, "reduction") if isinstance(loss.callee, cst.Call) else None
            )
        return reduction is None or literal_value(reduction.value) in ("mean", "sum")

    # -- backward ---------------------------------------------------------------------------
    def backward_tensor(self, call: cst.Call) -> cst.BaseExpression | None:
        """The tensor a backward call differentiates: ``loss`` in ``loss.backward()``,
        ``scaler.scale(loss).backward()``, ``accelerator.backward(loss)``."""
        func = call.func
        if not isinstance(func, cst.Attribute):
            return None
        if self.facts.qualname(func) is not None:
            value = argument(call, 0, "tensors")
            return value if not isinstance(value, (cst.List, cst.Tuple)) else None
        receiver = func.value
        name = (dotted(receiver) or "").rsplit(".", 1)[-1].lower()
        if any(word in name for word in TRAINER_WORDS):
            return argument(call, 0, "loss")
        if (
            isinstance(receiver, cst.Call)
            and isinstance(receiver.func, cst.Attribute)
            and receiver.func.attr.value == "scale"
            and len(receiver.args) == 1
        ):
            return receiver.args[0].value
        return receiver


def _nn_layer(facts: ModuleFacts, node: cst.CSTNode) -> str | None:
    """The class name of a ``torch.nn`` layer construction (``Linear``), else None."""
    if not isinstance(node, cst.Call):
        return None
    qualname = facts.qualname(node.func) or ""
    if not qualname.startswith("torch.nn."):
        return None
    name = qualname.rsplit(".", 1)[-1]
    return name if name[:1].isupper() else None


_CACHE_ATTRIBUTE = "_dllint_graph"


def graph_of(facts: ModuleFacts) -> Graph:
    """The module's graph facts, computed once."""
    graph = facts.__dict__.get(_CACHE_ATTRIBUTE)
    if graph is None:
        graph = Graph(facts)
        facts.__dict__[_CACHE_ATTRIBUTE] = graph
    return graph


__all__ = ["CUT", "LIVE", "NONE", "UNKNOWN", "Graph", "Status", "graph_of"]
