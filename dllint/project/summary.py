"""What another file needs to know of a module: its top-level statements, the names
each binds and reads, and its imports.

Built with CPython's ``ast`` (ten times faster than libcst), once per file content
and process; a module that does not parse has no summary and is treated as not
there. The classes' layer inventories and ``forward`` results are not summarised
here: the statements that define them are handed to the importing file's analysis
(``dllint.project.prelude``), which answers those questions with the same code as
for a single file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from dllint.project.versions import PerVersion

MAX_SUMMARY_BYTES = 2_000_000  # bigger files (generated tables, data) are not followed


@dataclass(frozen=True)
class ImportFrom:
    level: int
    module: str
    names: tuple[tuple[str, str], ...]  # (imported, local); ("*", "*") for a star


@dataclass(frozen=True)
class Import:
    names: tuple[tuple[str, str], ...]  # (dotted, local name it binds)


@dataclass(frozen=True)
class Statement:
    """One top-level statement: its lines (decorators included), what it binds,
    the names it reads, and, for an import, what it imports."""

    kind: str  # "def", "class", "assign", "import", "other"
    start: int
    end: int
    binds: tuple[str, ...]
    reads: frozenset[str]
    imports: ImportFrom | Import | None = None


@dataclass
class Summary:
    path: str
    lines: list[str]
    statements: list[Statement]
    bound: dict[str, int] = field(default_factory=dict)  # name -> last statement binding it

    def text_of(self, statement: Statement) -> str:
        return "".join(self.lines[statement.start - 1 : statement.end])


def _summary(path: str, size: int) -> Summary | None:
    return _summarise(path) if size <= MAX_SUMMARY_BYTES else None


# The summary of the file at a path (None when it cannot be read or parsed).
summary_of = PerVersion(_summary)


def summarise_text(path: str, text: str) -> Summary | None:
    try:
        tree = ast.parse(text, path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    lines = text.splitlines(keepends=True)
    statements = [_statement(node) for node in tree.body]
    summary = Summary(path, lines, statements)
    for index, statement in enumerate(statements):
        for name in statement.binds:
            summary.bound[name] = index
    return summary


def _summarise(path: str) -> Summary | None:
    from dllint.source import ParseFailure, decode

    try:
        with open(path, "rb") as handle:
            text = decode(handle.read())
    except (OSError, ParseFailure):
        return None
    return summarise_text(path, text)


def _statement(node: ast.stmt) -> Statement:
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    end = node.end_lineno or node.lineno
    reads = frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return Statement("def", start, end, (node.name,), reads)
    if isinstance(node, ast.ClassDef):
        return Statement("class", start, end, (node.name,), reads)
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        if isinstance(node, ast.AnnAssign) and node.value is None:
            names = ()
        return Statement("assign", start, end, names, reads)
    if isinstance(node, ast.ImportFrom):
        pairs = tuple((a.name, a.asname or a.name) for a in node.names)
        binds = tuple(local for _, local in pairs if local != "*")
        info = ImportFrom(node.level or 0, node.module or "", pairs)
        return Statement("import", start, end, binds, frozenset(), info)
    if isinstance(node, ast.Import):
        pairs = tuple((a.name, a.asname or a.name.split(".")[0]) for a in node.names)
        return Statement(
            "import", start, end, tuple(p[1] for p in pairs), frozenset(), Import(pairs)
        )
    return Statement("other", start, end, (), reads)
