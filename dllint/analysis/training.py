"""Training-loop facts: backward calls, optimizers, their steps and gradient clearing.

These are the questions the DL4xx rules ask of a training loop:

- which calls run a backward pass (``loss.backward()``, ``scaler.scale(loss).backward()``,
  ``accelerator.backward(loss)``, ``torch.autograd.backward``), and not the ones that
  keep gradients elsewhere (``torch.distributed.autograd.backward`` writes into a
  per-iteration context, ``torch.autograd.grad`` returns them);
- which expressions hold a PyTorch optimizer, identified by its construction when the
  value can be followed, and which calls step it (``opt.step()``, ``scaler.step(opt)``);
- which models an optimizer's parameters come from (``optim.SGD(model.parameters())``);
- which calls and statements clear an optimizer's gradients (``opt.zero_grad()``,
  ``model.zero_grad()`` of its model, ``p.grad = None``);
- which loops train: their reach (the loop plus same-module functions it runs) holds a
  backward call and an optimizer step.

Precision first: a value that cannot be followed is only taken for an optimizer when
its name says so (``optimizer``, ``opt_g``) and the file is PyTorch code and no other
framework's; a ``zero_grad()`` whose receiver is not provably something else counts as
clearing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.names import ITER
from dllint.analysis.tree import argument, call_name, dotted, literal_value

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

# Constructors of optimizers outside ``torch.optim`` whose ``step``/``zero_grad``
# behave like torch's (prefixes of qualified names).
OPTIMIZER_PREFIXES = (
    "torch.optim.",
    "torch.distributed.optim.ZeroRedundancyOptimizer",
    "torch.distributed.optim.zero_redundancy_optimizer.ZeroRedundancyOptimizer",
    "transformers.AdamW",
    "transformers.Adafactor",
    "transformers.optimization.",
    "apex.optimizers.",
    "bitsandbytes.optim.",
    "timm.optim.",
    "torch_optimizer.",
    "lion_pytorch.",
    "deepspeed.ops.adam.",
    "deepspeed.ops.lamb.",
)
# Things under those prefixes that are not optimizers.
NOT_OPTIMIZER_PREFIXES = (
    "torch.optim.lr_scheduler.",
    "torch.optim.swa_utils.",
)
# Factories (lower-case) that return an optimizer.
OPTIMIZER_FACTORIES = (
    "timm.optim.create_optimizer",
    "timm.optim.create_optimizer_v2",
    "timm.optim.optim_factory.create_optimizer",
    "timm.optim.optim_factory.create_optimizer_v2",
)
OPTIMIZER_BASES = ("torch.optim.Optimizer", "torch.optim.optimizer.Optimizer")

# Calls that return the optimizer they are given (argument 0 or keyword ``optimizer``).
OPTIMIZER_WRAPPER_FUNCTIONS = (
    "horovod.torch.DistributedOptimizer",
    "torch.distributed.optim.ZeroRedundancyOptimizer",
)
OPTIMIZER_WRAPPER_METHODS = ("prepare_optimizer",)
# Calls that return a tuple of the objects they are given, in order
# (``model, opt = accelerator.prepare(model, opt)``, ``fabric.setup(model, opt)``,
# apex ``amp.initialize``).
TUPLE_PASSTHROUGH_METHODS = ("prepare", "setup")
TUPLE_PASSTHROUGH_FUNCTIONS = ("apex.amp.initialize",)

GRAD_SCALERS = ("GradScaler", "ShardedGradScaler")

# Roots of other frameworks: values they make are never torch optimizers, and a file
# importing them gets no name-based guesses.
OTHER_FRAMEWORKS = frozenset(
    {
        "mxnet",
        "tensorflow",
        "keras",
        "tf_keras",
        "jax",
        "jaxlib",
        "optax",
        "flax",
        "haiku",
        "paddle",
        "oneflow",
        "mindspore",
        "jittor",
        "chainer",
        "theano",
        "lasagne",
        "megengine",
        "cupy",
    }
)
# Roots whose constructions are known not to be optimizers unless listed above.
KNOWN_NOT_OPTIMIZER_ROOTS = OTHER_FRAMEWORKS | {"torch", "numpy", "scipy", "sklearn"}
TORCH_ROOTS = frozenset({"torch", "lightning", "pytorch_lightning", "accelerate"})

DIST_BACKWARD = ("torch.distributed.autograd.backward",)
AUTOGRAD_BACKWARD = "torch.autograd.backward"

# Model constructors from libraries (so ``X.zero_grad()`` on them is a model's).
MODEL_PREFIXES = ("torch.nn.", "torchvision.models.", "timm.", "transformers.")

# In-place tensor methods that wipe a ``.grad`` they are called on.
GRAD_RESET_METHODS = frozenset({"zero_", "detach_"})
# ... and those that do with a literal 0 (``p.grad.mul_(1 / k)`` only rescales).
GRAD_RESET_WITH_ZERO = frozenset({"fill_", "mul_"})
LIST_MUTATORS = frozenset({"append", "extend", "insert", "update", "add", "__iadd__"})
PARAMETER_METHODS = frozenset({"parameters", "named_parameters"})
# Calls named after gradients that do not write ``.grad``.
NOT_GRADIENT_WRITERS = frozenset(
    {"zero_grad", "no_grad", "enable_grad", "set_grad_enabled", "requires_grad_"}
)

SCHEDULER_PREFIX = "torch.optim.lr_scheduler."
# Schedulers stepped on a metric: stepping them first skips no value of a schedule.
NOT_STEP_SCHEDULERS = frozenset({"ReduceLROnPlateau"})
# ``get_linear_schedule_with_warmup`` and friends return a torch ``LambdaLR``.
SCHEDULE_FACTORY_ROOTS = frozenset({"transformers", "diffusers"})


@dataclass(frozen=True)
class Optimizer:
    """An expression that holds an optimizer.

    ``keys`` identify it: its construction calls when the value can be followed, else
    the parameter or attribute it comes from, plus its dotted text. Two optimizers
    are the same when their keys meet.
    """

    expr: cst.BaseExpression
    name: str
    keys: frozenset
    constructions: tuple[cst.Call, ...]

    def same_as(self, other: Optimizer) -> bool:
        return bool(self.keys & other.keys)


@dataclass(frozen=True)
class ModelRef:
    """A model whose parameters an optimizer holds (``model`` in ``model.parameters()``)."""

    expr: cst.BaseExpression
    name: str | None
    keys: frozenset
    within: frozenset = frozenset()  # keys of the models it is an attribute of

    def related(self, other: ModelRef) -> bool:
        """The same model, or one is a submodule of the other."""
        if self.keys & other.keys or self.keys & other.within or other.keys & self.within:
            return True
        if self.name and other.name:
            a, b = self.name, other.name
            return a == b or a.startswith(b + ".") or b.startswith(a + ".")
        return False


@dataclass(frozen=True)
class OptimizerStep:
    """A call that applies ``optimizer``'s update: ``opt.step()`` or ``scaler.step(opt)``."""

    call: cst.Call
    optimizer: Optimizer
    scaler: cst.BaseExpression | None = None

    @property
    def text(self) -> str:
        """The step as the user wrote it, shortened: ``scaler.step(optimizer)``."""
        if self.scaler is not None:
            return f"{dotted(self.scaler) or 'scaler'}.step({self.optimizer.name})"
        return f"{self.optimizer.name}.step()"


