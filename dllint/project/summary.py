"""What another file needs to know of a module: its top-level statements, the names
each binds and reads, and its imports.

Built with CPython's ``ast`` (ten times faster than libcst), once per file version
and process, and kept in the cache folder by content hash (``STORE``, set by the
engine when the run has a cache), so a later run reads it instead of parsing; a
module that does not parse has no summary and is treated as not there. The
classes' layer inventories and ``forward`` results are not summarised here: the
statements that define them are handed to the importing file's analysis
(``dllint.project.prelude``), which answers those questions with the same code as
for a single file.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from dllint.project.versions import PerVersion

MAX_SUMMARY_BYTES = 2_000_000  # bigger files (generated tables, data) are not followed
STORE: Path | None = None  # where summaries are kept by content hash; None: not kept
FORMAT = 2  # bump when the stored layout changes
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def source_lines(text: str) -> list[str]:
    """``text`` split as Python numbers its lines (``\n``, ``\r\n``, ``\r`` only;
    ``str.splitlines`` also splits at form feeds and other separators)."""
    return _LINE.findall(text)


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
    the names it reads, for an import what it imports, and for other statements the
    names whose object they may change (``model.eval()``, an assignment in a loop)."""

    kind: str  # "def", "class", "assign", "import", "other"
    start: int
    end: int
    binds: tuple[str, ...]
    reads: frozenset[str]
    imports: ImportFrom | Import | None = None
    changes: frozenset[str] = frozenset()


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
    return _assembled(path, text, [_statement(node) for node in tree.body])


def _assembled(path: str, text: str, statements: list[Statement]) -> Summary:
    summary = Summary(path, source_lines(text), statements)
    for index, statement in enumerate(statements):
        for name in statement.binds:
            summary.bound[name] = index
    return summary


def _summarise(path: str) -> Summary | None:
    from dllint.source import ParseFailure, decode

    try:
        with open(path, "rb") as handle:
            data = handle.read()
        text = decode(data)
    except (OSError, ParseFailure):
        return None
    if STORE is None:
        return summarise_text(path, text)
    entry = STORE / f"{hashlib.sha256(data).hexdigest()}.summary"
    stored = _load(entry)
    if stored is not None:
        return _assembled(path, text, stored)
    summary = summarise_text(path, text)
    _save(entry, summary)
    return summary


# -- kept between runs ------------------------------------------------------------------


def _load(entry: Path) -> list[Statement] | None:
    """The statements stored in ``entry``; None when absent or not as written."""
    try:
        rows = json.loads(entry.read_text("utf-8"))
        if rows[0] != FORMAT:
            return None
        return [_statement_from(row) for row in rows[1]]
    except (OSError, ValueError, TypeError, IndexError, KeyError, RecursionError):
        return None


def _statement_from(row: list) -> Statement:
    kind, start, end, binds, reads, imports, changes = row
    if not (isinstance(kind, str) and isinstance(start, int) and isinstance(end, int)):
        raise TypeError("not a statement")
    info: ImportFrom | Import | None = None
    if imports is not None:
        if imports[0] == "from":
            names = tuple((str(a), str(b)) for a, b in imports[3])
            info = ImportFrom(int(imports[1]), str(imports[2]), names)
        else:
            info = Import(tuple((str(a), str(b)) for a, b in imports[1]))
    return Statement(
        kind,
        start,
        end,
        tuple(map(str, binds)),
        frozenset(map(str, reads)),
        info,
        frozenset(map(str, changes)),
    )


def _row(statement: Statement) -> list:
    info = statement.imports
    imports = None
    if isinstance(info, ImportFrom):
        imports = ["from", info.level, info.module, [list(pair) for pair in info.names]]
    elif isinstance(info, Import):
        imports = ["import", [list(pair) for pair in info.names]]
    return [
        statement.kind,
        statement.start,
        statement.end,
        list(statement.binds),
        sorted(statement.reads),
        imports,
        sorted(statement.changes),
    ]


def _save(entry: Path, summary: Summary | None) -> None:
    """Keep the summary (a module that does not parse is not kept: it is re-tried).
    Written through a renamed temporary file; a cache that cannot be written only
    costs time."""
    if summary is None:
        return
    from dllint.cache import _write_atomically

    _write_atomically(entry, json.dumps([FORMAT, [_row(s) for s in summary.statements]]))


def _changed(node: ast.stmt) -> frozenset[str]:
    """Names a statement calls a method on (``model.eval()``) or binds inside it (in a
    loop or branch): what a copy of their assignment alone would not show."""
    names = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
            if isinstance(inner.func.value, ast.Name):
                names.add(inner.func.value.id)
        elif isinstance(inner, ast.Name) and not isinstance(inner.ctx, ast.Load):
            names.add(inner.id)
    return frozenset(names)


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
    return Statement("other", start, end, (), reads, None, _changed(node))
