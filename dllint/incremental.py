"""Re-parsing an edited buffer: only its changed top-level statements.

libcst parses about ten times slower than CPython, and an editor asks for a check
after every pause in typing, each time of a file that differs from the last one in
one statement. ``StatementCache.parse`` cuts the text at its top-level statements
(CPython's tree, already built by ``dllint.source``, says where), parses each chunk
of lines it has not seen before, reuses the parse of the others and puts the
module together. The result is the module a whole parse gives: the same code,
line for line, and the same statements (comments between two statements lead the
second, as libcst places them; a chunk's trailing comments are handed on).

Only ``dllint server`` uses it (``dllint.source.STATEMENT_CACHE``); ``dllint check``
parses each file once and gains nothing.
"""

from __future__ import annotations

import ast
import threading
from collections import OrderedDict

import libcst as cst


def chunks(text: str, tree: ast.Module) -> list[str]:
    """``text`` cut before each top-level statement (its decorators included) that
    starts on a line of its own; joined, the chunks are ``text``."""
    starts = []
    previous_end = 0
    for statement in tree.body:
        first = min(
            [statement.lineno]
            + [d.lineno for d in getattr(statement, "decorator_list", ()) if hasattr(d, "lineno")]
        )
        if not starts:
            starts.append(1)  # the first chunk holds the module's header too
        elif first > previous_end:
            starts.append(first)
        previous_end = max(previous_end, statement.end_lineno or statement.lineno)
    lines = text.split("\n")
    out = []
    for index, start in enumerate(starts):
        end = starts[index + 1] - 1 if index + 1 < len(starts) else len(lines)
        piece = lines[start - 1 : end]
        out.append("\n".join(piece) + ("\n" if end < len(lines) else ""))
    return out


class StatementCache:
    """Parses of recent chunks, by their text (at most ``limit`` of them)."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._parsed: OrderedDict[str, cst.Module] = OrderedDict()
        self._lock = threading.Lock()

    def parse(self, text: str, tree: ast.Module) -> cst.Module:
        """The module of ``text`` (``tree``: CPython's parse of the same text).
        Raises what ``libcst.parse_module`` raises on a chunk it cannot parse."""
        pieces = chunks(text, tree)
        if len(pieces) < 2 or "".join(pieces) != text:
            return cst.parse_module(text)
        parts = []
        used: set[str] = set()
        for piece in pieces:
            # the same chunk twice in one file (two identical statements) needs its
            # own nodes: a node must not appear twice in one tree
            module = None if piece in used else self._get(piece)
            if module is None:
                module = cst.parse_module(piece)
                if piece not in used:
                    self._put(piece, module)
            used.add(piece)
            parts.append(module)
        return _assemble(parts)

    def _get(self, piece: str) -> cst.Module | None:
        with self._lock:
            module = self._parsed.get(piece)
            if module is not None:
                self._parsed.move_to_end(piece)
            return module

    def _put(self, piece: str, module: cst.Module) -> None:
        with self._lock:
            self._parsed[piece] = module
            while len(self._parsed) > self.limit:
                self._parsed.popitem(last=False)


def _assemble(parts: list[cst.Module]) -> cst.Module:
    """One module from the modules of consecutive chunks."""
    body: list = []
    carried: list = []  # empty lines and comments waiting for the next statement
    for index, part in enumerate(parts):
        lead = carried + (list(part.header) if index else [])
        statements = list(part.body)
        if not statements:
            carried = lead + list(part.footer)
            continue
        if lead:
            first = statements[0]
            statements[0] = first.with_changes(leading_lines=[*lead, *first.leading_lines])
        body.extend(statements)
        carried = list(part.footer)
    indented = next(
        (p for p in parts if any(not isinstance(s, cst.SimpleStatementLine) for s in p.body)),
        parts[0],
    )
    return cst.Module(
        body=body,
        header=parts[0].header,
        footer=carried,
        encoding=parts[0].encoding,
        default_indent=indented.default_indent,
        default_newline=parts[0].default_newline,
        has_trailing_newline=parts[-1].has_trailing_newline,
    )
