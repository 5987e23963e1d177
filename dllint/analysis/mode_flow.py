"""Mode flow across training iterations: where an ``eval()`` is left standing, and
which submodules run frozen while their owner trains.

Built on ``dllint.analysis.modes`` (mode layers, mode calls, the mode at a node):

- *Known without mode layers* (``known_without_mode_layers``): every origin of a model
  is an in-module class or ``nn.Sequential`` built only from ``torch.nn`` layers that
  behave the same in both modes (or such classes); anything unresolved is unknown.
- *Certain mode layers* (``certain_mode_layers``): every origin of a submodule holds
  dropout or batch norm (a torchvision/timm constructor without ``norm_layer=``, an
  in-module class or Sequential with such layers); one unknown origin (a helper
  that may swap batch norm for ``FrozenBatchNorm2d``) makes it uncertain.
- *Eval left standing* (``Eval sites``): an ``eval()`` reached in an iteration of a
  loop that trains the same model, with no ``train()`` (or a mode call that may be
  one) anywhere else in that loop or in the function that holds the ``eval()``.
- *Restoring calls* (``may_restore``): a ``train()``/``train(flag)`` on the model, or
  a same-module function reaching one whose target is not provably another model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import ClassInfo, first_param
from dllint.analysis.modes import (
    EVAL,
    TRAIN,
    UNKNOWN,
    ModeCall,
    ModelRef,
    Modes,
    _prefix_related,
    _words,
    modes_of,
)
from dllint.analysis.tree import call_name, dotted, keyword, literal_value
from dllint.analysis.values import SEQUENTIAL, sequential_layers

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

CONTAINERS = {"torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict"}
# Helpers whose name says they set modes or freeze (``set_bn_eval(m)``, ``freeze(m)``).
MODE_HELPER_WORDS = {"eval", "mode", "modes", "freeze", "frozen", "unfreeze", "evaluation"}
MAX_SITE_DEPTH = 2


@dataclass(frozen=True)
class EvalSite:
    """An ``eval()`` (``call``) as seen from a loop: ``site`` is the node in ``loop``'s
    body that reaches it (the call itself, or the call of the function holding it),
    ``ref`` the model as the loop's code names it."""

    call: cst.Call
    target: cst.BaseExpression
    loop: cst.For | cst.While
    site: cst.CSTNode
    ref: ModelRef
    chain: tuple[cst.FunctionDef, ...]  # functions between the loop and the eval()


