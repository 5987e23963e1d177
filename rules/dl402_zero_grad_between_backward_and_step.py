"""DL402 zero-grad-between-backward-and-step: gradients cleared before the step uses them.

In one iteration, ``loss.backward()`` fills ``.grad``, then something clears exactly the
gradients the optimizer holds, then ``optimizer.step()`` runs: the step applies nothing
(or only momentum and weight decay), and the model does not learn from the batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.iteration import Event, iteration_of
from dllint.analysis.training import OptimizerStep
from dllint.finding import Finding
from dllint.rule import Rule


class ZeroGradBetweenBackwardAndStep(Rule):
    code = "DL402"
    name = "zero-grad-between-backward-and-step"
    summary = "gradients cleared after backward() and before the optimizer step that needs them"
    severity = "error"
    needs = (("backward",), ("step",), ("zero_grad", "grad"))

    def check(self) -> Iterator[Finding]:
        training = self.facts.training
        iteration = iteration_of(self.facts)
        reported: set[cst.CSTNode] = set()
        for loop in training.training_loops:
            events = iteration.events(loop.loop)
            for event in events:
                if not isinstance(event.node, cst.Call):
                    continue
                step = training.step_of(event.node)
                if step is None or not self._plain(step):
                    continue
                for clear, backward in self._emptying(events, event, step):
                    if clear.node not in reported:
                        reported.add(clear.node)
                        yield self.finding(clear.node, self.message(clear, backward, step))

    def _plain(self, step: OptimizerStep) -> bool:
        """``opt.step()`` / ``scaler.step(opt)``; a closure recomputes the gradients."""
        return len(step.call.args) == (1 if step.scaler is not None else 0)

    def _emptying(self, events: list[Event], step_event: Event, step: OptimizerStep):
        """(clearing, backward) pairs: a backward, then a clearing of ``step``'s
        optimizer that runs whenever the step does, with no gradient written between
        the clearing and the step."""
        training = self.facts.training
        before = events[: step_event.index]
        for clear in before:
            if not clear.runs_whenever(step_event):
                continue
            if not training.clears_all_of(clear.node, step.optimizer):
                continue
            backwards = [
                e
                for e in before[: clear.index]
                if isinstance(e.node, cst.Call)
                and training.is_backward(e.node)
                and e.may_run_with(clear)
                and e.may_run_with(step_event)
            ]
            if not backwards:
                continue
            between = before[clear.index + 1 :]
            if any(training.writes_gradients(e.node) for e in between):
                continue
            yield clear, backwards[-1]

    def message(self, clear: Event, backward: Event, step: OptimizerStep) -> str:
        code = self.facts.module.code_for_node
        cleared = code(clear.node).strip()
        if len(cleared) > 50:
            cleared = cleared[:47] + "..."
        return (
            f"`{cleared}` clears the gradients that `{code(backward.node)}` just computed, "
            f"before `{step.text}` uses them, so the step updates nothing from this batch; "
            f"clear the gradients before the backward pass (or after the step) instead."
        )
