"""The recorder: a ``TorchFunctionMode`` that notes the shapes of the operations that can
broadcast by mistake, and where in the user's code they ran.

Cost is what decides the design. Every torch call under the mode (even ``x.shape``)
goes through ``__torch_function__``, so the common path is one dictionary lookup keyed
by the function object and the call itself. Only elementwise operations called directly
from the user's code, and loss functions called from anywhere, are recorded, and the
user's line comes from walking frames with ``sys._getframe`` (``traceback`` costs ten
times more) and the code object's ``co_positions`` (which part of the line ran).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

import dllint
from dllint.runtime.events import COMPARISON, ELEMENTWISE, LOSS, WHERE, Event, Place

ELEMENTWISE_OPS = frozenset(
    {
        "add", "radd", "sub", "subtract", "rsub", "mul", "multiply", "rmul", "div",
        "divide", "true_divide", "truediv", "rtruediv", "rdiv", "floor_divide",
        "floordiv", "rfloordiv", "pow", "rpow", "float_power", "maximum", "minimum",
        "fmax", "fmin", "atan2", "arctan2", "remainder", "fmod", "hypot", "xlogy",
        "logaddexp", "logaddexp2", "copysign", "and", "or", "xor", "rand", "ror",
        "rxor", "bitwise_and", "bitwise_or", "bitwise_xor", "logical_and",
        "logical_or", "logical_xor",
    }
)  # fmt: skip
COMPARISON_OPS = frozenset(
    {
        "eq", "ne", "lt", "le", "gt", "ge", "greater", "less", "greater_equal",
        "less_equal", "not_equal", "isclose",
    }
)  # fmt: skip
LOSS_OPS = frozenset(
    {
        "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
        "binary_cross_entropy_with_logits", "soft_margin_loss", "poisson_nll_loss",
    }
)  # fmt: skip
BACKWARD = "backward"
# Files of torch that only forward a call (``Tensor.__rsub__``, handle_torch_function):
# an operation reached through them was still written by the user.
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_PLUMBING = frozenset(os.path.join(_TORCH_DIR, name) for name in ("overrides.py", "_tensor.py"))
_LIBRARY_DIRS = tuple(
    sorted(
        {
            os.path.abspath(path) + os.sep
            for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_prefix})
            for key in ("stdlib", "platstdlib", "purelib", "platlib")
            if (path := sysconfig.get_paths(vars=scheme_vars or None).get(key))
        }
        | {_TORCH_DIR + os.sep, os.path.dirname(os.path.abspath(dllint.__file__)) + os.sep}
    )
)


def classify(func: Callable) -> tuple[str, str] | None:
    """(kind, op) for the functions the tracer records; None for everything else."""
    name = getattr(func, "__name__", "")
    if name == BACKWARD:
        return BACKWARD, BACKWARD
    if name.endswith("_") and not name.startswith("__"):
        return None  # in place: the result keeps its shape, or torch raises
    op = name.strip("_")
    if op.startswith("i") and op[1:] in ELEMENTWISE_OPS:
        return None  # ``+=`` and friends, in place as well
    if op in ELEMENTWISE_OPS:
        return ELEMENTWISE, op
    if op in COMPARISON_OPS:
        return COMPARISON, op
    if op == "where":
        return WHERE, op
    if op in LOSS_OPS:
        return LOSS, op
    return None


def is_user_file(filename: str) -> bool:
    """Code the user wrote: not the standard library, installed packages, torch or dllint."""
    if not filename or filename.startswith("<"):
        return False
    return not os.path.abspath(filename).startswith(_LIBRARY_DIRS)


@dataclass
class Failure:
    """The innermost torch call that raised, with its operands' shapes and the user's line."""

    exception: BaseException
    event: Event | None


class Trace:
    """What one traced region recorded. ``events`` are deduplicated by op, place, shapes."""

    def __init__(self) -> None:
        self._counts: dict[tuple, int] = {}
        self.failure: Failure | None = None
        self.backwards = 0

    def add(self, kind, op, place, operands, result) -> None:
        key = (kind, op, place, operands, result)
        self._counts[key] = self._counts.get(key, 0) + 1

    @property
    def events(self) -> list[Event]:
        """Every recorded event, in the order of the code (path, line, column)."""
        found = [
            Event(kind, op, place, _plain(operands), _shape(result), count)
            for (kind, op, place, operands, result), count in self._counts.items()
        ]
        return sorted(found, key=lambda e: (e.path, e.line, e.place.column, e.op))

    @property
    def broadcasts(self) -> list[Event]:
        """The suspicious events: batch axes crossed with themselves, mismatched losses."""
        return [event for event in self.events if event.suspicious]

    @property
    def losses(self) -> list[Event]:
        return [event for event in self.events if event.kind == LOSS]

    @property
    def files(self) -> set[str]:
        """The user's files where something was recorded."""
        return {place.path for (_, _, place, _, _) in self._counts}

    def at(self, path: str, line: int) -> list[Event]:
        return [event for event in self.events if event.path == path and event.line == line]


