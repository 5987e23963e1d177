"""DL404 scheduler-before-optimizer: the learning-rate schedule is advanced before the step.

Since PyTorch 1.1, ``scheduler.step()`` belongs after ``optimizer.step()``. Called
first in an iteration (or first in an epoch, before the batch loop that steps the
optimizer), it skips the schedule's first value: warm-up starts one step late, a
step schedule decays one epoch early.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.iteration import Event, iteration_of
from dllint.analysis.training import OptimizerStep, Scheduler
from dllint.finding import Finding
from dllint.rule import Rule


class SchedulerBeforeOptimizer(Rule):
    code = "DL404"
    name = "scheduler-before-optimizer"
    summary = "learning-rate scheduler stepped before the optimizer in the same iteration"
    severity = "warning"
    needs = (("step",), ("lr_scheduler", "schedule"))

    def check(self) -> Iterator[Finding]:
        training = self.facts.training
        iteration = iteration_of(self.facts)
        reported: set[cst.Call] = set()
        for loop in self.facts.loops.all():
            events = iteration.events(loop)
            steps = [
                (event, step)
                for event in events
                if isinstance(event.node, cst.Call)
                and (step := training.step_of(event.node)) is not None
            ]
            if not steps:
                continue
            for event in events:
                if not isinstance(event.node, cst.Call) or event.node in reported:
                    continue
                scheduler = training.scheduler_step_of(event.node)
                if scheduler is None:
                    continue
                optimizer = training.scheduler_optimizer(scheduler)
                if optimizer is None:
                    continue
                mine = [
                    (e, s)
                    for e, s in steps
                    if s.optimizer.same_as(optimizer) and e.may_run_with(event)
                ]
                if any(e.index < event.index for e, _ in mine):
                    continue  # the optimizer already stepped in this iteration
                later = [(e, s) for e, s in mine if e.index > event.index]
                if later:
                    reported.add(event.node)
                    yield self.finding(
                        event.node, self.message(event, scheduler, later[0][1], loop)
                    )

    def message(
        self, event: Event, scheduler: Scheduler, step: OptimizerStep, loop: cst.CSTNode
    ) -> str:
        place = self.facts.place(loop)
        kind = "for" if isinstance(loop, cst.For) else "while"
        return (
            f"`{scheduler.name}.step()` runs before `{step.text}` in each iteration of the "
            f"`{kind}` loop on {place}, so the first value of the learning-rate schedule "
            f"is skipped (PyTorch warns about this order); call `{scheduler.name}.step()` "
            f"after `{step.text}`."
        )
