"""DL401 missing-zero-grad: a training loop that never clears its optimizer's gradients.

PyTorch adds every ``backward()`` into ``.grad``; unless the loop clears them once per
iteration, each ``step()`` applies the sum of all gradients computed so far.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.training import OptimizerStep, TrainingLoop
from dllint.finding import Finding
from dllint.rule import Rule

MAX_BACKWARD_TEXT = 40


class MissingZeroGrad(Rule):
    code = "DL401"
    name = "missing-zero-grad"
    summary = "optimizer stepped in a loop that never clears its gradients"
    severity = "error"
    needs = (("backward",), ("step",))

    def check(self) -> Iterator[Finding]:
        training = self.facts.training
        uncleared: dict[cst.Call, tuple[OptimizerStep, TrainingLoop]] = {}
        for loop in training.training_loops:
            for step in loop.steps:
                if training.constructed_in(loop.loop, step.optimizer):
                    continue  # rebuilt every iteration: DL406's finding, not this one
                if not training.clears_in(loop.loop, step.optimizer):
                    uncleared.setdefault(step.call, (step, loop))
                    if self.facts.tree.contains(loop.loop, step.call):
                        uncleared[step.call] = (step, loop)  # the innermost loop holding it
        for step, loop in uncleared.values():
            yield self.finding(step.call, self.message(step, loop))

    def message(self, step: OptimizerStep, loop: TrainingLoop) -> str:
        name = step.optimizer.name
        place = self.facts.place(loop.loop)
        kind = "for" if isinstance(loop.loop, cst.For) else "while"
        backward = self.facts.module.code_for_node(self.backward_for(step, loop))
        before = f" (before `{backward}`)" if len(backward) <= MAX_BACKWARD_TEXT else ""
        return (
            f"`{step.text}` runs every iteration of the `{kind}` loop on {place} but "
            f"`{name}`'s gradients are never cleared in it, so each step applies the sum of "
            f"all earlier gradients; call `{name}.zero_grad()` once per iteration{before}."
        )

    def backward_for(self, step: OptimizerStep, loop: TrainingLoop) -> cst.Call:
        """The backward call that feeds this step: the last one before it in its function."""
        tree = self.facts.tree
        function = tree.function_of(step.call)
        before = [
            call
            for call in loop.backwards
            if tree.function_of(call) is function and tree.before(call, step.call)
        ]
        return before[-1] if before else loop.backwards[0]