def _plain(operands) -> tuple:
    return tuple(_shape(shape) for shape in operands)


def _shape(shape):
    return None if shape is None else tuple(int(size) for size in shape)


class Watcher:
    """What the runtime checks (DL601-DL603) hear from the recorder; every method is
    optional work on top of the shape recording, and must never raise."""

    def after_op(self, recorder: Recorder, func, args, kwargs, result) -> None:
        """Any torch call's result (``recorder.caller`` finds the user's line)."""

    def before_backward(self, recorder: Recorder, args, kwargs) -> None:
        """``backward()`` is about to run on ``args[0]``."""

    def after_backward(self) -> None:
        """``backward()`` returned."""

    def after_loss(self, op: str, args, kwargs) -> None:
        """An elementwise loss (``mse_loss``...) returned."""


class Recorder(TorchFunctionMode):
    """Records into ``trace``; calls ``on_backward`` after each ``backward()``, and tells
    ``watcher`` (the runtime checks) about every call when there is one."""

    def __init__(
        self,
        trace: Trace,
        on_backward: Callable[[], None] | None = None,
        watcher: Watcher | None = None,
    ) -> None:
        super().__init__()
        self.trace = trace
        self.on_backward = on_backward
        self.watcher = watcher
        self._kinds: dict[Callable, tuple[str, str] | None] = {}
        self._users: dict[str, bool] = {}
        self._places: dict[tuple, Place] = {}
        self._positions: dict = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            kind = self._kinds[func]
        except KeyError:
            kind = self._kinds[func] = classify(func)
        except TypeError:  # an unhashable callable: nothing we record
            kind = None
        if kind is None:
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                self._failed(exc, getattr(func, "__name__", "call"), args, kwargs)
                raise
            if self.watcher is not None:
                self.watcher.after_op(self, func, args, kwargs, result)
            return result
        if kind[0] == BACKWARD:
            if self.watcher is not None:
                self.watcher.before_backward(self, args, kwargs)
            result = func(*args, **kwargs)
            self.trace.backwards += 1
            if self.watcher is not None:
                self.watcher.after_backward()
            if self.on_backward is not None:
                self.on_backward()
            return result
        frame = self._caller(sys._getframe(1), direct=kind[0] != LOSS)
        if frame is None:
            result = func(*args, **kwargs)
        else:
            operands = _operands(kind[0], args, kwargs)
            place = self._place(frame)
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                self.trace.add(kind[0], kind[1], place, operands, None)
                self._note_failure(exc, Event(kind[0], kind[1], place, _plain(operands), None))
                raise
            shape = result.shape if isinstance(result, torch.Tensor) else None
            self.trace.add(kind[0], kind[1], place, operands, shape)
        if self.watcher is not None:
            self.watcher.after_op(self, func, args, kwargs, result)
            if kind[0] == LOSS:
                self.watcher.after_loss(kind[1], args, kwargs)
        return result

    def user_place(self) -> Place | None:
        """The user's line that made the current call (the innermost frame outside
        torch, dllint and installed packages), or None when there is none."""
        frame = self._caller(sys._getframe(1), direct=False)
        return None if frame is None else self._place(frame)

    # -- where in the user's code ------------------------------------------------------
    def _user(self, filename: str) -> bool:
        try:
            return self._users[filename]
        except KeyError:
            found = self._users[filename] = is_user_file(filename)
            return found

    def _caller(self, frame, direct: bool):
        """The user's frame that made this call. ``direct``: only through torch's
        forwarding plumbing, not from inside a library (a torch layer's own arithmetic)."""
        while frame is not None:
            filename = frame.f_code.co_filename
            if self._user(filename):
                return frame
            if direct and filename not in _PLUMBING:
                return None
            frame = frame.f_back
        return None

    def _place(self, frame) -> Place:
        code, lasti = frame.f_code, frame.f_lasti
        key = (code, lasti)
        place = self._places.get(key)
        if place is None:
            place = self._places[key] = _place_of(code, lasti, frame.f_lineno, self._positions)
        return place

    # -- failures ----------------------------------------------------------------------
    def _failed(self, exc: Exception, name: str, args, kwargs) -> None:
        if self.trace.failure is not None and self.trace.failure.exception is exc:
            return
        frame = self._caller(sys._getframe(2), direct=False)
        event = None
        if frame is not None:
            tensors = [a for a in list(args) + list(kwargs.values()) if _is_tensor(a)]
            operands = tuple(tuple(t.shape) for t in tensors[:4])
            event = Event("call", name.strip("_"), self._place(frame), _plain(operands), None)
        self._note_failure(exc, event)

    def _note_failure(self, exc: BaseException, event: Event | None) -> None:
        if self.trace.failure is None or self.trace.failure.exception is not exc:
            self.trace.failure = Failure(exc, event)


