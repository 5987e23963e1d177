"""DL407 rnn-without-clipping: a recurrent model trained with unclipped gradients.

Backpropagation through time multiplies by the recurrent weights once per step, so
LSTM/GRU/RNN gradients occasionally explode; one such batch throws the weights far
off (loss spikes, NaN). Clipping the gradient norm before the step is the standard
guard. A hint, off by default: short sequences may train fine without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

import libcst as cst

from dllint.analysis.classes import ClassInfo
from dllint.analysis.training import ModelRef, OptimizerStep
from dllint.analysis.tree import call_name
from dllint.finding import Finding
from dllint.rule import Rule

RECURRENT = frozenset(
    f"torch.nn.{name}" for name in ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell")
) | frozenset(
    f"torch.nn.modules.rnn.{name}"
    for name in ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell")
)
MAX_NESTING = 4


class RnnWithoutClipping(Rule):
    code = "DL407"
    name = "rnn-without-clipping"
    summary = "recurrent model trained without gradient clipping"
    severity = "note"
    default_enabled = False
    needs = (("backward",), ("step",), ("LSTM", "GRU", "RNN"))

    def check(self) -> Iterator[Finding]:
        if self._clips_elsewhere:
            return
        training = self.facts.training
        reported: set[cst.Call] = set()
        clipped: set[cst.Call] = set()
        candidates: dict[cst.Call, tuple[OptimizerStep, str]] = {}
        for loop in training.training_loops:
            clips = self._clips_in(loop.loop)
            for step in loop.steps:
                if clips:
                    clipped.add(step.call)
                    continue
                recurrent = self._recurrent_model(step)
                if recurrent is not None:
                    candidates.setdefault(step.call, (step, recurrent))
        for call, (step, recurrent) in candidates.items():
            if call in clipped or call in reported:
                continue
            reported.add(call)
            yield self.finding(call, self.message(step, recurrent))

    def _recurrent_model(self, step: OptimizerStep) -> str | None:
        """The name of a model with recurrent layers whose parameters the step updates."""
        sources = self.facts.training.parameter_sources(step.optimizer)
        for source in sources or ():
            if self._is_recurrent(source):
                return source.name or "model"
        return None

    def _is_recurrent(self, source: ModelRef) -> bool:
        values = self.facts.values
        info = values.instance_class(source.expr)
        if info is not None:
            return self._class_is_recurrent(info, 0)
        for leaf in values.origins(source.expr, through=values.module_passthrough):
            if isinstance(leaf.node, cst.Call) and not leaf.path:
                if self._builds_recurrent(leaf.node, 0):
                    return True
        return False

    def _builds_recurrent(self, call: cst.Call, depth: int) -> bool:
        """An RNN layer, an in-module class that builds one, or a Sequential/ModuleList
        (or the layer list it is built from) holding either."""
        if self.facts.qualname(call.func) in RECURRENT:
            return True
        info = self.facts.classes.constructed(call)
        if info is not None:
            return info.is_module and self._class_is_recurrent(info, depth + 1)
        containers = self.facts.values.containers
        if not containers.is_container(call) or depth >= MAX_NESTING:
            return False
        held = containers.of_module(call)
        for member in held.members if held is not None else ():
            built = member if isinstance(member, cst.Call) else containers.built_by(member)
            if built is not None and self._builds_recurrent(built, depth + 1):
                return True
        return False

    def _class_is_recurrent(self, info: ClassInfo, depth: int) -> bool:
        """The class (or a same-file module class it builds) constructs an RNN layer."""
        for klass in info.lineage():
            for call in self.facts.tree.descendants(klass.node, cst.Call):
                if self.facts.qualname(call.func) in RECURRENT:
                    return True
                inner = self.facts.classes.constructed(call)
                if (
                    inner is not None
                    and inner is not info
                    and depth < MAX_NESTING
                    and inner.is_module
                    and self._class_is_recurrent(inner, depth + 1)
                ):
                    return True
        return False

    def _clips_in(self, loop: cst.CSTNode) -> bool:
        """A clipping call in the loop's reach (``clip_grad_norm_``,
        ``accelerator.clip_grad_norm_``, Fabric's ``clip_gradients``...)."""
        for call in self.facts.training.reach_nodes(loop, cst.Call):
            if "clip" in (call_name(call) or "").lower():
                return True
        return False

    @cached_property
    def _clips_elsewhere(self) -> bool:
        """Gradient hooks, or a ``clip`` keyword (Lightning's ``gradient_clip_val``, a
        ``clip=`` passed to a helper) anywhere in the file: clipping may happen there."""
        for call in self.facts.calls():
            if call_name(call) == "register_hook":
                return True
            for arg in call.args:
                if arg.keyword is not None and "clip" in arg.keyword.value.lower():
                    return True
        return False

    def message(self, step: OptimizerStep, model: str) -> str:
        return (
            f"`{step.text}` updates the recurrent model `{model}` with unclipped gradients; "
            f"backpropagation through time can make them explode (loss spikes, NaN), so call "
            f"`torch.nn.utils.clip_grad_norm_({model}.parameters(), max_norm=1.0)` after "
            f"`backward()` and before the step (after `scaler.unscale_(...)` with AMP)."
        )
