"""Train/eval mode facts: which models behave differently in the two modes, which
calls switch a model's mode, where evaluation happens, and which mode a model is
in when it is called.

- *Mode layers* (``layers``): a model changes behaviour between ``train()`` and
  ``eval()`` when it holds dropout or batch norm: an in-module class (resolved by
  the definition bound at that point, as notebooks redefine classes) whose methods
  build ``torch.nn.Dropout*``/``BatchNorm*``/``SyncBatchNorm``/``InstanceNorm``
  with running statistics, submodules of such classes, or call
  ``F.dropout(..., training=self.training)``; an ``nn.Sequential`` of such layers;
  a torchvision/timm model constructor. ``transformers`` ``from_pretrained``
  models hold dropout too but come back already in eval mode. Anything else is
  unknown, and rules must not flag unknown models.
- *Mode calls* (``mode_call``): ``m.eval()``, ``m.train(False)`` (eval),
  ``m.train()``/``m.train(True)`` (train), ``m.train(flag)`` (unknown).
  ``requires_grad_`` is not a mode call.
- *The mode at a call* (``mode_at``): the latest mode call on that model reached
  before a node: earlier in the same function (a loop's later ``train()`` carries
  into the next iteration), inside same-module functions called before it, in
  the constructor of the class that owns ``self.model``, or at the call sites of
  the enclosing function (in their callers, recursively); module level and
  notebook cells in textual order.
- *Evaluation regions* (``evaluation_regions``): ``with torch.no_grad()`` /
  ``torch.inference_mode()`` / ``torch.set_grad_enabled(False)`` blocks,
  functions decorated with them, and functions named like evaluate/validate/
  test/predict/infer; not framework hooks (Lightning switches modes itself), not
  pytest tests, not ``forward``, and not a no_grad block inside a training
  iteration (GAN fake generation, EMA, manual SGD).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import ClassInfo, first_param
from dllint.analysis.evaluation import EVALUATION_WORDS, grad_disabling
from dllint.analysis.names import ITER
from dllint.analysis.tree import argument, call_name, dotted, keyword, literal_value

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

TRAIN = "train"
EVAL = "eval"
UNKNOWN = "unknown"

_NN_PREFIXES = ("torch.nn.", "torch.nn.modules.")
DROPOUT_LAYERS = {
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
}  # fmt: skip
BATCHNORM_LAYERS = {
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
}  # fmt: skip
INSTANCENORM_LAYERS = {
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
}  # fmt: skip
# functional forms that depend on the mode only when given ``training=self.training``
FUNCTIONAL_MODE_OPS = {
    "dropout": 2, "dropout1d": 2, "dropout2d": 2, "dropout3d": 2,
    "alpha_dropout": 2, "feature_alpha_dropout": 2, "batch_norm": 5,
}  # fmt: skip

TORCHVISION_BUILDER = re.compile(r"^torchvision\.models(\.[a-z_0-9]+)*\.[a-z][a-z0-9_]*$")
TORCHVISION_NOT_MODELS = {"transforms", "get_weight", "get_model_weights", "list_models"}
TIMM_BUILDERS = {"timm.create_model", "timm.models.create_model"}
# torchvision builders whose body (all but the head) normalises with batch norm.
BATCH_NORM_BODIES = (
    "resnet", "resnext", "wide_resnet", "densenet", "mobilenet", "efficientnet", "regnet",
    "shufflenet", "mnasnet", "inception", "googlenet",
)  # fmt: skip

TRAINING_WORDS = {"train", "training", "fit", "finetune", "trainer", "optimize", "update", "step"}
HELD_OUT_WORDS = {
    "val", "valid", "validation", "test", "testing", "holdout", "heldout",
    "xval", "xtest", "xvalid", "testx", "valx",
}  # fmt: skip
# Lightning (and similar) hooks: the framework puts the model in eval mode around them.
FRAMEWORK_HOOK_PREFIXES = (
    "validation_", "test_", "predict_", "on_validation", "on_test", "on_predict", "eval_step",
)  # fmt: skip
# Calls that only move or reshape the data a model is called on.
DATA_PASSTHROUGH_METHODS = {
    "to", "cuda", "cpu", "float", "double", "half", "long", "int", "bfloat16",
    "unsqueeze", "squeeze", "view", "reshape", "permute", "transpose", "contiguous",
    "flatten", "detach", "clone", "type", "requires_grad_",
}  # fmt: skip
DATA_PASSTHROUGH_FUNCTIONS = {
    "torch.tensor", "torch.Tensor", "torch.as_tensor", "torch.from_numpy",
    "torch.FloatTensor", "torch.LongTensor", "torch.autograd.Variable",
}  # fmt: skip
ITERATION_WRAPPERS = {"enumerate", "tqdm", "iter", "zip", "tqdm.tqdm", "tqdm.auto.tqdm"}
MAX_CALLER_DEPTH = 3


DROPOUT = "dropout"
BATCH_NORM = "batch norm"


@dataclass(frozen=True)
class Held:
    """The mode layers a model holds: the mode they start in (None: none known) and
    their kinds (dropout, batch norm)."""

    mode: str | None
    kinds: frozenset = frozenset()

    @staticmethod
    def combine(parts) -> Held:
        parts = [p for p in parts if p.mode is not None]
        if not parts:
            return NOTHING
        mode = TRAIN if any(p.mode == TRAIN for p in parts) else EVAL
        return Held(mode, frozenset().union(*(p.kinds for p in parts)))


NOTHING = Held(None)
PRETRAINED = Held(TRAIN, frozenset({"dropout", "batch norm"}))


@dataclass(frozen=True)
class ModeCall:
    """A call that sets ``target``'s mode: ``mode`` is "train", "eval" or "unknown"."""

    call: cst.Call
    target: cst.BaseExpression
    mode: str


