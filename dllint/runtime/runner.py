"""Run a training script under the recorder, and stop it after its first optimizer step.

The script runs as ``__main__`` exactly as ``python SCRIPT ARGS`` would run it (its
folder first on ``sys.path``, ``sys.argv`` set), on whatever device it picks. What the
tracer changes, only for the duration of the run and only in this process:

- a global optimizer step hook, which stops the run after ``steps`` optimizer steps by
  raising a private ``BaseException`` (``except Exception`` in the script does not
  catch it); a script that builds no optimizer stops after ``steps`` ``backward()``s;
- ``DataLoader.__init__``, to note the batch size (and, with ``funny_batch``, to make it
  a prime, 7, so that the batch axis cannot be mistaken for another of the same size);
- ``sys.stdout`` points at stderr, so the script's prints never mix with the report;
- ``torch.compile`` returns callables that run with the recorder set aside (see
  ``dllint.runtime.compiled``), and the runtime checks (``dllint.runtime.checks``) put
  in their own hooks.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import runpy
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.data import DataLoader

from dllint.runtime.checks import RuntimeChecks
from dllint.runtime.events import Event
from dllint.runtime.recorder import Recorder, Trace, is_user_file

FUNNY_BATCH = 7
FINISHED, STOPPED, FAILED = "finished", "stopped", "failed"


class _Stop(BaseException):
    """Raised by the tracer's hooks to end the script once enough has been seen."""


@dataclass
class RunResult:
    """How the run ended, and what it recorded."""

    script: str
    trace: Trace
    outcome: str  # FINISHED, STOPPED or FAILED
    steps: int = 0
    seconds: float = 0.0
    exception: BaseException | None = None
    exit_status: int | None = None  # the script called sys.exit with this status
    user_frames: list[traceback.FrameSummary] = field(default_factory=list)
    loader_batch_sizes: list[int] = field(default_factory=list)  # as the script asked
    funny_batch: bool = False
    checks: RuntimeChecks | None = None

    @property
    def compiled_calls(self) -> int:
        """Calls into code under ``torch.compile`` (which ran unrecorded)."""
        return self.checks.regions.calls if self.checks is not None else 0

    @property
    def failing_events(self) -> list[Event]:
        """The traced shapes of the line that raised (and the call that raised)."""
        if not self.user_frames:
            return []
        frame = self.user_frames[-1]
        path = os.path.abspath(frame.filename)
        events = [e for e in self.trace.events if os.path.abspath(e.path) == path]
        events = [e for e in events if e.line == frame.lineno]
        failure = self.trace.failure
        if failure is not None and failure.event is not None and _caused(self.exception, failure):
            if all(event.place != failure.event.place for event in events):
                events.append(failure.event)
        return events

    @property
    def batch_sizes(self) -> set[int]:
        """The batch sizes the run used: DataLoaders' and the losses' leading axes."""
        sizes = {FUNNY_BATCH if self.funny_batch else size for size in self.loader_batch_sizes}
        sizes.update(e.operands[0][0] for e in self.trace.losses if e.operands and e.operands[0])
        return sizes


def _caused(exception: BaseException | None, failure) -> bool:
    seen = set()
    while exception is not None and id(exception) not in seen:
        if exception is failure.exception:
            return True
        seen.add(id(exception))
        exception = exception.__cause__ or exception.__context__
    return False


class _Limits:
    """Counts steps and stops the run when the limit is reached."""

    def __init__(self, trace: Trace, steps: int, checks: RuntimeChecks | None = None) -> None:
        self.trace = trace
        self.limit = steps
        self.steps = 0
        self.optimizers = 0
        self.checks = checks

    def new_optimizer(self, optimizer) -> None:
        self.optimizers += 1
        if self.checks is not None:
            self.checks.note_optimizer(optimizer)

    def after_step(self, optimizer, args, kwargs) -> None:
        self.steps += 1
        overfit = self.checks.overfit if self.checks is not None else None
        if self.steps >= self.limit or (overfit is not None and overfit.reached):
            raise _Stop

    def after_backward(self) -> None:
        if self.optimizers == 0 and self.trace.backwards >= self.limit:
            raise _Stop


