"""The runtime checks of ``dllint trace`` (DL601-DL603) behind one ``Watcher``.

``RuntimeChecks.installed`` puts in place, for the length of the run, what they need:
the module bookkeeping (``nn.Module.__init__``), an optimizer pre-step and post-step
hook, the ``torch.compile`` wrapper that runs compiled code with the recorder set
aside, and with ``--overfit-batch`` the repeating DataLoaders. The loss passed to each
``backward()`` is read once (one host sync per step); everything else stays on the
device until a step goes wrong.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterator

import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from dllint.runtime.compiled import CompiledRegions, untraced_compile
from dllint.runtime.findings import RuntimeFinding
from dllint.runtime.gradients import Gradients
from dllint.runtime.modules import Modules
from dllint.runtime.nonfinite import NonFinite, learning_rates
from dllint.runtime.overfit import Overfit
from dllint.runtime.recorder import Recorder, Trace, Watcher

GROWTH = 100.0  # a loss that grew this much before going non-finite points at the lr


class RuntimeChecks(Watcher):
    """DL601 and DL602 (on by default) and DL603 (with an ``Overfit``)."""

    def __init__(
        self,
        display: Callable[[str], str] = lambda path: path,
        nonfinite: bool = True,
        gradients: bool = True,
        overfit: Overfit | None = None,
    ) -> None:
        self.display = display
        self.modules = Modules()
        self.nonfinite = NonFinite(self.modules, display) if nonfinite else None
        self.gradients = Gradients(self.modules) if gradients else None
        self.overfit = overfit
        self.regions = CompiledRegions()
        self.losses: list[float] = []
        self._optimizers: list[weakref.ref] = []
        self.recorder: Recorder | None = None  # for ``checking()``
        self._steps = 0
        self._found: list[RuntimeFinding] | None = None
        self._last_gradients: list[RuntimeFinding] = []

    # -- the Watcher -------------------------------------------------------------------
    def after_op(self, recorder, func, args, kwargs, result) -> None:
        check = self.nonfinite
        if check is not None and check.active and check.found is None:
            check.after_op(recorder, func, args, kwargs, result)

    def before_backward(self, recorder, args, kwargs) -> None:
        try:
            self._before_backward(recorder, args, kwargs)
        except Exception:  # a check must never break the script's backward()
            pass

    def _before_backward(self, recorder, args, kwargs) -> None:
        tensor = args[0] if args else kwargs.get("tensors", kwargs.get("self"))
        value = _value(tensor)
        if value is not None:
            self.losses.append(value)
        wants_place = self.overfit is not None or (
            value is not None and not math.isfinite(value) and self.nonfinite is not None
        )
        place = recorder.user_place() if wants_place else None
        if self.overfit is not None:
            self.overfit.on_loss(value, place)
        if self.nonfinite is not None:
            if value is not None and not math.isfinite(value):
                self.nonfinite.loss_was_not_finite(value, place, self.growth())
            else:
                self.nonfinite.forget()

    def after_backward(self) -> None:
        if self.gradients is not None:
            try:
                self.gradients.after_backward()
            except Exception:
                pass

    def after_loss(self, op, args, kwargs) -> None:
        if self.overfit is not None:
            try:
                self.overfit.after_loss(op, args, kwargs)
            except Exception:
                pass

    # -- optimizers --------------------------------------------------------------------
    def note_optimizer(self, optimizer) -> None:
        self._optimizers.append(weakref.ref(optimizer))
        if self.gradients is not None:
            self.gradients.note_optimizer(optimizer)

    def optimizers(self) -> list:
        return [opt for opt in (ref() for ref in self._optimizers) if opt is not None]

    def before_step(self, optimizer, args, kwargs) -> None:
        if self.nonfinite is not None:
            self.nonfinite.paused = True  # the parameters are checked after the step
        if self.gradients is not None:
            with self.regions.set_aside():  # the hooks' own torch calls go unrecorded
                try:
                    self.gradients.before_step(optimizer, args, kwargs)
                except Exception:
                    pass

    def after_step(self, optimizer, args, kwargs) -> None:
        with self.regions.set_aside():
            try:
                self._after_step(optimizer)
            except Exception:  # a check must never break the script's step()
                pass
        if self.nonfinite is not None:
            self.nonfinite.paused = False

    def _after_step(self, optimizer) -> None:
        if self.nonfinite is not None:
            self.nonfinite.after_step(optimizer, self.modules.names, self.curve_text)
        self._steps += 1
        if self.gradients is not None and self._steps & (self._steps - 1) == 0:
            # a model local to the script's main() is gone once main() returns: keep a
            # verdict for a script that runs to its end (at steps 1, 2, 4, 8...: cheap)
            try:
                self._last_gradients = self.gradients.findings(self.display)
            except Exception:
                self._last_gradients = []

    # -- what the messages say about the steps seen ------------------------------------
    def growth(self) -> str:
        """The loss's growth before it went non-finite, with the learning rate, when it
        grew enough to suspect the learning rate; empty otherwise."""
        finite = [value for value in self.losses if math.isfinite(value)]
        if len(finite) < 2 or finite[0] <= 0 or finite[-1] < GROWTH * finite[0]:
            return ""
        rates = "; ".join(learning_rates(opt) for opt in self.optimizers()[:2])
        return (
            f"; before that the loss grew from {finite[0]:.4g} to {finite[-1]:.4g} over "
            f"{len(finite)} steps{' with ' + rates if rates else ''}: a learning rate too "
            "large is the usual cause"
        )

    def curve_text(self, optimizer=None) -> str:
        finite = [value for value in self.losses if math.isfinite(value)]
        if len(finite) < 2:
            return ""
        shown = finite if len(finite) <= 6 else finite[:3] + finite[-3:]
        values = " -> ".join(f"{value:.4g}" for value in shown)
        if len(finite) > 6:
            values = values.replace(f"{shown[2]:.4g} -> ", f"{shown[2]:.4g} -> ... -> ", 1)
        return f"; the loss over the {len(finite)} backward() calls seen: {values}"

    # -- the run -----------------------------------------------------------------------
    @contextlib.contextmanager
    def installed(self, steps: int) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.modules.watching())
            stack.enter_context(untraced_compile(self.regions))
            before = register_optimizer_step_pre_hook(self.before_step)
            stack.callback(before.remove)
            after = register_optimizer_step_post_hook(self.after_step)
            stack.callback(after.remove)
            if self.overfit is not None:
                stack.enter_context(self.overfit.repeating(steps))
            yield

    def finish(self) -> None:
        """Give the verdicts now, while the script's objects are alive (the runner calls
        this before the script's namespace goes: its model is needed for the names)."""
        if self._found is None:
            try:
                self._found = self._verdicts()
            except Exception:  # a verdict must never turn a run into a crash
                self._found = []

    def findings(self) -> list[RuntimeFinding]:
        self.finish()
        return list(self._found or [])

    def _verdicts(self) -> list[RuntimeFinding]:
        found = []
        if self.nonfinite is not None and self.nonfinite.found is not None:
            found.append(self.nonfinite.found)
        if self.gradients is not None:
            found.extend(self.gradients.findings(self.display) or self._last_gradients)
        return found


def _value(tensor) -> float | None:
    """The loss as a number (its sum when it is not a scalar): one host sync."""
    if not isinstance(tensor, torch.Tensor) or not tensor.numel():
        return None
    try:
        with torch.no_grad():
            return float(tensor.detach().float().sum())
    except Exception:
        return None


@contextlib.contextmanager
def checking(checks: RuntimeChecks | None = None) -> Iterator[tuple[Trace, RuntimeChecks]]:
    """What ``dllint trace`` runs by default around a block: the shape recorder with the
    runtime checks (DL601, DL602) listening::

        checks = RuntimeChecks()
        with checking(checks):
            model = Net()  # built inside: DL602 names its parameters
        for batch in batches:
            with checking(checks) as (trace, _):
                train_step(model, batch)
        print([f.finding.message for f in checks.findings()])
    """
    checks = checks or RuntimeChecks()
    if checks.recorder is None:  # one recorder for all the blocks, as for one run
        checks.recorder = Recorder(Trace(), None, checks)
    recorder = checks.recorder
    checks.regions.modes = [recorder]
    with checks.installed(1), recorder:
        yield recorder.trace, checks