@dataclass(frozen=True)
class Scheduler:
    """An expression that holds a learning-rate scheduler, with its constructions."""

    expr: cst.BaseExpression
    name: str
    constructions: tuple[cst.Call, ...]


@dataclass(frozen=True)
class TrainingLoop:
    """A loop whose reach runs backward and steps optimizers."""

    loop: cst.For | cst.While
    backwards: tuple[cst.Call, ...]
    steps: tuple[OptimizerStep, ...]


class Training:
    """Training facts of one module; ask through ``facts.training``."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self._optimizers: dict[cst.CSTNode, Optimizer | None] = {}
        self._sources: dict[cst.Call, tuple[ModelRef, ...] | None] = {}
        self._roots: dict[cst.CSTNode, list[cst.CSTNode]] = {}

    # -- backward -------------------------------------------------------------------
    def is_backward(self, call: cst.Call) -> bool:
        """A call that accumulates gradients into ``.grad`` of the parameters."""
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "backward":
            return False
        qualname = self.facts.qualname(func)
        if qualname is not None:
            # A module function: only torch.autograd.backward writes into .grad.
            return qualname == AUTOGRAD_BACKWARD
        return True

    @cached_property
    def backward_calls(self) -> list[cst.Call]:
        return [call for call in self.facts.calls() if self.is_backward(call)]

    # -- optimizers -----------------------------------------------------------------
    def optimizer(self, expr: cst.CSTNode) -> Optimizer | None:
        """The optimizer ``expr`` holds, or None when it is not (known to be) one."""
        if expr not in self._optimizers:
            self._optimizers[expr] = self._classify_optimizer(expr)
        return self._optimizers[expr]

    def is_optimizer_construction(self, call: cst.CSTNode) -> bool:
        """``optim.Adam(...)``, ``bnb.optim.Adam8bit(...)``, an in-module Optimizer subclass."""
        return isinstance(call, cst.Call) and self._construction_kind(call) == "optimizer"

    def optimizer_constructions(self) -> list[cst.Call]:
        return [call for call in self.facts.calls() if self.is_optimizer_construction(call)]

    def _classify_optimizer(self, expr: cst.CSTNode) -> Optimizer | None:
        name = dotted(expr)
        kinds: list[str] = []
        keys: set = set()
        constructions: list[cst.Call] = []
        for leaf_node, key, kind in self._optimizer_leaves(expr):
            kinds.append(kind)
            keys.add(key)
            if kind == "optimizer" and isinstance(leaf_node, cst.Call):
                constructions.append(leaf_node)
        if name:
            keys.add(("text", name))
        if "optimizer" in kinds:
            pass
        elif "other" in kinds or "unknown" not in kinds or not self._named_like_optimizer(name):
            return None
        return Optimizer(expr, name or "optimizer", frozenset(keys), tuple(constructions))

    def _optimizer_leaves(self, expr: cst.CSTNode, depth: int = 0):
        """(leaf node, identity key, kind) for every value ``expr`` may hold."""
        values = self.facts.values
        for leaf in values.origins(expr, through=self._optimizer_passthrough):
            node, path = leaf.node, leaf.path
            if isinstance(node, cst.Name) and node.value == "None" and not path:
                continue
            if path and depth < 4:
                inner = self._tuple_passthrough(node, path)
                if inner is not None:
                    yield from self._optimizer_leaves(inner, depth + 1)
                    continue
                if path == ((ITER,),) and isinstance(node, (cst.List, cst.Tuple)):
                    for element in node.elements:
                        yield from self._optimizer_leaves(element.value, depth + 1)
                    continue
            if path:
                yield node, ("node", node, path), "unknown"
                continue
            yield node, self._identity(node), self._leaf_kind(node)

    def _leaf_kind(self, node: cst.CSTNode) -> str:
        if isinstance(node, cst.Call):
            return self._construction_kind(node)
        if isinstance(node, cst.Name):
            binding = self.facts.names.binding_at(node.value, node)
            if binding is not None and binding.kind in ("import", "def", "class"):
                return "other"
            return "unknown"
        if isinstance(node, (cst.Attribute, cst.Subscript)):
            return "unknown"
        return "other"  # literals, lambdas, comprehensions: not optimizers

    def _construction_kind(self, call: cst.Call) -> str:
        info = self.facts.classes.constructed(call)
        if info is not None:
            return "optimizer" if info.derives_from(OPTIMIZER_BASES) else "other"
        qualname = self.facts.qualname(call.func)
        if qualname is None:
            return "unknown"
        if qualname in OPTIMIZER_FACTORIES:
            return "optimizer"
        if qualname.startswith(NOT_OPTIMIZER_PREFIXES):
            return "other"
        last = qualname.rsplit(".", 1)[-1]
        if qualname.startswith(OPTIMIZER_PREFIXES) and last[:1].isupper():
            return "optimizer"
        if qualname.split(".")[0] in KNOWN_NOT_OPTIMIZER_ROOTS:
            return "other"
        return "unknown"

    def _optimizer_passthrough(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """``hvd.DistributedOptimizer(opt)``, ``accelerator.prepare_optimizer(opt)``,
        ``accelerator.prepare(opt)`` hold the optimizer they are given."""
        if not isinstance(node, cst.Call) or not node.args:
            return None
        func = node.func
        qualname = self.facts.qualname(func)
        method = func.attr.value if isinstance(func, cst.Attribute) else None
        if qualname in OPTIMIZER_WRAPPER_FUNCTIONS and qualname not in OPTIMIZER_PREFIXES:
            return argument(node, 0, "optimizer")
        if qualname is None and method in OPTIMIZER_WRAPPER_METHODS:
            return argument(node, 0, "optimizer")
        if qualname is None and method in TUPLE_PASSTHROUGH_METHODS and len(node.args) == 1:
            return argument(node, 0)
        return None

    def _tuple_passthrough(self, node: cst.CSTNode, path: tuple) -> cst.CSTNode | None:
        """Element i of ``accelerator.prepare(a, b, c)`` / ``amp.initialize(m, o)``."""
        if not isinstance(node, cst.Call) or path[0][0] != "item" or len(path) != 1:
            return None
        func = node.func
        qualname = self.facts.qualname(func)
        is_method = (
            qualname is None
            and isinstance(func, cst.Attribute)
            and func.attr.value in TUPLE_PASSTHROUGH_METHODS
        )
        if not is_method and qualname not in TUPLE_PASSTHROUGH_FUNCTIONS:
            return None
        positional = [a for a in node.args if a.keyword is None]
        index = path[0][1]
        if any(a.star for a in positional) or not 0 <= index < len(positional):
            return None
        return positional[index].value

    def _named_like_optimizer(self, name: str | None) -> bool:
        """An unknown value taken for an optimizer by its name, in PyTorch-only files."""
        if not name:
            return False
        last = name.rsplit(".", 1)[-1].lower()
        if "opt" not in last or "sched" in last or "option" in last or last == "opts":
            return False
        roots = self._imported_roots
        return bool(roots & TORCH_ROOTS) and not roots & OTHER_FRAMEWORKS

    @cached_property
    def _imported_roots(self) -> frozenset[str]:
        roots = set()
        tree = self.facts.tree
        for node in tree.nodes(cst.Import):
            for alias in node.names:
                full = dotted(alias.name)
                if full:
                    roots.add(full.split(".")[0])
        for node in tree.nodes(cst.ImportFrom):
            if not node.relative and node.module is not None:
                full = dotted(node.module)
                if full:
                    roots.add(full.split(".")[0])
        return frozenset(roots)

    def _identity(self, node: cst.CSTNode):
        """What one leaf value is: its construction, the parameter or class it comes
        from (``self`` is its class), else its text."""
        if isinstance(node, cst.Name):
            binding = self.facts.names.binding_at(node.value, node)
            if binding is not None and binding.kind == "param":
                function = binding.scope
                owner = self.facts.tree.class_of(function)
                params = getattr(function, "params", None)
                first = [*params.posonly_params, *params.params][:1] if params else []
                if owner is not None and first and first[0] is binding.node:
                    return ("class", owner)
                return ("node", binding.node)
            if binding is not None and binding.kind != "augassign":
                return ("node", binding.node)
        text = dotted(node)
        if text is not None and not isinstance(node, cst.Call):
            return ("text", text)
        return ("node", node)

    # -- steps ----------------------------------------------------------------------
    def step_of(self, call: cst.Call) -> OptimizerStep | None:
        """The optimizer step ``call`` is, if it is one."""
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "step":
            return None
        receiver = func.value
        optimizer = self.optimizer(receiver)
        if optimizer is not None:
            return OptimizerStep(call, optimizer)
        target = argument(call, 0, "optimizer")
        if target is not None and self._is_grad_scaler(receiver):
            optimizer = self.optimizer(target)
            if optimizer is not None:
                return OptimizerStep(call, optimizer, scaler=receiver)
        return None

    @cached_property
    def steps(self) -> list[OptimizerStep]:
        return [step for call in self.facts.calls() if (step := self.step_of(call)) is not None]

    def _is_grad_scaler(self, expr: cst.CSTNode) -> bool:
        if self.facts.values.instance_class(expr) is not None:
            return False  # an in-module class: its own step method is analysed instead
        unknown = False
        for leaf in self.facts.values.origins(expr):
            node = leaf.node
            if isinstance(node, cst.Call) and not leaf.path:
                qualname = self.facts.qualname(node.func) or ""
                if qualname.rsplit(".", 1)[-1] in GRAD_SCALERS:
                    return True
                if qualname or self.facts.classes.constructed(node) is not None:
                    continue
            unknown = True
        name = dotted(expr) or ""
        return unknown and "scaler" in name.rsplit(".", 1)[-1].lower()

    # -- parameters -----------------------------------------------------------------
    def parameter_sources(self, optimizer: Optimizer) -> tuple[ModelRef, ...] | None:
        """The models whose parameters ``optimizer`` holds; None when not known."""
        if not optimizer.constructions:
            return None
        found: list[ModelRef] = []
        for construction in optimizer.constructions:
            sources = self.construction_sources(construction)
            if sources is None:
                return None
            found.extend(sources)
        return tuple(found)

    def construction_sources(self, construction: cst.Call) -> tuple[ModelRef, ...] | None:
        if construction not in self._sources:
            params = argument(construction, 0, "params")
            found: list[ModelRef] = []
            qualname = self.facts.qualname(construction.func) or ""
            known = (
                params is not None
                and qualname not in OPTIMIZER_FACTORIES
                and self._collect_sources(params, found, 0)
            )
            self._sources[construction] = tuple(found) if known and found else None
        return self._sources[construction]

    def _collect_sources(self, expr: cst.CSTNode, found: list[ModelRef], depth: int) -> bool:
        """Add the models ``expr`` (a parameter collection) draws from; False if unclear."""
        if depth > 8:
            return False
        recurse = lambda e: self._collect_sources(e, found, depth + 1)  # noqa: E731
        if isinstance(expr, cst.Call):
            func = expr.func
            if isinstance(func, cst.Attribute) and func.attr.value in PARAMETER_METHODS:
                found.append(self.model_ref(func.value))
                return True
            qualname = self.facts.qualname(func)
            builtin = self._builtin_name(func)
            if builtin in ("list", "tuple", "iter", "set", "sorted") and len(expr.args) == 1:
                return recurse(expr.args[0].value)
            if builtin == "filter" and len(expr.args) == 2:
                return recurse(expr.args[1].value)
            if qualname in ("itertools.chain", "itertools.chain.from_iterable"):
                return bool(expr.args) and all(
                    not a.keyword and recurse(a.value) for a in expr.args
                )
            return False
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            return recurse(expr.left) and recurse(expr.right)
        if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
            return bool(expr.elements) and all(recurse(e.value) for e in expr.elements)
        if isinstance(expr, cst.Dict):
            for element in expr.elements:
                if isinstance(element, cst.DictElement) and dotted(element.key) is None:
                    key = element.key
                    if isinstance(key, cst.SimpleString) and key.evaluated_value == "params":
                        return recurse(element.value)
            return False
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
            return recurse(expr.for_in.iter)
        if isinstance(expr, (cst.Name, cst.Attribute)):
            if isinstance(expr, cst.Name) and self._mutated(expr):
                return False
            leaves = self.facts.values.origins(expr)
            if not leaves or any(leaf.path or leaf.node is expr for leaf in leaves):
                return False
            return all(recurse(leaf.node) for leaf in leaves)
        return False

    def _builtin_name(self, func: cst.CSTNode) -> str | None:
        if isinstance(func, cst.Name):
            if self.facts.names.binding_at(func.value, func) is None:
                return func.value
        return None

    def _mutated(self, name: cst.Name) -> bool:
        """``params.append(...)``/``params += ...`` anywhere in the name's scope."""
        scope = self.facts.tree.scope_of(name)
        for call in self.facts.tree.descendants(scope, cst.Call):
            func = call.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value in LIST_MUTATORS
                and isinstance(func.value, cst.Name)
                and func.value.value == name.value
            ):
                return True
        for node in self.facts.tree.descendants(scope, cst.AugAssign):
            if isinstance(node.target, cst.Name) and node.target.value == name.value:
                return True
        return False

    def model_ref(self, expr: cst.CSTNode) -> ModelRef:
        """``expr`` as a model: its identity, and that of the models it is part of."""
        within: set = set()
        owner = expr
        while isinstance(owner, cst.Attribute):
            owner = owner.value
            within |= self._model_keys(owner)
        return ModelRef(expr, dotted(expr), self._model_keys(expr), frozenset(within))

    def _model_keys(self, expr: cst.CSTNode) -> frozenset:
        values = self.facts.values
        keys = {
            self._identity(leaf.node) if not leaf.path else ("node", leaf.node, leaf.path)
            for leaf in values.origins(expr, through=values.module_passthrough)
        }
        name = dotted(expr)
        if name:
            keys.add(("text", name))
        return frozenset(keys)

    def is_model(self, expr: cst.CSTNode) -> bool:
        """Known to be a model: its parameters feed an optimizer here, it is an in-module
        ``nn.Module`` or a library model constructor."""
        ref = self.model_ref(expr)
        if any(ref.keys & source.keys for source in self._all_sources):
            return True
        if isinstance(expr, cst.Attribute) and self.is_model(expr.value):
            return True  # a submodule of a model (``netD.module``, ``model.encoder``)
        values = self.facts.values
        info = values.instance_class(expr)
        if info is not None and info.is_module:
            return True
        for leaf in values.origins(expr, through=values.module_passthrough):
            if isinstance(leaf.node, cst.Call) and not leaf.path:
                qualname = self.facts.qualname(leaf.node.func) or ""
                if qualname.startswith(MODEL_PREFIXES):
                    return True
        return False

    @cached_property
    def _all_sources(self) -> list[ModelRef]:
        found = []
        for construction in self.optimizer_constructions():
            found.extend(self.construction_sources(construction) or ())
        return found

    # -- clearing -------------------------------------------------------------------
    def is_grad_reset(self, node: cst.CSTNode) -> bool:
        """``p.grad = None``, ``del p.grad``, ``p.grad.zero_()``, ``p.grad.data.zero_()``:
        clears whatever parameters it runs over (taken as clearing every optimizer)."""
        if isinstance(node, cst.Assign):
            return any(_is_grad_attribute(t.target) for t in node.targets)
        if isinstance(node, cst.Del):
            targets = node.target.elements if isinstance(node.target, cst.Tuple) else ()
            return _is_grad_attribute(node.target) or any(
                _is_grad_attribute(e.value) for e in targets
            )
        if isinstance(node, cst.Call):
            func = node.func
            if not isinstance(func, cst.Attribute) or not _mentions_grad(func.value):
                return False
            method = func.attr.value
            if method in GRAD_RESET_WITH_ZERO:
                value = argument(node, 0)
                return value is not None and literal_value(value) == 0
            return method in GRAD_RESET_METHODS
        return False

    def clears(self, node: cst.CSTNode, optimizer: Optimizer) -> bool:
        """Whether ``node`` (a call or statement) clears ``optimizer``'s gradients."""
        if self.is_grad_reset(node):
            return True
        if not isinstance(node, cst.Call) or call_name(node) != "zero_grad":
            return False
        func = node.func
        if not isinstance(func, cst.Attribute):
            return True  # a bare zero_grad() of some wrapper: not provably another's
        receiver = func.value
        other = self.optimizer(receiver)
        if other is not None:
            return other.same_as(optimizer)
        sources = self.parameter_sources(optimizer)
        if sources is None:
            return True
        ref = self.model_ref(receiver)
        if any(ref.related(source) for source in sources):
            return True
        return not self.is_model(receiver)

    # -- loops ----------------------------------------------------------------------
    def regions(self, root: cst.CSTNode) -> list[cst.CSTNode]:
        """``root`` plus the same-module functions its reach runs, and functions passed
        by name to calls in it (an LBFGS closure given to ``step``)."""
        if root not in self._roots:
            loops = self.facts.loops
            found: list[cst.CSTNode] = [root]
            for call in loops.reach(root):
                function = loops.callee(call)
                if function is not None and function not in found:
                    found.append(function)
            for region in list(found):
                for call in self.facts.tree.descendants(region, cst.Call):
                    for function in self._functions_passed(call):
                        if function not in found:
                            found.append(function)
            self._roots[root] = found
        return self._roots[root]

    def _functions_passed(self, call: cst.Call) -> list[cst.FunctionDef]:
        found = []
        for arg in call.args:
            if isinstance(arg.value, cst.Name):
                binding = self.facts.names.binding_at(arg.value.value, arg.value)
                if binding is not None and binding.kind == "def":
                    found.append(binding.node)
        return found

    def reach_nodes(self, root: cst.CSTNode, *types: type) -> list[cst.CSTNode]:
        """Nodes of ``types`` in ``root``'s regions (see ``regions``)."""
        tree = self.facts.tree
        found: list[cst.CSTNode] = []
        seen: set[int] = set()
        for region in self.regions(root):
            for node in tree.descendants(region, *types):
                if id(node) not in seen:
                    seen.add(id(node))
                    found.append(node)
        return found

    def training_loop(self, loop: cst.For | cst.While) -> TrainingLoop | None:
        """The loop's backward calls and optimizer steps, when it has both."""
        calls = self.reach_nodes(loop, cst.Call)
        backwards = tuple(call for call in calls if self.is_backward(call))
        if not backwards:
            return None
        steps = tuple(step for call in calls if (step := self.step_of(call)) is not None)
        if not steps:
            return None
        return TrainingLoop(loop, backwards, steps)

    @cached_property
    def training_loops(self) -> list[TrainingLoop]:
        found = []
        if not self.backward_calls:
            return found
        for loop in self.facts.loops.all():
            training = self.training_loop(loop)
            if training is not None:
                found.append(training)
        return found

    def constructed_in(self, root: cst.CSTNode, optimizer: Optimizer) -> bool:
        """Whether ``optimizer`` is built inside ``root``'s reach (afresh every iteration
        of a loop: often with a fresh model too, so nothing carries over)."""
        tree = self.facts.tree
        return any(
            tree.contains(region, construction)
            for construction in optimizer.constructions
            for region in self.regions(root)
        )

    def clears_in(self, root: cst.CSTNode, optimizer: Optimizer) -> bool:
        """Whether anything in ``root``'s reach clears ``optimizer``'s gradients."""
        nodes = self.reach_nodes(root, cst.Call, cst.Assign, cst.Del)
        if any(self.clears(node, optimizer) for node in nodes):
            return True
        return self._cleared_by_others(nodes, optimizer)

    def _cleared_by_others(self, nodes: list, optimizer: Optimizer) -> bool:
        """Other optimizers' ``zero_grad()`` calls among ``nodes`` that together clear
        every model ``optimizer`` draws from: an InfoGAN's optimizer over
        ``chain(G.parameters(), D.parameters())`` is cleared by the G and D
        optimizers' own ``zero_grad()``."""
        sources = self.parameter_sources(optimizer)
        if not sources:
            return False
        cleared: list[ModelRef] = []
        for node in nodes:
            if not isinstance(node, cst.Call) or call_name(node) != "zero_grad":
                continue
            if not isinstance(node.func, cst.Attribute):
                continue
            other = self.optimizer(node.func.value)
            if other is None or other.same_as(optimizer):
                continue
            cleared.extend(self.parameter_sources(other) or ())
        return all(any(_covers_model(ref, source) for ref in cleared) for source in sources)

    # -- certain clearing (DL402) -----------------------------------------------------
    def clears_all_of(self, node: cst.CSTNode, optimizer: Optimizer) -> bool:
        """Whether ``node`` certainly clears the gradients of every parameter
        ``optimizer`` holds: ``opt.zero_grad()`` of that optimizer, ``model.zero_grad()``
        of the model (or an owner of every model) it draws from, ``p.grad = None`` /
        ``p.grad.zero_()`` in a loop over those parameters. Unlike ``clears``, doubt
        answers False: clearing part of the parameters (freezing a submodule for one
        step) or parameters of unknown origin is not counted."""
        if isinstance(node, cst.Call) and call_name(node) == "zero_grad":
            receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
            if receiver is None:
                return False
            other = self.optimizer(receiver)
            if other is not None:
                return other.same_as(optimizer)
            return self._covers(receiver, optimizer)
        if not self._is_certain_grad_reset(node):
            return False
        owner = _grad_owner(node)
        if not isinstance(owner, cst.Name):
            return False
        loop = self._loop_binding(owner)
        if loop is None:
            return False
        source = loop.iter
        if isinstance(source, cst.Call) and isinstance(source.func, cst.Attribute):
            if source.func.attr.value in PARAMETER_METHODS and not source.args:
                return self._covers(source.func.value, optimizer)
        if isinstance(source, cst.Subscript) and isinstance(source.value, cst.Name):
            index = source.slice[0].slice if len(source.slice) == 1 else None
            key = getattr(index, "value", None)
            if isinstance(key, cst.SimpleString) and key.evaluated_value == "params":
                groups = self._loop_binding(source.value)
                if groups is not None:
                    it = groups.iter
                    if isinstance(it, cst.Attribute) and it.attr.value == "param_groups":
                        other = self.optimizer(it.value)
                        return other is not None and other.same_as(optimizer)
        return False

    def _covers(self, receiver: cst.CSTNode, optimizer: Optimizer) -> bool:
        """``receiver`` is (or owns) every model whose parameters ``optimizer`` holds."""
        sources = self.parameter_sources(optimizer)
        if not sources or not self.is_model(receiver):
            return False
        ref = self.model_ref(receiver)
        for source in sources:
            same = bool(ref.keys & source.keys) or (ref.name and ref.name == source.name)
            owner = bool(ref.keys & source.within) or bool(
                ref.name and source.name and source.name.startswith(ref.name + ".")
            )
            if not (same or owner):
                return False
        return True

    def _is_certain_grad_reset(self, node: cst.CSTNode) -> bool:
        """``p.grad = None``, ``del p.grad``, ``p.grad.zero_()``, ``fill_(0)``, ``mul_(0)``
        (not ``p.grad = g``, which sets a gradient, nor ``detach_()``)."""
        if isinstance(node, cst.Assign):
            value = node.value
            return (
                isinstance(value, cst.Name)
                and value.value == "None"
                and any(_is_grad_attribute(t.target) for t in node.targets)
            )
        if isinstance(node, cst.Call) and call_name(node) == "detach_":
            return False
        return self.is_grad_reset(node)

    def _loop_binding(self, name: cst.Name) -> cst.For | None:
        """The enclosing ``for`` loop (same function) that binds ``name``."""
        for loop in self.facts.loops.enclosing(name):
            if isinstance(loop, cst.For) and _binds(loop.target, name.value):
                return loop
        return None

    def writes_gradients(self, node: cst.CSTNode) -> bool:
        """``node`` may put gradients into ``.grad``: a backward pass of any kind, a
        ``.grad`` assigned (not None) or updated in place, a call whose name speaks of
        gradients (``set_grads(model, g)``). Taken broadly: it only ever excuses."""
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
            grads = [t for t in targets if _is_grad_attribute(t) or _mentions_grad(t)]
            return bool(grads) and not self._is_certain_grad_reset(node)
        if isinstance(node, (cst.AugAssign, cst.AnnAssign)):
            return _mentions_grad(node.target) or _is_grad_attribute(node.target)
        if not isinstance(node, cst.Call):
            return False
        name = (call_name(node) or "").lower()
        if "backward" in name:
            return True
        func = node.func
        if isinstance(func, cst.Attribute) and _mentions_grad(func.value):
            return not self._is_certain_grad_reset(node)
        if "grad" in name and name not in NOT_GRADIENT_WRITERS and not name.startswith("clip"):
            return True
        return False

    # -- schedulers -------------------------------------------------------------------
    def scheduler(self, expr: cst.CSTNode) -> Scheduler | None:
        """The learning-rate scheduler ``expr`` holds, when every value it may hold is a
        ``torch.optim.lr_scheduler`` construction (or a transformers/diffusers
        ``get_*_schedule*`` factory, which build a ``LambdaLR``); ``ReduceLROnPlateau``
        is left out (it follows a metric, not the step count)."""
        leaves = list(self._scheduler_leaves(expr, 0))
        if not leaves or any(leaf is None for leaf in leaves):
            return None
        return Scheduler(expr, dotted(expr) or "scheduler", tuple(leaves))

    def _scheduler_leaves(self, expr: cst.CSTNode, depth: int):
        for leaf in self.facts.values.origins(expr, through=self._optimizer_passthrough):
            node, path = leaf.node, leaf.path
            if path and depth < 4:
                inner = self._tuple_passthrough(node, path)
                if inner is not None:
                    yield from self._scheduler_leaves(inner, depth + 1)
                    continue
            if not path and isinstance(node, cst.Call) and self.is_scheduler_construction(node):
                yield node
            else:
                yield None

    def is_scheduler_construction(self, call: cst.Call) -> bool:
        qualname = self.facts.qualname(call.func)
        if qualname is None:
            return False
        last = qualname.rsplit(".", 1)[-1]
        if qualname.startswith(SCHEDULER_PREFIX):
            return last[:1].isupper() and last not in NOT_STEP_SCHEDULERS
        if qualname.split(".")[0] in SCHEDULE_FACTORY_ROOTS and last.startswith("get_"):
            if last == "get_scheduler":
                name = argument(call, 0, "name")
                value = literal_value(name) if name is not None else None
                return isinstance(value, str) and "plateau" not in value
            return "schedule" in last
        return False

    def scheduler_optimizer(self, scheduler: Scheduler) -> Optimizer | None:
        """The optimizer every construction of ``scheduler`` was given, when known."""
        found: Optimizer | None = None
        for construction in scheduler.constructions:
            qualname = self.facts.qualname(construction.func) or ""
            position = 1 if qualname.endswith(".get_scheduler") else 0
            arg = argument(construction, position, "optimizer")
            optimizer = self.optimizer(arg) if arg is not None else None
            if optimizer is None or (found is not None and not found.same_as(optimizer)):
                return None
            found = found or optimizer
        return found

    def scheduler_step_of(self, call: cst.Call) -> Scheduler | None:
        """``scheduler.step()`` without arguments (``step(epoch)`` sets the epoch)."""
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "step" or call.args:
            return None
        return self.scheduler(func.value)


