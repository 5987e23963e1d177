"""The runtime codes: what only a run shows, reported by ``dllint trace`` alone.

They share the finding schema (with ``status: "runtime"``), have rule pages and are
listed by ``dllint rules``, but they are not rules: ``dllint check`` reads code and
never reports them. No torch here (``dllint rules`` imports this).
"""

from __future__ import annotations

from typing import NamedTuple


class RuntimeCode(NamedTuple):
    code: str
    name: str
    severity: str
    summary: str


NON_FINITE = RuntimeCode(
    "DL601",
    "non-finite-value",
    "error",
    "the first operation whose output held NaN or inf, or the optimizer step that made "
    "the parameters non-finite (dllint trace)",
)
NO_GRADIENT = RuntimeCode(
    "DL602",
    "parameter-without-gradient",
    "error",
    "a trainable parameter that got no gradient, or got one but belongs to no optimizer "
    "(dllint trace)",
)
NOT_OVERFIT = RuntimeCode(
    "DL603",
    "batch-not-overfit",
    "error",
    "the loss on one repeated batch did not fall below a tenth of its first value "
    "(dllint trace --overfit-batch)",
)
RUNTIME_CODES: tuple[RuntimeCode, ...] = (NON_FINITE, NO_GRADIENT, NOT_OVERFIT)


def runtime_code(code: str) -> RuntimeCode | None:
    """The runtime code named by its code or its name, if it is one."""
    for entry in RUNTIME_CODES:
        if code.upper() == entry.code or code.lower() == entry.name:
            return entry
    return None
