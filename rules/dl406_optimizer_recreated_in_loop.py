"""DL406 optimizer-recreated-in-loop: a fresh optimizer (or model) every iteration.

An optimizer built inside the loop that steps it starts from empty state each time:
momentum, Adam's moment estimates and step counts are thrown away, so Adam degenerates
to a sign-like update with bias-corrected first steps every batch. A model built inside
the training loop while the optimizer built before it keeps updating the old model's
parameters is never trained at all.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.training import ModelRef
from dllint.analysis.tree import argument, dotted, literal_value
from dllint.finding import Finding
from dllint.rule import Rule

# Optimizers that keep no state between steps unless given momentum.
STATELESS_WITHOUT_MOMENTUM = ("torch.optim.SGD", "torch.optim.sgd.SGD")
# Ancestors that make a construction conditional or deferred inside the loop.
CONDITIONAL = (
    cst.If,
    cst.Else,
    cst.IfExp,
    cst.Match,
    cst.ExceptHandler,
    cst.Lambda,
    cst.CompFor,
    cst.ListComp,
    cst.GeneratorExp,
    cst.DictComp,
    cst.SetComp,
)
# Calls on a model that give it fresh weights (a new trial starts from scratch).
RESETS = frozenset(
    {"load_state_dict", "reset_parameters", "apply", "init_weights", "initialize", "reset"}
)
MODEL_FACTORIES = ("timm.create_model",)


class OptimizerRecreatedInLoop(Rule):
    code = "DL406"
    name = "optimizer-recreated-in-loop"
    summary = "optimizer or model constructed anew in every iteration of the loop that trains it"
    severity = "error"
    needs = (("backward",), ("step",))

    def check(self) -> Iterator[Finding]:
        yield from self._optimizers()
        yield from self._models()

    # -- optimizers ---------------------------------------------------------------------
    def _optimizers(self) -> Iterator[Finding]:
        training = self.facts.training
        for construction in training.optimizer_constructions():
            if self.facts.classes.constructed(construction) is not None:
                continue  # an in-module optimizer class: its state is unknown
            if self._stateless(construction):
                continue
            loop = self._loop_of(construction)
            if loop is None:
                continue
            trained = training.training_loop(loop)
            if trained is None:
                continue
            steps = [s for s in trained.steps if construction in s.optimizer.constructions]
            if not steps:
                continue
            sources = training.construction_sources(construction)
            if not sources or not all(self._persists(source, loop) for source in sources):
                continue  # a fresh model each iteration (k-fold, search): fresh state is right
            if self._depends_on_iteration(construction, loop, sources):
                continue
            nested = all(
                any(
                    inner is not loop and self.facts.tree.contains(loop, inner)
                    for inner in self.facts.loops.enclosing(step.call)
                )
                or not self.facts.tree.contains(loop, step.call)
                for step in steps
            )
            if nested and self._reset_before(construction, loop, sources):
                continue
            yield self.finding(construction, self._optimizer_message(construction, loop, steps[0]))

    def _stateless(self, construction: cst.Call) -> bool:
        qualname = self.facts.qualname(construction.func)
        if qualname not in STATELESS_WITHOUT_MOMENTUM:
            return False
        momentum = argument(construction, 2, "momentum")
        return momentum is None or literal_value(momentum) == 0

    def _loop_of(self, node: cst.CSTNode) -> cst.For | cst.While | None:
        """The innermost loop around ``node`` in its function, when ``node`` runs on
        every iteration of it (not under an ``if`` or a handler inside it)."""
        loops = self.facts.loops.enclosing(node)
        if not loops:
            return None
        loop = loops[0]
        for ancestor in self.facts.tree.ancestors(node):
            if ancestor is loop:
                break
            if isinstance(ancestor, CONDITIONAL):
                return None
            if isinstance(ancestor, cst.BooleanOperation) and self.facts.tree.contains(
                ancestor.right, node
            ):
                return None
        if isinstance(loop, cst.For) and self.facts.tree.contains(loop.orelse or loop.body, node):
            if loop.orelse is not None and self.facts.tree.contains(loop.orelse, node):
                return None
        return loop

    def _persists(self, source: ModelRef, loop: cst.CSTNode) -> bool:
        """The model was made before the loop (no value of it comes from inside)."""
        values = self.facts.values
        leaves = values.origins(source.expr, through=values.module_passthrough)
        tree = self.facts.tree
        return bool(leaves) and not any(tree.contains(loop, leaf.node) for leaf in leaves)

    def _depends_on_iteration(self, construction, loop, sources) -> bool:
        """An argument computed in the loop (``lr=lr`` of a search): deliberate."""
        names = self.facts.names
        tree = self.facts.tree
        for name in tree.descendants(construction, cst.Name):
            if any(tree.contains(source.expr, name) for source in sources):
                continue
            binding = names.binding_at(name.value, name)
            if binding is not None and tree.contains(loop, binding.node):
                return True
        return False

    def _reset_before(self, construction, loop, sources) -> bool:
        """The model gets fresh weights in the loop before the optimizer is built."""
        tree = self.facts.tree
        texts = {source.name for source in sources if source.name}
        roots = {text.split(".")[0] for text in texts}
        for call in tree.descendants(loop, cst.Call):
            if not tree.before(call, construction):
                continue
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in RESETS:
                if (dotted(func.value) or "").split(".")[0] in roots:
                    return True
            for arg in call.args:
                if dotted(arg.value) in texts:
                    return True
        return False

    def _optimizer_message(self, construction, loop, step) -> str:
        code = self.facts.module.code_for_node
        place = self.facts.place(loop)
        kind = "for" if isinstance(loop, cst.For) else "while"
        call = code(construction.func)
        return (
            f"`{call}(...)` builds a new optimizer in every iteration of the `{kind}` loop on "
            f"{place} that steps it (`{step.text}`), so its state (momentum, moment "
            f"estimates, step count) restarts each time; build it once before the loop."
        )

    # -- models -------------------------------------------------------------------------
    def _models(self) -> Iterator[Finding]:
        training = self.facts.training
        for call in self.facts.calls():
            if not self._is_model_construction(call):
                continue
            target = self._assigned_to(call)
            if target is None:
                continue
            loop = self._loop_of(call)
            if loop is None:
                continue
            trained = training.training_loop(loop)
            if trained is None:
                continue
            tree = self.facts.tree
            for step in trained.steps:
                optimizer = step.optimizer
                if not optimizer.constructions or any(
                    tree.contains(loop, c) for c in optimizer.constructions
                ):
                    continue
                sources = training.parameter_sources(optimizer) or ()
                if any(source.name == target for source in sources):
                    yield self.finding(call, self._model_message(call, target, loop, step))
                    break

    def _is_model_construction(self, call: cst.Call) -> bool:
        info = self.facts.classes.constructed(call)
        if info is not None:
            return info.is_module
        qualname = self.facts.qualname(call.func) or ""
        return qualname.startswith("torchvision.models.") or qualname in MODEL_FACTORIES

    def _assigned_to(self, call: cst.Call) -> str | None:
        """``model`` in ``model = Net()`` / ``model = Net().to(device)``."""
        node: cst.CSTNode = call
        parent = self.facts.tree.parent.get(node)
        while (
            isinstance(parent, cst.Attribute)
            and isinstance(self.facts.tree.parent.get(parent), cst.Call)
            and parent.attr.value in ("to", "cuda", "cpu", "train", "float", "half")
        ):
            node = self.facts.tree.parent[parent]
            parent = self.facts.tree.parent.get(node)
        if isinstance(parent, cst.Assign) and parent.value is node and len(parent.targets) == 1:
            return dotted(parent.targets[0].target)
        return None

    def _model_message(self, call, target, loop, step) -> str:
        code = self.facts.module.code_for_node
        place = self.facts.place(loop)
        return (
            f"`{target} = {code(call.func)}(...)` builds a new model in every iteration of "
            f"the loop on {place}, but `{step.optimizer.name}` holds the parameters of "
            f"the `{target}` built before the loop, so `{step.text}` never updates the model "
            f"being run; build the model once before the loop."
        )
