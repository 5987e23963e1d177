"""The finding schema: what every front end (text, JSON, flake8, SARIF) reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at one place. Lines and columns are 1-based, as an editor shows them."""

    path: str
    line: int
    column: int
    code: str
    name: str = field(compare=False)
    message: str = field(compare=False)
    end_line: int = field(default=0, compare=False)
    end_column: int = field(default=0, compare=False)
    severity: str = field(default="error", compare=False)
    cell: int | None = field(default=None, compare=False)
    fix: str | None = field(default=None, compare=False)  # what the fix does, if one exists
    fix_safety: str | None = field(default=None, compare=False)  # "safe" or "unsafe"
    edit: Any = field(default=None, compare=False, repr=False)  # the Fix itself (not serialised)
    # Other places the finding is about, in other files: ({path, line, column, message}, ...)
    related: tuple = field(default=(), compare=False)

    def fixable(self, unsafe: bool = False) -> bool:
        """It has a fix that ``--fix`` applies (``unsafe``: with ``--unsafe-fixes``)."""
        return self.fix is not None and (unsafe or self.fix_safety != "unsafe")

    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code)

    def to_json(self) -> dict:
        ordered = {
            key: getattr(self, key)
            for key in (
                "code",
                "name",
                "message",
                "path",
                "line",
                "column",
                "end_line",
                "end_column",
                "severity",
            )
        }
        if self.cell is not None:
            ordered["cell"] = self.cell
        if self.fix is not None:
            ordered["fix"] = self.fix
            ordered["fix_safety"] = self.fix_safety or "safe"
        if self.related:
            ordered["related"] = [dict(place) for place in self.related]
        return ordered