def _covers_model(ref: ModelRef, source: ModelRef) -> bool:
    """``ref`` is the model ``source`` or one that owns it."""
    if ref.keys & source.keys or ref.keys & source.within:
        return True
    return bool(ref.name and source.name) and (
        ref.name == source.name or source.name.startswith(ref.name + ".")
    )


def _is_grad_attribute(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value == "grad"


def _grad_owner(node: cst.CSTNode) -> cst.CSTNode | None:
    """``p`` in ``p.grad = None``, ``del p.grad``, ``p.grad.data.zero_()``."""
    if isinstance(node, cst.Assign):
        target = node.targets[0].target
    elif isinstance(node, cst.Del):
        target = node.target
    elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        target = node.func.value
    else:
        return None
    while isinstance(target, cst.Attribute):
        if target.attr.value == "grad":
            return target.value
        target = target.value
    return None


def _binds(target: cst.CSTNode, name: str) -> bool:
    if isinstance(target, cst.Name):
        return target.value == name
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(_binds(element.value, name) for element in target.elements)
    return False


def _mentions_grad(node: cst.CSTNode) -> bool:
    """``p.grad`` or ``p.grad.data`` (the receiver of an in-place reset)."""
    while isinstance(node, cst.Attribute):
        if node.attr.value == "grad":
            return True
        if node.attr.value != "data":
            return False
        node = node.value
    return False


__all__ = [
    "ModelRef",
    "Optimizer",
    "OptimizerStep",
    "Scheduler",
    "Training",
    "TrainingLoop",
]
