"""The tracer's Python API: the shapes of what really ran, for tests and notebooks.

    import dllint.trace

    with dllint.trace.tracing() as t:
        loss = loss_fn(model(x), y)
    assert not t.broadcasts, t.broadcasts  # e.g. [train.py:12: sub((7, 1), (7,)) -> (7, 7)]

``checking()`` does the same with the runtime checks listening (DL601 non-finite
values, DL602 parameters without gradient), as ``dllint trace`` runs by default.

``t.events`` holds every recorded operation (elementwise arithmetic, comparisons,
``torch.where``, elementwise losses) with its operand and result shapes and the
file:line that ran it; ``t.broadcasts`` the suspicious ones. ``trace_script`` does what
``dllint trace SCRIPT`` does and returns the findings with their statuses.
Needs torch (``pip install "dllint[trace]"``).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('dllint.trace needs PyTorch: pip install "dllint[trace]"') from exc

from dllint.runtime.checks import RuntimeChecks, checking
from dllint.runtime.events import Event, Place
from dllint.runtime.recorder import Trace, tracing
from dllint.runtime.report import TraceReport, trace_script
from dllint.runtime.runner import FUNNY_BATCH, RunResult, run_script
from dllint.runtime.statuses import (
    CONFIRMED,
    NOT_REACHED,
    REFUTED,
    RUNTIME,
    TracedFinding,
    assign,
)

__all__ = [
    "CONFIRMED",
    "FUNNY_BATCH",
    "NOT_REACHED",
    "REFUTED",
    "RUNTIME",
    "Event",
    "Place",
    "RunResult",
    "RuntimeChecks",
    "Trace",
    "TraceReport",
    "TracedFinding",
    "assign",
    "checking",
    "run_script",
    "trace_script",
    "tracing",
]
