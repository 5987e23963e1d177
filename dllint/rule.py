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

    def finding(
        self,
        node: cst.CSTNode,
        message: str,
        fix: Fix | None = None,
        related: tuple[tuple[cst.CSTNode, str], ...] = (),
    ) -> Finding:
        """A finding at ``node``; ``fix`` when the rule can repair it with certainty.

        ``related``: (node, what it is) for the other places the finding is about;
        those in other files of the project are reported with it (``places``)."""
        start, end = self.facts.span(node)
        places = self.places(node, related) if self.facts.prelude is not None else ()
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

    def places(self, node: cst.CSTNode, related) -> list[dict]:
        """Where the ``related`` nodes are, by absolute path (the engine keeps those
        in another file than the finding's, written as the user writes paths); for a
        finding inside a definition copied from another file, also the calls of its
        function in the file being checked: what made it a bug."""
        facts = self.facts
        places = []
        for other, what in related:
            path, line, column = facts.location(other)
            places.append({"path": path, "line": line, "column": column, "message": what})
        if facts.origin(node) is not None:
            function = facts.tree.function_of(node)
            while function is not None:
                for call in facts.values.call_sites(function):
                    if facts.origin(call) is None:
                        path, line, column = facts.location(call)
                        name = function.name.value
                        message = f"`{name}()` is called here"
                        places.append(
                            {"path": path, "line": line, "column": column, "message": message}
                        )
                if places:
                    break
                function = facts.tree.function_of(function)
        return places

    @classmethod
    def applies_to(cls, text: str) -> bool:
        """Can the rule fire on this text? (``dllint.prefilter``; no parse needed.)"""
        return applies(cls.needs, text)