class ModeFlow:
    """Mode-flow facts of one module; ask through ``mode_flow_of(facts)``."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.modes: Modes = modes_of(facts)
        self.tree = facts.tree
        self._none: dict[int, bool] = {}

    # -- mode layers, certain or excluded ----------------------------------------------
    def known_without_mode_layers(self, model: cst.CSTNode) -> bool:
        """Every origin of ``model`` is known to hold no dropout/batch norm."""
        values = self.facts.values
        leaves = values.origins(model, through=values.module_passthrough)
        return bool(leaves) and all(
            not leaf.path and self._expr_without(leaf.node, frozenset()) for leaf in leaves
        )

    def _expr_without(self, node: cst.CSTNode, visiting: frozenset) -> bool:
        if literal_value(node) is not None or (isinstance(node, cst.Name) and node.value == "None"):
            return True
        if isinstance(node, (cst.List, cst.Tuple)):
            return all(self._expr_without(e.value, visiting) for e in node.elements)
        if not isinstance(node, cst.Call):
            return False
        info = self.facts.classes.constructed(node)
        if info is not None:
            return self._class_without(info, visiting)
        qualname = self.facts.qualname(node.func) or ""
        if qualname in CONTAINERS or qualname == SEQUENTIAL:
            return all(self._expr_without(e, visiting) for e in sequential_layers(node))
        if qualname.startswith(("torch.nn.", "torch.")) and not qualname.startswith(
            "torch.nn.functional."
        ):
            return self.modes._call_held(node, frozenset()).mode is None
        return False

    def _class_without(self, info: ClassInfo, visiting: frozenset) -> bool:
        key = id(info)
        if key in self._none:
            return self._none[key]
        if key in visiting:
            return True
        visiting = visiting | {key}
        result = info.is_module and not info.is_lightning
        result = result and self.modes.class_layers(info) is None
        if result:
            for cls in info.lineage():
                if any(
                    base and base not in ("torch.nn.Module",) for base in cls.base_names
                ) and not all(
                    self.facts.classes.by_node.get(b.node) is not None for b in cls.bases
                ):
                    result = False  # a base from another library: unknown layers
                for values in cls.attributes.values():
                    for value in values:
                        if not self._attribute_without(value, visiting):
                            result = False
        self._none[key] = result
        return result

    def _attribute_without(self, value: cst.CSTNode, visiting: frozenset) -> bool:
        if isinstance(value, cst.Call):
            qualname = self.facts.qualname(value.func) or ""
            if qualname.startswith("torch.") and not qualname.startswith("torch.nn."):
                return True  # tensors, parameters, buffers
        if isinstance(value, (cst.Name, cst.Attribute)) and self.facts.qualname(value) is None:
            # a plain value from a parameter or a computation (sizes, flags): not a
            # module unless it is one of the constructor's arguments holding a model
            return not self._may_be_module(value)
        if isinstance(value, (cst.BinaryOperation, cst.Comparison, cst.UnaryOperation)):
            return True
        return self._expr_without(value, visiting)

    def _may_be_module(self, value: cst.CSTNode) -> bool:
        leaves = self.facts.values.origins(value, through=self.facts.values.module_passthrough)
        for leaf in leaves:
            node = leaf.node
            if literal_value(node) is not None:
                continue
            if isinstance(node, (cst.BinaryOperation, cst.Comparison)):
                continue
            return True
        return False

    def certain_mode_layers(self, model: cst.CSTNode) -> frozenset[str]:
        """The mode layers every origin of ``model`` holds for sure (empty: not certain).

        A torchvision builder given ``norm_layer=`` (``FrozenBatchNorm2d``) is not."""
        values = self.facts.values
        leaves = values.origins(model, through=values.module_passthrough)
        kinds: set[str] = set()
        if not leaves:
            return frozenset()
        for leaf in leaves:
            if leaf.path or not isinstance(leaf.node, cst.Call):
                return frozenset()
            if keyword(leaf.node, "norm_layer") is not None:
                return frozenset()
            held = self.modes._leaf_held(leaf.node)
            if held.mode is None:
                return frozenset()
            kinds |= held.kinds
        return frozenset(kinds)

    # -- train() restoring an eval() -----------------------------------------------------
    def may_restore(self, call: cst.Call, ref: ModelRef, depth: int = 0) -> bool:
        """Whether ``call`` may put ``ref`` back in training mode: ``model.train()``,
        ``model.train(flag)``, a mode helper given the model, or a same-module function
        that reaches such a call on a model not provably another one."""
        found = self.modes.mode_call(call)
        if found is not None:
            return found.mode in (TRAIN, UNKNOWN) and self._may_target(found, call, ref)
        name = call_name(call)
        if name and _words(name) & MODE_HELPER_WORDS and self._mentions(call, ref):
            return True
        function = self.modes.callee(call)
        if function is None or depth > 3:
            return False
        for inner in self.facts.loops.reach(function):
            inner_mode = self.modes.mode_call(inner)
            if inner_mode is None or inner_mode.mode == EVAL:
                if inner_mode is None:
                    inner_name = call_name(inner)
                    if (
                        inner_name
                        and _words(inner_name) & MODE_HELPER_WORDS
                        and self.modes.callee(inner) is None
                        and self.facts.qualname(inner.func) is None
                        and any(dotted(arg.value) is not None for arg in inner.args)
                    ):
                        return True  # a helper that may set modes: unknown
                continue
            if self._may_target(inner_mode, inner, ref):
                return True
        return False

    def _may_target(self, found: ModeCall, call: cst.Call, ref: ModelRef) -> bool:
        """The mode call may switch ``ref``: it does (``modes.targets``), or its target
        cannot be told apart from it (a parameter, ``self`` of an unknown class)."""
        modes = self.modes
        if modes.targets(found.target, ref):
            return True
        leaves = modes.leaves(found.target)
        if leaves and ref.leaves and not (leaves & ref.leaves):
            return False  # provably another construction
        text = dotted(found.target)
        if text is None or ref.text is None:
            return True
        if self.tree.scope_of(call) is self.tree.scope_of(ref.anchor):
            return _prefix_related(text, ref.text)
        root = text.split(".")[0]
        binding = self.facts.names.binding_at(root, found.target)
        there = self.facts.names.binding_at(root, ref.anchor)
        if binding is not None and binding == there:
            return _prefix_related(text, ref.text)  # the same global
        if (
            binding is not None
            and binding.scope is self.tree.module
            and ref.text.split(".")[0] != root
            and there is not None
        ):
            return False  # another global model
        return True  # a parameter or attribute of another scope: unknown

    def _mentions(self, call: cst.Call, ref: ModelRef) -> bool:
        if ref.text is None:
            return True
        for arg in call.args:
            text = dotted(arg.value)
            if text is None or _prefix_related(text, ref.text):
                return True
        if isinstance(call.func, cst.Attribute):
            text = dotted(call.func.value)
            if text is not None and _prefix_related(text, ref.text):
                return True
        return False

    # -- eval() sites in training loops ------------------------------------------------------
    def eval_sites(self, eval_call: ModeCall) -> list[EvalSite]:
        """The loops an ``eval()`` runs in, each with the node of the loop body that
        reaches it: the call itself, or (through same-module callers, two levels) the
        call of the function that holds it."""
        found: list[EvalSite] = []
        ref = self.modes.ref(eval_call.target)
        self._collect_sites(eval_call, eval_call.call, ref, (), found, frozenset())
        return found

    def _collect_sites(self, eval_call, node, ref, chain, found, visited) -> None:
        for loop in self.facts.loops.enclosing(node):
            found.append(EvalSite(eval_call.call, eval_call.target, loop, node, ref, chain))
        function = self.tree.function_of(node)
        if (
            function is None
            or function in visited
            or len(chain) >= MAX_SITE_DEPTH
            or self.modes.framework_managed(function)
        ):
            return
        if self.facts.loops.enclosing(node):
            return  # the loops inside the function decide
        for site in self.modes.callers(function):
            translated = self.modes._translate(ref, function, site)
            if translated is None or translated.text is None:
                continue
            self._collect_sites(
                eval_call, site, translated, (*chain, function), found, visited | {function}
            )

    def model_expr(self, site: EvalSite) -> cst.BaseExpression | None:
        """An expression naming the model in the loop's scope (for value questions)."""
        if not site.chain:
            return site.target
        text = site.ref.text
        if text is None:
            return None
        for arg in site.site.args if isinstance(site.site, cst.Call) else ():
            if dotted(arg.value) == text:
                return arg.value
        func = site.site.func if isinstance(site.site, cst.Call) else None
        if isinstance(func, cst.Attribute) and dotted(func.value) == text:
            return func.value
        for node in self.tree.descendants(site.loop, cst.Name, cst.Attribute):
            if dotted(node) == text and not isinstance(self.tree.parent.get(node), cst.Attribute):
                return node
        return site.target  # not named in the loop: the same model as the eval() sees it

    def trains_model(self, loop: cst.CSTNode, ref: ModelRef, model: cst.BaseExpression) -> bool:
        """Whether ``loop`` runs training steps on ``model``: its optimizer holds the
        model's parameters, or the model runs (or is handed to a function that trains)
        in a training iteration of the loop outside no-grad blocks."""
        training = self.facts.training
        found = training.training_loop(loop)
        if found is None:
            return False
        mine = training.model_ref(model)
        for step in found.steps:
            sources = training.parameter_sources(step.optimizer)
            for source in sources or ():
                if source.related(mine):
                    return True
        for call in self.tree.descendants(loop, cst.Call):
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value == "forward":
                func = func.value
            text = dotted(func)
            called = text is not None and ref.text is not None and text == ref.text
            passed = False
            if not called and ref.text is not None:
                function = self.modes.callee(call)
                if function is not None and self.modes._trains(function, direct=False):
                    passed = any(
                        (t := dotted(arg.value)) is not None and _prefix_related(t, ref.text)
                        for arg in call.args
                    ) or (
                        isinstance(call.func, cst.Attribute)
                        and (t := dotted(call.func.value)) is not None
                        and _prefix_related(t, ref.text)
                    )
            if passed:
                return True
            if called and self.modes.in_training_iteration(call) and not self.under_no_grad(call):
                return True
        return False

    def under_no_grad(self, node: cst.CSTNode) -> bool:
        for ancestor in self.tree.ancestors(node):
            if isinstance(ancestor, cst.FunctionDef):
                return self.modes._decorated(ancestor) is not None
            if isinstance(ancestor, cst.Lambda):
                continue  # no decorators: the block around it decides
            if isinstance(ancestor, cst.With) and self.modes.grad_disabled(ancestor):
                return True
        return False

    def ends_iterations(self, node: cst.CSTNode, loop: cst.CSTNode) -> bool:
        """A ``break``/``return`` follows ``node`` in one of its blocks inside ``loop``:
        no later iteration trains after it."""
        current = node
        for ancestor in self.tree.ancestors(node):
            if ancestor is loop:
                return False
            if isinstance(ancestor, cst.IndentedBlock):
                body = list(ancestor.body)
                if current in body:
                    for statement in body[body.index(current) + 1 :]:
                        if isinstance(statement, cst.SimpleStatementLine) and any(
                            isinstance(s, (cst.Break, cst.Return)) for s in statement.body
                        ):
                            return True
            current = ancestor
        return False


def self_attribute(expr: cst.CSTNode, method: cst.FunctionDef) -> str | None:
    """``backbone`` for ``self.backbone`` inside a method whose first parameter is self."""
    if (
        isinstance(expr, cst.Attribute)
        and isinstance(expr.value, cst.Name)
        and expr.value.value == first_param(method)
    ):
        return expr.attr.value
    return None


def mode_flow_of(facts: ModuleFacts) -> ModeFlow:
    """The module's ``ModeFlow`` analysis, computed once per module."""
    cached = facts.__dict__.get("_mode_flow")
    if cached is None:
        cached = facts.__dict__["_mode_flow"] = ModeFlow(facts)
    return cached
