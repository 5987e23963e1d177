"""Shared program facts that rules ask for, computed lazily, once per module."""

from __future__ import annotations

import os
import re
from functools import cached_property

import libcst as cst

from dllint.analysis.classes import Classes
from dllint.analysis.data import Data
from dllint.analysis.loops import Loops
from dllint.analysis.losses import Losses
from dllint.analysis.names import Names
from dllint.analysis.paths import display_path
from dllint.analysis.training import Training
from dllint.analysis.tree import TreeIndex
from dllint.analysis.values import Value, Values

__all__ = ["ModuleFacts", "Value", "display_path", "render_places"]

# A place in a message, before the engine knows which file the finding is in.
PLACE = "\x00{path}\x00{line}\x00"
_PLACE = re.compile("\x00([^\x00]*)\x00([0-9]+)\x00")


def render_places(message: str, reported: str) -> str:
    """``PLACE`` marks as ``line N`` in the reported file, ``other.py:N`` elsewhere."""

    def written(match: re.Match) -> str:
        path, line = match.group(1), match.group(2)
        if os.path.abspath(reported) == path:
            return f"line {line}"
        return f"{display_path(path, reported)}:{line}"

    return _PLACE.sub(written, message)


class ModuleFacts:
    """Everything the rules may ask about one parsed module."""

    def __init__(self, path: str, text: str, module: cst.Module, prelude=None) -> None:
        self.path = path
        self.text = text
        self.module = module
        # The definitions copied in from the file's project (dllint.project.prelude):
        # lines up to ``prelude.lines`` belong to other files.
        self.prelude = prelude

    @cached_property
    def tree(self) -> TreeIndex:
        return TreeIndex(self.module, self.text)

    @cached_property
    def names(self) -> Names:
        return Names(self.tree)

    @cached_property
    def classes(self) -> Classes:
        return Classes(self.tree, self.names)

    @cached_property
    def values(self) -> Values:
        return Values(self.tree, self.names, self.classes)

    @cached_property
    def loops(self) -> Loops:
        return Loops(self.tree, self.values)

    @cached_property
    def data(self) -> Data:
        return Data(self)

    @cached_property
    def losses(self) -> Losses:
        return Losses(self)

    @cached_property
    def training(self) -> Training:
        return Training(self)

    def span(self, node: cst.CSTNode):
        return self.tree.span(node)

    def origin(self, node: cst.CSTNode) -> tuple[str, int, int] | None:
        """(file, line, column) of a node copied in from another file of the
        project; None for the file's own code."""
        if self.prelude is None:
            return None
        (line, column), _ = self.span(node)
        if line > self.prelude.lines:
            return None
        where = self.prelude.origin(line)
        return (where[0], where[1], column) if where else None

    def location(self, node: cst.CSTNode) -> tuple[str, int, int]:
        """(absolute path, line, column) of ``node``, in whichever file it is."""
        origin = self.origin(node)
        if origin is not None:
            return os.path.abspath(origin[0]), origin[1], origin[2]
        (line, column), _ = self.span(node)
        shift = self.prelude.lines if self.prelude is not None else 0
        return os.path.abspath(self.path), line - shift, column

    def place(self, node: cst.CSTNode) -> str:
        """Where ``node`` is, for a message: ``line 12``, or ``model.py:7`` when it
        is in another file of the project than the finding. With a prelude the
        finding's own file is not known yet: a ``PLACE`` mark stands in, which the
        engine writes out once it has placed the finding (``render_places``)."""
        line = self.span(node)[0][0]
        if self.prelude is None:
            return f"line {line}"
        origin = self.origin(node)
        path, line = (origin[0], origin[1]) if origin else (self.path, line - self.prelude.lines)
        return PLACE.format(path=os.path.abspath(path), line=line)

    def qualname(self, expr: cst.CSTNode) -> str | None:
        return self.names.qualname(expr)

    def calls(self) -> list[cst.Call]:
        return self.tree.nodes(cst.Call)
