"""DL501 missing-eval-mode: evaluation runs a model with dropout/batch norm in training mode."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.modes import BATCH_NORM, DROPOUT, TRAIN, Region, modes_of
from dllint.analysis.tree import argument
from dllint.finding import Finding
from dllint.rule import Rule


class MissingEvalMode(Rule):
    code = "DL501"
    name = "missing-eval-mode"
    summary = "model with dropout/batch norm evaluated while still in training mode"
    severity = "error"
    needs = (
        ("torch", "timm", "transformers"),
        # a model with mode layers
        ("Dropout", "dropout", "BatchNorm", "batch_norm", "InstanceNorm", "torchvision",
         "timm", "transformers"),
    )  # fmt: skip

    def check(self) -> Iterator[Finding]:
        modes = modes_of(self.facts)
        reported: set[cst.Call] = set()
        for region in modes.evaluation_regions:
            function = region.node
            if not isinstance(function, cst.FunctionDef):
                function = self.facts.tree.function_of(region.node)
            for call, model in modes.model_calls(region.node):
                if call in reported:
                    break
                if function is not None and modes.built_for_a_smoke_test(model, function):
                    continue
                if self._in_training_mode(call, model, region.node):
                    reported.add(call)
                    yield self.finding(call, self._region_message(model, region))
                    break
        for call in self.facts.calls():
            if call in reported:
                continue
            data = modes.held_out(argument(call, 0))
            if data is None or not modes.training_loops_around(call):
                continue
            model = modes.model_of_call(call)
            if model is None or self._trains_on_held_out(call, data):
                continue
            function = self.facts.tree.function_of(call)
            if function is not None and modes.framework_managed(function):
                continue
            if self._in_training_mode(call, model, None):
                reported.add(call)
                yield self.finding(call, self._held_out_message(model, data))

    def _in_training_mode(self, call, model, region) -> bool:
        """Nothing puts ``model`` in eval mode before ``call`` (and no explicit
        ``train()`` right before the region asks for training-mode behaviour)."""
        modes = modes_of(self.facts)
        event = modes.mode_at(call, model)
        if event is None:
            return modes.initial_mode(model) == TRAIN
        if event.mode != TRAIN:
            return False
        return region is None or not modes.deliberate_train(event, region)

    def _trains_on_held_out(self, call: cst.Call, data: str) -> bool:
        """A loop over the held-out data that itself trains on it (test-time adaptation,
        fine-tuning on the validation split): training mode is what it wants."""
        modes = modes_of(self.facts)
        unit = modes.training_unit(call)
        if not isinstance(unit, cst.For) or not modes.in_training_iteration(call):
            return False
        bound = {n.value for n in self.facts.tree.descendants(unit.target, cst.Name)}
        return modes.held_out(unit.iter) is not None or data.split(".")[0] in bound

    def _name(self, model: cst.CSTNode) -> str:
        return self.facts.module.code_for_node(model)

    def _effect(self, model: cst.CSTNode) -> str:
        """What training mode does to evaluation, for the layers this model holds."""
        kinds = modes_of(self.facts).layer_kinds(model)
        effects = []
        if DROPOUT in kinds:
            effects.append("its dropout stays on")
        if BATCH_NORM in kinds:
            effects.append(
                "batch norm normalises with each batch's statistics and updates its running "
                "statistics with evaluation data"
            )
        return " and ".join(effects) or "its dropout stays on"

    def _resume(self, name: str) -> str:
        """The reminder to switch back, where the file also trains."""
        if modes_of(self.facts).trains_anywhere:
            return f" (and `{name}.train()` before training resumes)"
        return ""

    def _region_message(self, model: cst.CSTNode, region: Region) -> str:
        name = self._name(model)
        if region.kind == "block":
            where = f"under `{region.how}` for evaluation"
            fix = "before this block"
        else:
            function = region.node.name.value
            if region.kind == "decorated":
                where = f"in `{function}()` (decorated with `{region.how}`)"
            else:
                where = f"in the evaluation function `{function}()`"
            fix = f"at the start of `{function}()` or before calling it"
        return (
            f"`{name}` is called {where} while still in training mode, so "
            f"{self._effect(model)}; call `{name}.eval()` {fix}{self._resume(name)}."
        )

    def _held_out_message(self, model: cst.CSTNode, data: str) -> str:
        name = self._name(model)
        return (
            f"`{name}` is called on held-out data `{data}` inside the training loop while "
            f"still in training mode, so {self._effect(model)}; call `{name}.eval()` "
            f"before it{self._resume(name)}."
        )