@dataclass(frozen=True)
class ModelRef:
    """A model as seen at ``anchor``: its dotted text there (None when it has no name
    there) and the construction calls it may hold (``Net()``, ``resnet18()``)."""

    text: str | None
    anchor: cst.CSTNode
    leaves: frozenset


@dataclass(frozen=True)
class ModeEvent:
    """The latest mode-setting event before a node.

    ``node`` is the mode call itself (``direct``) or the call of a function, or a
    constructor, that sets the mode; ``carried`` marks a ``train()`` later in an
    enclosing loop, which holds from the second iteration on.
    """

    mode: str
    node: cst.CSTNode
    direct: bool
    carried: bool = False


@dataclass(frozen=True)
class Region:
    """Code that evaluates: a no_grad-like ``with`` block or a whole function.

    ``how`` is what makes it one, as the message shows it: ``torch.no_grad()``,
    ``@torch.no_grad()``, ``evaluate()``.
    """

    node: cst.With | cst.FunctionDef
    kind: str  # "block", "decorated", "named"
    how: str


class Modes:
    """Mode facts of one module; ask through ``facts.modes``."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.tree = facts.tree
        self.names = facts.names
        self.classes = facts.classes
        self.values = facts.values
        self.loops = facts.loops
        self._layers: dict[cst.CSTNode, Held] = {}
        self._class_layers: dict[int, Held] = {}
        self._leaves: dict[cst.CSTNode, frozenset] = {}
        self._callers: dict[cst.FunctionDef, list[cst.Call]] = {}
        self._trains_directly: dict[tuple, bool] = {}
        self._callees: dict[cst.Call, cst.FunctionDef | None] = {}

    # -- (1) mode layers ----------------------------------------------------------------
    def layers(self, model: cst.CSTNode) -> str | None:
        """Whether ``model`` holds dropout/batch norm: "train" (layers that start in
        training mode), "eval" (only ``from_pretrained`` models, which start in eval
        mode), or None (none, or unknown)."""
        return self._held(model).mode

    def layer_kinds(self, model: cst.CSTNode) -> frozenset[str]:
        """Which mode layers ``model`` holds: {"dropout", "batch norm"} or a part."""
        return self._held(model).kinds

    def _held(self, model: cst.CSTNode) -> Held:
        if model not in self._layers:
            owner = self._self_class(model)
            if owner is not None:
                self._layers[model] = self._class_held(owner, frozenset())
            else:
                self._layers[model] = Held.combine(
                    self._leaf_held(leaf.node)
                    for leaf in self.values.origins(model, through=self.values.module_passthrough)
                    if not leaf.path
                )
        return self._layers[model]

    def class_layers(self, info: ClassInfo) -> str | None:
        """Mode layers an in-module class builds in any of its methods (and in the
        same-module functions and classes they use), as ``layers`` says them."""
        return self._class_held(info, frozenset()).mode

    def _class_held(self, info: ClassInfo, visiting: frozenset) -> Held:
        key = id(info)
        if key in self._class_layers:
            return self._class_layers[key]
        if key in visiting:
            return NOTHING
        visiting = visiting | {key}
        found = []
        for cls in info.lineage():
            if any(_is_pretrained_builder(base) for base in cls.base_names if base):
                found.append(PRETRAINED)
            for method in cls.methods.values():
                for call in self.loops.reach(method):
                    found.append(self._call_held(call, visiting))
        result = Held.combine(found)
        self._class_layers[key] = result
        return result

    def _leaf_held(self, node: cst.CSTNode) -> Held:
        info = self.classes.constructed(node)
        if info is not None:
            return self._class_held(info, frozenset())
        if not isinstance(node, cst.Call):
            return NOTHING
        if self.values.containers.is_container(node):
            held = self.values.containers.of_module(node)
            if held is None:
                return NOTHING
            parts = [self._part_held(part) for part in held.parts]
            return Held.combine([*(self._held(layer) for layer in held.members), *parts])
        return self._call_held(node, frozenset())

    def _part_held(self, model: cst.CSTNode) -> Held:
        """Some children of a library model (``list(resnet.children())[:-1]``): batch norm
        when the model's body is built from it (ResNet, DenseNet, MobileNet...)."""
        qualname = self.names.qualname(model.func) if isinstance(model, cst.Call) else None
        if qualname and _is_pretrained_builder(qualname):
            name = qualname.rsplit(".", 1)[1]
            if name.startswith(BATCH_NORM_BODIES) or name.endswith("_bn"):
                return Held(TRAIN, frozenset({BATCH_NORM}))
        return NOTHING

    def _call_held(self, call: cst.Call, visiting: frozenset) -> Held:
        """What one construction or call inside a model contributes."""
        info = self.classes.constructed(call)
        if info is not None:
            return self._class_held(info, visiting)
        qualname = self.names.qualname(call.func)
        if qualname is None:
            return NOTHING
        if _is_pretrained_builder(qualname) or qualname in TIMM_BUILDERS:
            return PRETRAINED
        if _is_transformers_model(qualname):
            return Held(EVAL, frozenset({DROPOUT}))
        short = _nn_name(qualname)
        if short in DROPOUT_LAYERS:
            p = argument(call, 0, "p")
            return (
                NOTHING
                if p is not None and literal_value(p) == 0
                else Held(TRAIN, frozenset({DROPOUT}))
            )
        if short in BATCHNORM_LAYERS:
            track = keyword(call, "track_running_stats")
            if track is not None and literal_value(track.value) is False:
                return NOTHING
            return Held(TRAIN, frozenset({BATCH_NORM}))
        if short in INSTANCENORM_LAYERS:
            track = keyword(call, "track_running_stats")
            if track is not None and literal_value(track.value) is True:
                return Held(TRAIN, frozenset({BATCH_NORM}))
            return NOTHING
        if qualname.startswith("torch.nn.functional."):
            name = qualname.rsplit(".", 1)[1]
            position = FUNCTIONAL_MODE_OPS.get(name)
            if position is not None:
                training = argument(call, position, "training")
                if training is not None and literal_value(training) is None:
                    kind = BATCH_NORM if name == "batch_norm" else DROPOUT
                    return Held(TRAIN, frozenset({kind}))
        return NOTHING

    def _self_class(self, model: cst.CSTNode) -> ClassInfo | None:
        """The class whose instance ``model`` is when it is the method's ``self``."""
        return self.classes.self_of(model)

    # -- model calls -------------------------------------------------------------------
    def model_of_call(self, call: cst.Call) -> cst.BaseExpression | None:
        """The model a call runs, when it holds mode layers: ``model`` in ``model(x)``,
        ``self.model(x)``, ``model.forward(x)``, ``self(x)``."""
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            func = func.value
        if not isinstance(func, (cst.Name, cst.Attribute)) or dotted(func) is None:
            return None
        if self.names.qualname(func) is not None:
            return None
        return func if self.layers(func) is not None else None

    def model_calls(self, root: cst.CSTNode) -> list[tuple[cst.Call, cst.BaseExpression]]:
        """Calls inside ``root`` (not in nested functions) of models that hold mode layers."""
        found = []
        for call in self.tree.descendants(root, cst.Call):
            if self._in_nested_function(call, root):
                continue
            model = self.model_of_call(call)
            if model is not None:
                found.append((call, model))
        return found

    def built_for_a_smoke_test(self, model: cst.CSTNode, region: cst.CSTNode) -> bool:
        """``model`` is a name bound in ``region`` (a function) to a fresh construction
        and no weights are loaded there: ``def test(): net = ResNet18(); y =
        net(torch.randn(2, 3, 32, 32))`` checks shapes of an untrained network; there
        are no metrics for training mode to spoil."""
        if not isinstance(model, cst.Name) or not isinstance(region, cst.FunctionDef):
            return False
        bindings = [b for b in self.names.bindings_of(model.value, region) if b.kind != "global"]
        if not bindings or any(
            b.kind != "assign" or b.path or not isinstance(b.value, cst.Call) for b in bindings
        ):
            return False
        if any(
            self.classes.constructed(b.value) is None and not self._builds_model(b.value)
            for b in bindings
        ):
            return False
        for call in self.tree.descendants(region, cst.Call):
            func = call.func
            name = func.attr.value if isinstance(func, cst.Attribute) else None
            if name in ("load_state_dict", "load", "from_pretrained", "load_from_checkpoint"):
                return False
            if self.names.qualname(func) in ("torch.load", "torch.hub.load"):
                return False
            if keyword(call, "pretrained") is not None or keyword(call, "weights") is not None:
                return False
        return True

    def _builds_model(self, call: cst.Call, depth: int = 0) -> bool:
        """A torchvision/timm constructor, or a same-file factory (``def SENet18():
        return SENet(...)``) that only returns constructions."""
        qualname = self.names.qualname(call.func) or ""
        if qualname.startswith(("torchvision.models.", "timm.create_model")):
            return True
        function = self.facts.values.called_function(call)
        if function is None or depth > 3:
            return False
        returned = self.facts.values.returns(function)
        return bool(returned) and all(
            isinstance(value, cst.Call)
            and (
                self.classes.constructed(value) is not None or self._builds_model(value, depth + 1)
            )
            for value in returned
        )

    # -- (2) mode calls -----------------------------------------------------------------
    def mode_call(self, call: cst.CSTNode) -> ModeCall | None:
        """``m.eval()``, ``m.train(False)``, ``m.train()``; ``m.train(flag)`` is unknown."""
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
            return None
        name = call.func.attr.value
        target = call.func.value
        if name == "eval" and not call.args:
            return ModeCall(call, target, EVAL)
        if name == "train" and len(call.args) <= 1:
            if not call.args:
                return ModeCall(call, target, TRAIN)
            arg = call.args[0]
            if arg.keyword is not None and arg.keyword.value != "mode":
                return None
            value = literal_value(arg.value)
            if value is True:
                return ModeCall(call, target, TRAIN)
            if value is False:
                return ModeCall(call, target, EVAL)
            if isinstance(value, (int, float, str)):
                return None  # not a module's train(mode)
            return ModeCall(call, target, UNKNOWN)
        return None

    @cached_property
    def mode_calls(self) -> list[ModeCall]:
        return [m for call in self.facts.calls() if (m := self.mode_call(call)) is not None]

    def ref(self, model: cst.BaseExpression) -> ModelRef:
        """The model ``model`` names, for matching with the targets of mode calls."""
        return ModelRef(dotted(model), model, self.leaves(model))

    def leaves(self, expr: cst.CSTNode) -> frozenset:
        """The calls that built what ``expr`` holds (``Net()``, ``resnet18()``), or for a
        method's ``self`` the constructions of its class."""
        if expr in self._leaves:
            return self._leaves[expr]
        owner = self._self_class(expr)
        if owner is not None:
            found = frozenset(
                call
                for call in self.facts.calls()
                if (built := self.classes.constructed(call)) is not None
                and any(cls is owner for cls in built.lineage())
            )
        else:
            found = frozenset(
                leaf.node
                for leaf in self.values.origins(expr, through=self.values.module_passthrough)
                if not leaf.path and isinstance(leaf.node, cst.Call)
            )
        self._leaves[expr] = found
        return found

    def targets(self, target: cst.CSTNode, ref: ModelRef) -> bool:
        """Whether a mode call on ``target`` switches (some of) the model ``ref``.

        The same construction decides; else the same name in the same namespace, where
        ``model.eval()`` covers ``model.encoder`` and the reverse (partial, so never
        a finding). Two names for provably different constructions do not match.
        """
        leaves = self.leaves(target)
        if leaves and ref.leaves and leaves & ref.leaves:
            return True
        text = dotted(target)
        if text is None or ref.text is None or not _prefix_related(text, ref.text):
            return self._iterates_modules_of(target, ref)
        if not self._same_namespace(text, target, ref):
            return False
        if text == ref.text and leaves and ref.leaves:
            return False  # rebound: the name holds another model now
        return True

    def _same_namespace(self, text: str, target: cst.CSTNode, ref: ModelRef) -> bool:
        """Whether the root name of ``text`` means the same thing at ``target`` and at
        ``ref.anchor``: same scope, ``self`` of the same class, or the same global."""
        root = text.split(".")[0]
        if self.tree.scope_of(target) is self.tree.scope_of(ref.anchor):
            return True
        mine, theirs = self._self_class_at(root, target), self._self_class_at(root, ref.anchor)
        if mine is not None and theirs is not None:
            return any(cls is mine for cls in theirs.lineage()) or any(
                cls is theirs for cls in mine.lineage()
            )
        here = self.names.binding_at(root, target)
        there = self.names.binding_at(root, ref.anchor)
        return here is not None and here == there and here.scope is self.tree.module

    def _self_class_at(self, root: str, node: cst.CSTNode) -> ClassInfo | None:
        method = self.tree.function_of(node)
        owner = self.classes.enclosing(node)
        if method is not None and owner is not None and root == first_param(method):
            return owner
        return None

    def _iterates_modules_of(self, target: cst.CSTNode, ref: ModelRef) -> bool:
        """``for m in model.modules(): m.eval()`` switches (part of) ``model``."""
        if not isinstance(target, cst.Name) or ref.text is None:
            return False
        binding = self.names.binding_at(target.value, target)
        if binding is None or binding.kind != "assign" or not binding.path:
            return False
        if binding.path[0] != (ITER,) or not isinstance(binding.value, cst.Call):
            return False
        func = binding.value.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in (
            "modules", "children", "named_modules", "named_children",
        ):  # fmt: skip
            return False
        receiver = dotted(func.value)
        return receiver is not None and _prefix_related(receiver, ref.text)

    # -- the mode at a node ---------------------------------------------------------------
    def mode_at(self, node: cst.CSTNode, model: cst.BaseExpression) -> ModeEvent | None:
        """The latest mode event for ``model`` reached before ``node`` (see the module
        docstring), or None when nothing sets it: then ``initial_mode`` holds."""
        return self._mode_at(node, self.ref(model), 0, frozenset())

    def initial_mode(self, model: cst.BaseExpression) -> str:
        """The mode a model has when nothing switched it: eval when it was built with
        ``.eval()`` in its chain (``Net().eval()``) or only by ``from_pretrained``."""
        chain: list[cst.CSTNode] = []

        def through(node: cst.CSTNode) -> cst.CSTNode | None:
            inner = self.values.module_passthrough(node)
            if inner is not None:
                chain.append(node)
            return inner

        self.values.origins(model, through=through)
        for node in chain:
            found = self.mode_call(node)
            if found is not None and found.mode != TRAIN:
                return EVAL
        return EVAL if self.layers(model) == EVAL else TRAIN

    def _mode_at(self, node, ref: ModelRef, depth: int, visited: frozenset) -> ModeEvent | None:
        scope = self.tree.scope_of(node)
        events = self._events(scope, ref, node)
        at = self.tree.order[node]
        before = [
            e
            for e in events
            if self.tree.order[e.node] < at and not self.tree.contains(e.node, node)
        ]
        for loop in self.loops.enclosing(node):
            inside = [e for e in before if self.tree.contains(loop, e.node)]
            if inside:
                return inside[-1]
            after = [
                e
                for e in events
                if self.tree.contains(loop, e.node) and self.tree.order[e.node] > at
            ]
            if after and after[-1].mode == TRAIN:
                return ModeEvent(TRAIN, after[-1].node, after[-1].direct, carried=True)
        if before:
            return before[-1]
        constructor = self._constructor_event(ref)
        if constructor is not None:
            return constructor
        if not isinstance(scope, cst.FunctionDef) or depth >= MAX_CALLER_DEPTH or scope in visited:
            return None
        visited = visited | {scope}
        callers = self.callers(scope)
        if not callers:
            return self._uncalled_method(scope, ref) or self._anywhere_at_module_level(ref)
        results = []
        for site in callers:
            translated = self._translate(ref, scope, site)
            if translated is None:
                continue
            results.append(self._mode_at(site, translated, depth + 1, visited))
        for mode in (EVAL, UNKNOWN, TRAIN):
            for event in results:
                if event is not None and event.mode == mode:
                    return ModeEvent(mode, event.node, False, event.carried)
        return None

    def _events(self, scope, ref: ModelRef, node) -> list[ModeEvent]:
        """Mode events for ``ref`` in ``scope`` (not in nested functions), in order."""
        events = []
        for call in self._scope_calls(scope):
            found = self.mode_call(call)
            if found is not None:
                if self.targets(found.target, ref):
                    events.append(ModeEvent(found.mode, call, True))
                continue
            effect = self._call_effect(call, ref, node)
            if effect is not None:
                events.append(ModeEvent(effect, call, False))
        return events

    def _call_effect(self, call: cst.Call, ref: ModelRef, node) -> str | None:
        """The mode a call leaves ``ref`` in: a same-module function's last mode call
        on it, ``model.apply(fn)`` with ``fn`` calling ``eval()``, or an outside helper
        named for modes (``set_eval(model)``: unknown)."""
        function = self.callee(call)
        if function is not None:
            if self.tree.contains(function, node):
                return None
            last = None
            for inner in self.loops.reach(function):
                found = self.mode_call(inner)
                if found is not None and self.targets(found.target, ref):
                    last = found.mode
            return last
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "apply" and call.args:
            if self.targets(func.value, ref) and self._sets_eval(call.args[0].value):
                return UNKNOWN
            return None
        name = call_name(call)
        if name and _words(name) & {"eval", "mode", "freeze", "inference", "evaluation"}:
            for arg in call.args:
                text = dotted(arg.value)
                if text is not None and ref.text is not None and _prefix_related(text, ref.text):
                    return UNKNOWN
        return None

    def _sets_eval(self, expr: cst.CSTNode) -> bool:
        if isinstance(expr, cst.Lambda):
            root = expr
        elif isinstance(expr, cst.Name):
            binding = self.names.binding_at(expr.value, expr)
            if binding is None or binding.kind != "def":
                return False
            root = binding.node
        else:
            return False
        return any(
            (found := self.mode_call(call)) is not None and found.mode != TRAIN
            for call in self.tree.descendants(root, cst.Call)
        )

    def _constructor_event(self, ref: ModelRef) -> ModeEvent | None:
        """``self.model.eval()`` (or ``self.eval()``) in the ``__init__`` of the class that
        owns the model: ``self.model`` inside its methods, ``obj.model`` for an instance."""
        if ref.text is None:
            return None
        root = ref.text.split(".")[0]
        owner = self._self_class_at(root, ref.anchor)
        if owner is None:
            owner = self._instance_class_at(root, ref.anchor)
            if owner is None:
                return None
        init = owner.method("__init__")
        if init is None or self.tree.contains(init, ref.anchor):
            return None
        inside = self._self_ref(init, ref)
        if inside is None:
            return None
        last = None
        for call in self.loops.reach(init):
            found = self.mode_call(call)
            if found is not None and self.targets(found.target, inside):
                last = ModeEvent(found.mode, call, False)
        return last

    def _instance_class_at(self, root: str, node: cst.CSTNode) -> ClassInfo | None:
        """The in-module class whose instance the name ``root`` holds at ``node``."""
        binding = self.names.binding_at(root, node)
        if binding is None or binding.kind != "assign" or binding.path or binding.value is None:
            return None
        return self.values.instance_class(binding.value)

    def _uncalled_method(self, function: cst.FunctionDef, ref: ModelRef) -> ModeEvent | None:
        """A method nobody in the file calls, on ``self`` or ``self.model``: the caller
        sets the mode of a module (unknown); a plain wrapper class that never sets its
        model's mode in any method leaves it in the mode it was built in. A class built
        on a model base from another module (``class GPT(GPTPreTrainedModel)`` in a model
        zoo, a base named ``...Model``/``...Module``, or one that defines ``forward``) is
        a module too: its ``generate()`` cannot know the mode its caller set."""
        owner = self._method_owner(function)
        if owner is None or ref.text is None or ref.text.split(".")[0] != first_param(function):
            return None
        if owner.is_module or self._external_model(owner):
            return ModeEvent(UNKNOWN, function, False)
        for cls in owner.lineage():
            for method in cls.methods.values():
                inside = self._self_ref(method, ref)
                for call in self._scope_calls(method):
                    found = self.mode_call(call)
                    if found is not None and inside and self.targets(found.target, inside):
                        return ModeEvent(UNKNOWN, call, False)
        return None

    def _external_model(self, owner: ClassInfo) -> bool:
        """``owner`` derives from a class of another module that is a model: named
        ``...Model``/``...Module`` (``PreTrainedModel``, ``MegatronModule``), or any
        outside base when the class defines ``forward``."""
        outside = False
        for cls in owner.lineage():
            for base in cls.node.bases:
                if self.classes.class_named(base.value) is not None:
                    continue
                name = dotted(base.value)
                if name is None or name in ("object", "ABC", "abc.ABC"):
                    continue
                outside = True
                if name.rsplit(".", 1)[-1].endswith(("Model", "Module")):
                    return True
        return outside and owner.method("forward") is not None

    def _self_ref(self, method: cst.FunctionDef, ref: ModelRef) -> ModelRef | None:
        """``ref`` (rooted at ``self``) as seen inside another method of the class."""
        self_name = first_param(method)
        if self_name is None or not isinstance(method.body, cst.IndentedBlock):
            return None
        if not method.body.body or ref.text is None:
            return None
        _, _, rest = ref.text.partition(".")
        text = f"{self_name}.{rest}" if rest else self_name
        return ModelRef(text, method.body.body[0], ref.leaves)

    def _anywhere_at_module_level(self, ref: ModelRef) -> ModeEvent | None:
        """A function nobody in the file calls (a callback, an entry point): a mode
        call anywhere at module level on the same global model counts."""
        if ref.text is None:
            return None
        root = ref.text.split(".")[0]
        binding = self.names.binding_at(root, ref.anchor)
        if binding is None or binding.scope is not self.tree.module:
            return None
        found = None
        for call in self._scope_calls(self.tree.module):
            mode = self.mode_call(call)
            if mode is not None and self.targets(mode.target, ref):
                if found is None or mode.mode != TRAIN:
                    found = ModeEvent(mode.mode, call, False)
        return found

    def callee(self, call: cst.Call) -> cst.FunctionDef | None:
        """``facts.loops.callee``, remembered (it follows values, and is asked often)."""
        if call not in self._callees:
            self._callees[call] = self.loops.callee(call)
        return self._callees[call]

    def callers(self, function: cst.FunctionDef) -> list[cst.Call]:
        """Calls of ``function`` in the module: ``f()``, ``self.f()``, ``obj.f()``."""
        if function not in self._callers:
            name = function.name.value
            self._callers[function] = [
                call
                for call in self.facts.calls()
                if call_name(call) == name and self.callee(call) is function
            ]
        return self._callers[function]

    def _translate(
        self, ref: ModelRef, function: cst.FunctionDef, site: cst.Call
    ) -> ModelRef | None:
        """``ref`` (inside ``function``) as the caller at ``site`` names it."""
        if ref.text is None:
            return ModelRef(None, site, ref.leaves)
        root, _, rest = ref.text.partition(".")
        params = [*function.params.posonly_params, *function.params.params]
        names = [p.name.value for p in params]
        self_name = first_param(function) if self.tree.class_of(function) is not None else None
        new_root: str | None
        if self_name is not None and root == self_name:
            func = site.func
            new_root = dotted(func.value) if isinstance(func, cst.Attribute) else None
        elif root in names or any(p.name.value == root for p in function.params.kwonly_params):
            positional = names[1:] if self_name is not None and names[:1] == [self_name] else names
            index = positional.index(root) if root in positional else 99
            arg = argument(site, index, root)
            new_root = dotted(arg) if arg is not None else None
        elif self.names.bindings_of(root, function):
            new_root = None  # a local of the callee: the caller cannot name it
        else:
            new_root = root
        text = None if new_root is None else (f"{new_root}.{rest}" if rest else new_root)
        if text is None and not ref.leaves:
            return None
        return ModelRef(text, site, ref.leaves)

    def _scope_calls(self, scope) -> list[cst.Call]:
        return [
            call
            for call in self.tree.descendants(scope, cst.Call)
            if not self._in_nested_function(call, scope)
        ]

    def _in_nested_function(self, node: cst.CSTNode, root: cst.CSTNode) -> bool:
        for ancestor in self.tree.ancestors(node):
            if ancestor is root:
                return False
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                return True
        return False

    def deliberate_train(self, event: ModeEvent, region: cst.CSTNode) -> bool:
        """An explicit ``model.train()`` inside the region or right before it, with no
        training step in between: MC dropout or batch-norm recalibration."""
        if not event.direct or event.carried or event.mode != TRAIN:
            return False
        if self.tree.contains(region, event.node):
            return True
        if isinstance(region, cst.FunctionDef):
            return False
        current: cst.CSTNode = region
        while True:
            parent = self.tree.parent.get(current)
            body = getattr(parent, "body", None)
            if isinstance(parent, (cst.IndentedBlock, cst.Module)) and isinstance(
                body, (list, tuple)
            ):
                index = next(i for i, s in enumerate(body) if s is current)
                for previous in reversed(body[:index]):
                    if self.tree.contains(previous, event.node):
                        return isinstance(previous, (cst.SimpleStatementLine, cst.If))
                    if not isinstance(previous, cst.SimpleStatementLine):
                        return False
                    if any(
                        self.is_training_call(c) for c in self.tree.descendants(previous, cst.Call)
                    ):
                        return False
            if parent is None or isinstance(parent, (cst.FunctionDef, cst.Module, cst.ClassDef)):
                return False
            current = parent

    # -- (3) evaluation regions -------------------------------------------------------------
    def grad_disabled(self, with_node: cst.With) -> str | None:
        """``torch.no_grad()`` / ``torch.inference_mode()`` / ``torch.set_grad_enabled(False)``
        among a ``with`` statement's items, as the message shows it."""
        for item in with_node.items:
            how = self._grad_context(item.item)
            if how is not None:
                return how
        return None

    def _grad_context(self, expr: cst.CSTNode) -> str | None:
        """A ``with`` item that disables gradients (called: ``with torch.no_grad:``
        without the call disables nothing)."""
        return grad_disabling(self.names, expr) if isinstance(expr, cst.Call) else None

    def _decorated(self, function: cst.FunctionDef) -> str | None:
        for decorator in function.decorators:
            how = grad_disabling(self.names, decorator.decorator)
            if how is not None:
                return f"@{how}"
        return None

    @cached_property
    def evaluation_regions(self) -> list[Region]:
        """Blocks and functions that evaluate a model, in textual order."""
        regions = []
        for function in self.tree.nodes(cst.FunctionDef):
            if self.framework_managed(function) or self._is_pytest_test(function):
                continue
            decorated = self._decorated(function)
            if decorated is not None and not self._trains(function, direct=True):
                regions.append(Region(function, "decorated", decorated))
            elif self.named_for_evaluation(function.name.value) and not self._trains(
                function, direct=False
            ):
                regions.append(Region(function, "named", f"{function.name.value}()"))
        for with_node in self.tree.nodes(cst.With):
            how = self.grad_disabled(with_node)
            if how is None:
                continue
            function = self.tree.function_of(with_node)
            if function is not None and (
                self.framework_managed(function) or self._is_pytest_test(function)
            ):
                continue
            if self.in_training_iteration(with_node):
                continue
            regions.append(Region(with_node, "block", how))
        regions.sort(key=lambda r: self.tree.order[r.node])
        return regions

    @staticmethod
    def named_for_evaluation(name: str) -> bool:
        """``evaluate``, ``val_epoch``, ``run_test``, ``predict``; not ``train_and_eval``."""
        words = _words(name)
        return bool(words & EVALUATION_WORDS) and not words & TRAINING_WORDS

    def framework_managed(self, function: cst.FunctionDef) -> bool:
        """Methods whose mode a framework sets: Lightning modules' methods and hooks,
        and ``forward`` (a no_grad block there is part of the model, not evaluation)."""
        owner = self._method_owner(function)
        if owner is None:
            return False
        name = function.name.value
        if owner.is_lightning or name in ("forward", "__call__"):
            return True
        return name.startswith(FRAMEWORK_HOOK_PREFIXES)

    def _method_owner(self, function: cst.FunctionDef) -> ClassInfo | None:
        block = self.tree.parent.get(function)
        owner = self.tree.parent.get(block) if block is not None else None
        return self.classes.by_node.get(owner) if isinstance(owner, cst.ClassDef) else None

    def _is_pytest_test(self, function: cst.FunctionDef) -> bool:
        base = os.path.basename(self.facts.path)
        in_test_file = (
            base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py"
        )
        if not in_test_file:
            return False
        for node in (function, *self.tree.ancestors(function)):
            if isinstance(node, cst.FunctionDef) and node.name.value.startswith("test"):
                return True
        return False

    # -- training iterations --------------------------------------------------------------
    def is_training_call(self, call: cst.Call) -> bool:
        """``loss.backward()``, ``accelerator.backward(loss)``, ``optimizer.step()``,
        ``scaler.step(opt)``; not a learning-rate scheduler's ``step``."""
        name = call_name(call)
        if name in ("backward", "manual_backward"):
            return True
        if name != "step" or not isinstance(call.func, cst.Attribute):
            return False
        receiver = dotted(call.func.value) or ""
        words = _words(receiver.replace(".", "_"))
        if any("sched" in w for w in words):
            return False
        if any(w.startswith(("opt", "scaler")) or w.endswith("opt") for w in words):
            return True
        for leaf in self.values.origins(call.func.value):
            if isinstance(leaf.node, cst.Call):
                qualname = self.names.qualname(leaf.node.func) or ""
                if qualname.startswith("torch.optim.") and "lr_scheduler" not in qualname:
                    return True
        return False

    def _trains(self, root: cst.CSTNode, direct: bool) -> bool:
        """Whether ``root`` runs a training call; ``direct``: not inside a loop nested in
        ``root`` (here or in the same-module functions it calls)."""
        key = (root, direct)
        if key not in self._trains_directly:
            self._trains_directly[key] = self._collect_trains(root, direct, set(), 0)
        return self._trains_directly[key]

    def _collect_trains(self, root, direct: bool, visited: set, depth: int) -> bool:
        visited.add(root)
        for call in self.tree.descendants(root, cst.Call):
            if self._in_nested_function(call, root) and root is not self.tree.module:
                continue
            if direct and self._in_nested_loop(call, root):
                continue
            if self.is_training_call(call):
                return True
            if depth < 3:
                function = self.callee(call)
                if (
                    function is not None
                    and function not in visited
                    and not self.tree.contains(function, root)
                    and self._collect_trains(function, direct, visited, depth + 1)
                ):
                    return True
        return False

    def _in_nested_loop(self, node: cst.CSTNode, root: cst.CSTNode) -> bool:
        for ancestor in self.tree.ancestors(node):
            if ancestor is root:
                return False
            if isinstance(ancestor, (cst.For, cst.While)):
                header = ancestor.iter if isinstance(ancestor, cst.For) else ancestor.test
                if not self.tree.contains(header, node):
                    return True
        return False

    @cached_property
    def trains_anywhere(self) -> bool:
        """Whether the module runs a training step anywhere (backward or optimizer step)."""
        return any(self.is_training_call(call) for call in self.facts.calls())

    def training_unit(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The iteration ``node`` runs in: its innermost loop in the function, else the
        function; None at module level outside loops."""
        loops = self.loops.enclosing(node)
        if loops:
            return loops[0]
        return self.tree.function_of(node)

    def in_training_iteration(self, node: cst.CSTNode) -> bool:
        """Whether ``node`` runs inside a training iteration: its loop (or function)
        runs ``backward()``/``step()`` directly, not only through a nested loop: GAN
        fake generation, EMA updates, manual SGD. A validation block placed in the
        epoch loop after the batch loop is not."""
        unit = self.training_unit(node)
        return unit is not None and self._trains(unit, direct=True)

    def training_loops_around(self, node: cst.CSTNode) -> list[cst.For | cst.While]:
        """Enclosing loops (in the function) that train, directly or through nested loops."""
        return [loop for loop in self.loops.enclosing(node) if self._trains(loop, direct=False)]

    # -- held-out data --------------------------------------------------------------------
    def held_out(self, expr: cst.CSTNode | None, depth: int = 0) -> str | None:
        """The name that marks data as held out (``X_val``, ``test_x``, a batch of
        ``val_loader``), or None."""
        if expr is None or depth > 4:
            return None
        expr, key = self._strip_data_passthrough(expr)
        if key is not None:
            return key  # dataloaders["val"]: named by its key
        text = dotted(expr)
        if text is None:
            return None
        if _words(text.replace(".", "_")) & HELD_OUT_WORDS:
            return text
        if isinstance(expr, cst.Name):
            binding = self.names.binding_at(expr.value, expr)
            if binding is None or binding.kind != "assign" or binding.value is None:
                return None
            value = binding.value
            if binding.path and binding.path[0] == (ITER,):
                value = self._strip_iteration(value)
            return self.held_out(value, depth + 1)
        return None

    def _strip_data_passthrough(self, expr: cst.CSTNode) -> tuple[cst.CSTNode, str | None]:
        """The data under ``.to(device)``, ``x[i]``, ``torch.tensor(x)``; and the string
        key of a subscript that names held-out data (``batches["test"]``)."""
        for _ in range(8):
            if isinstance(expr, cst.Subscript):
                key = _string_key(expr)
                if key is not None and _words(key) & HELD_OUT_WORDS:
                    return expr, f'{dotted(expr.value) or "..."}["{key}"]'
                expr = expr.value
            elif (
                isinstance(expr, cst.Call)
                and isinstance(expr.func, cst.Attribute)
                and (expr.func.attr.value in DATA_PASSTHROUGH_METHODS)
            ):
                expr = expr.func.value
            elif (
                isinstance(expr, cst.Call)
                and expr.args
                and self.names.qualname(expr.func) in DATA_PASSTHROUGH_FUNCTIONS
            ):
                expr = expr.args[0].value
            else:
                break
        return expr, None

    def _strip_iteration(self, expr: cst.CSTNode) -> cst.CSTNode:
        for _ in range(4):
            if not isinstance(expr, cst.Call) or not expr.args:
                break
            name = self.names.qualname(expr.func) or dotted(expr.func)
            if name not in ITERATION_WRAPPERS:
                break
            expr = expr.args[0].value
        return expr


def _string_key(subscript: cst.Subscript) -> str | None:
    if len(subscript.slice) != 1 or not isinstance(subscript.slice[0].slice, cst.Index):
        return None
    value = literal_value(subscript.slice[0].slice.value)
    return value if isinstance(value, str) and value.isidentifier() else None


def _nn_name(qualname: str) -> str | None:
    if qualname.startswith(_NN_PREFIXES):
        return qualname.rsplit(".", 1)[1]
    return None


def _is_pretrained_builder(qualname: str) -> bool:
    """``torchvision.models.resnet18`` (a builder) or ``torchvision.models.ResNet`` (a
    model class); not weights enums (``ResNet18_Weights``) or their ``transforms()``."""
    if not qualname.startswith("torchvision.models."):
        return False
    if TORCHVISION_BUILDER.match(qualname):
        return qualname.rsplit(".", 1)[1] not in TORCHVISION_NOT_MODELS
    parts = qualname.split(".")[2:]
    last = parts[-1]
    return (
        all(p.islower() for p in parts[:-1])
        and last[:1].isupper()
        and not last.isupper()
        and "Weights" not in last
    )


def _is_transformers_model(qualname: str) -> bool:
    """``transformers.AutoModelForSequenceClassification.from_pretrained``; not tokenizers."""
    parts = qualname.split(".")
    if parts[0] != "transformers" or parts[-1] != "from_pretrained" or len(parts) < 3:
        return False
    cls = parts[-2]
    return "Model" in cls or "For" in cls


def _words(name: str) -> set[str]:
    """Lower-case words of an identifier: ``X_val`` -> {x, val}; ``evalModel`` -> {eval, model}."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return {w.lower() for w in re.split(r"[_\d]+", spaced) if w}


def _prefix_related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _root_name(node: cst.CSTNode | None) -> cst.Name | None:
    while isinstance(node, cst.Attribute):
        node = node.value
    return node if isinstance(node, cst.Name) else None


def modes_of(facts: ModuleFacts) -> Modes:
    """The module's ``Modes`` analysis, computed once per module."""
    cached = facts.__dict__.get("_modes")
    if cached is None:
        cached = facts.__dict__["_modes"] = Modes(facts)
    return cached