@contextlib.contextmanager
def _optimizer_hooks(limits: _Limits) -> Iterator[None]:
    handle = register_optimizer_step_post_hook(limits.after_step)
    original = torch.optim.Optimizer.__init__

    @functools.wraps(original)
    def counting_init(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        limits.new_optimizer(self)
        return result

    torch.optim.Optimizer.__init__ = counting_init
    try:
        yield
    finally:
        torch.optim.Optimizer.__init__ = original
        handle.remove()


@contextlib.contextmanager
def _loader_batches(sizes: list[int], funny: bool) -> Iterator[None]:
    original = DataLoader.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def noting_init(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # let DataLoader report its own usage error
            return original(self, *args, **kwargs)
        size = bound.arguments.get("batch_size", 1)
        if bound.arguments.get("batch_sampler") is None and isinstance(size, int):
            sizes.append(size)
            if funny:
                bound.arguments["batch_size"] = FUNNY_BATCH
        return original(*bound.args, **bound.kwargs)

    DataLoader.__init__ = noting_init
    try:
        yield
    finally:
        DataLoader.__init__ = original


@contextlib.contextmanager
def _as_main(script: str, argv: Sequence[str]) -> Iterator[None]:
    """``python SCRIPT ARGS``: argv, the script's folder first on the path, and the
    user's own modules it imports forgotten afterwards (another run must import them
    afresh, not find this run's)."""
    saved_argv, saved_path, saved_modules = sys.argv, sys.path[:], set(sys.modules)
    sys.argv = [script, *argv]
    sys.path.insert(0, os.path.dirname(script))
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            # torch's own warning for a mismatched loss points into the recorder, and the
            # report says the same thing with the user's line
            warnings.filterwarnings("ignore", message="Using a target size", category=UserWarning)
            yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if is_user_file(getattr(sys.modules[name], "__file__", None) or ""):
                del sys.modules[name]


def run_script(
    script: str,
    argv: Sequence[str] = (),
    steps: int = 1,
    funny_batch: bool = False,
    checks: RuntimeChecks | None = None,
) -> RunResult:
    """Run ``script`` as ``__main__`` under the recorder until ``steps`` optimizer steps.

    ``checks`` are the runtime checks (DL601-DL603) to run along; without them only the
    shapes are recorded (compiled code still runs with the recorder set aside)."""
    script = os.path.abspath(script)
    trace = Trace()
    checks = checks or RuntimeChecks(nonfinite=False, gradients=False)
    limits = _Limits(trace, max(1, steps), checks)
    result = RunResult(script, trace, FINISHED, funny_batch=funny_batch, checks=checks)
    watching = checks.nonfinite or checks.gradients or checks.overfit
    recorder = Recorder(trace, limits.after_backward, checks if watching else None)
    checks.regions.modes = [recorder]
    start = time.perf_counter()
    try:
        with (
            _as_main(script, argv),
            checks.installed(max(1, steps)),
            _optimizer_hooks(limits),
            _loader_batches(result.loader_batch_sizes, funny_batch),
            recorder,
        ):
            namespace = runpy.run_path(script, run_name="__main__")
            checks.finish()  # the script's model is alive in ``namespace``
            del namespace
    except _Stop:
        checks.finish()  # alive through the traceback's frames
        result.outcome = STOPPED
    except SystemExit as exit_:
        checks.finish()
        status = exit_.code
        if status not in (None, 0):
            result.outcome = FAILED
            result.exit_status = status if isinstance(status, int) else 1
            result.exception = exit_
    except Exception as exc:
        checks.finish()
        result.outcome = FAILED
        result.exception = exc
        frames = traceback.extract_tb(exc.__traceback__)
        result.user_frames = [f for f in frames if is_user_file(f.filename)]
    result.steps = limits.steps
    result.seconds = time.perf_counter() - start
    return result
