"""The base class every rule in ``dllint.rules`` derives from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

import libcst as cst

from dllint.finding import Finding
from dllint.fixes import Fix
from dllint.prefilter import Needs, applies

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts


class Rule:
    """One check. Subclasses set the class attributes and implement ``check``.

    ``needs`` lists tokens a file must contain for the rule to possibly fire: any one
    of ``("a", "b")``, or one of each group of ``(("a", "b"), ("c",))``. A file that
    can fire no selected rule is not parsed (``dllint.prefilter``).
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[str] = "error"
    needs: ClassVar[Needs] = ()
    default_enabled: ClassVar[bool] = True
    fixable: ClassVar[bool] = False  # True when the rule offers fixes for some findings

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts

    def check(self) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(self, node: cst.CSTNode, message: str, fix: Fix | None = None) -> Finding:
        """A finding at ``node``; ``fix`` when the rule can repair it with certainty."""
        start, end = self.facts.span(node)
        if fix is not None and fix.module is None:
            fix = Fix(fix.description, fix.edits, self.facts.module)
        return Finding(
            path=self.facts.path,
            line=start[0],
            column=start[1],
            code=self.code,
            name=self.name,
            message=message,
            end_line=end[0],
            end_column=end[1],
            severity=self.severity,
            fix=fix.description if fix else None,
            edit=fix,
        )

    @classmethod
    def applies_to(cls, text: str) -> bool:
        """Can the rule fire on this text? (``dllint.prefilter``; no parse needed.)"""
        return applies(cls.needs, text)
