"""The base class every rule in ``dllint.rules`` derives from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

import libcst as cst

from dllint.analysis.paths import display_path
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

    def finding(
        self,
        node: cst.CSTNode,
        message: str,
        fix: Fix | None = None,
        related: tuple[tuple[cst.CSTNode, str], ...] = (),
    ) -> Finding:
        """A finding at ``node``; ``fix`` when the rule can repair it with certainty.

        ``related``: (node, what it is) for the other places the finding is about;
        those in other files of the project are reported with it."""
        start, end = self.facts.span(node)
        places = []
        for other, what in related:
            origin = self.facts.origin(other)
            if origin is not None:
                path = display_path(origin[0], self.facts.path)
                places.append(
                    {"path": path, "line": origin[1], "column": origin[2], "message": what}
                )
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
            fix_safety=fix.safety if fix else None,
            edit=fix,
            related=tuple(places),
        )

    @classmethod
    def applies_to(cls, text: str) -> bool:
        """Can the rule fire on this text? (``dllint.prefilter``; no parse needed.)"""
        return applies(cls.needs, text)
