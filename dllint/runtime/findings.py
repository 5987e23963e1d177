"""Runtime findings (DL601-DL603): the finding schema, status ``runtime``. No torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dllint.finding import Finding
from dllint.runtime.codes import RuntimeCode
from dllint.runtime.events import Place


@dataclass(frozen=True)
class RuntimeFinding:
    """A finding only the run could make, with what it adds to the JSON (the loss curve)."""

    finding: Finding
    details: dict = field(default_factory=dict, compare=False)
    lines: tuple[str, ...] = ()  # extra text lines under the finding (the sparkline)

    @classmethod
    def at(
        cls,
        code: RuntimeCode,
        place: Place,
        message: str,
        display: Callable[[str], str],
        details: dict | None = None,
        lines: tuple[str, ...] = (),
    ) -> RuntimeFinding:
        finding = Finding(
            path=display(place.path),
            line=place.line,
            column=place.column or 1,
            code=code.code,
            name=code.name,
            message=message,
            end_line=place.end_line or place.line,
            end_column=place.end_column or 1,
            severity=code.severity,
        )
        return cls(finding, dict(details or {}), tuple(lines))