def _is_tensor(value) -> bool:
    return isinstance(value, torch.Tensor)


def _operands(kind: str, args, kwargs) -> tuple:
    """The operands' shapes (None for a Python number)."""
    if kind == WHERE:
        values = list(args[:3])
    elif kind == LOSS:
        values = [
            args[0] if args else kwargs.get("input"),
            args[1] if len(args) > 1 else kwargs.get("target"),
        ]
    else:
        values = list(args[:2])
        if len(values) < 2:
            values.append(kwargs.get("other", kwargs.get("exponent")))
    return tuple(value.shape if isinstance(value, torch.Tensor) else None for value in values)


def _place_of(code, lasti: int, lineno: int | None, cache: dict) -> Place:
    """The span of the instruction at ``lasti`` (Python 3.11+), else just the line."""
    path = code.co_filename
    positions = cache.get(code)
    if positions is None and hasattr(code, "co_positions"):
        positions = cache[code] = list(code.co_positions())
    if positions and 0 <= lasti // 2 < len(positions):
        line, end_line, column, end_column = positions[lasti // 2]
        if line is not None and column is not None and end_column is not None:
            return Place(path, line, column + 1, end_line or line, end_column + 1)
        if line is not None:
            return Place(path, line)
    return Place(path, lineno or code.co_firstlineno)


_USER_FILES: dict[str, bool] = {}
_POSITIONS: dict = {}


def user_place(skip: Callable[[object], bool] | None = None) -> Place | None:
    """The innermost user's line on the stack (outside torch, dllint and installed
    packages), passing over frames for which ``skip(frame)`` is true. For hooks that run
    without the recorder: a module's construction, an optimizer step."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        user = _USER_FILES.get(filename)
        if user is None:
            user = _USER_FILES[filename] = is_user_file(filename)
        if user and (skip is None or not skip(frame)):
            return _place_of(frame.f_code, frame.f_lasti, frame.f_lineno, _POSITIONS)
        frame = frame.f_back
    return None


@contextmanager
def tracing(on_backward: Callable[[], None] | None = None) -> Iterator[Trace]:
    """Record the shapes of what runs inside the block::

    with tracing() as t:
        loss = loss_fn(model(x), y)
    assert not t.broadcasts, t.broadcasts
    """
    trace = Trace()
    with Recorder(trace, on_backward):
        yield trace
