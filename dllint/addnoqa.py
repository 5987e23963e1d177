"""``dllint check --add-noqa``: a ``# noqa: CODE`` on each finding's line.

A line with a ``# noqa: A`` gets the new codes appended (``# noqa: A, DL401``); a
line with a bare ``# noqa`` already silences everything. A comment cannot go where
it would change the program or not be read: a line that ends inside a string
spanning several lines, or that ends with a backslash continuation, is left as it
is (and counted as skipped). Notebooks are edited cell by cell and written back
as JSON with their own indentation; Python files keep their encoding, BOM and line
endings.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

from dllint.finding import Finding
from dllint.noqa import ALL, NOQA, suppressions

# Codes a directive should not hide: a file dllint could not read, a rule that failed
# (a bug to report), and DL003 (whose remedy is to remove a directive).
NOT_SILENCED = frozenset({"DL001", "DL002", "DL003"})


@dataclass
class Outcome:
    """What ``--add-noqa`` did: directives added or extended, files written, and
    findings whose line cannot take a comment."""

    added: int = 0
    files: int = 0
    skipped: int = 0


def add_noqa(findings: Iterable[Finding]) -> Outcome:
    """Add the directives for ``findings`` to their files; return what was done."""
    places: dict[str, dict[int | None, dict[int, set[str]]]] = {}
    for finding in findings:
        if finding.code in NOT_SILENCED:
            continue
        cells = places.setdefault(finding.path, {})
        cells.setdefault(finding.cell, {}).setdefault(finding.line, set()).add(finding.code)
    outcome = Outcome()
    for path, cells in sorted(places.items()):
        if path.endswith(".ipynb"):
            added, skipped = _add_to_notebook(path, cells)
        else:
            added, skipped = _add_to_python(path, cells.get(None, {}))
        outcome.added += added
        outcome.skipped += skipped
        outcome.files += bool(added)
    return outcome


def with_directives(
    text: str, codes_by_line: dict[int, set[str]], python: str | None = None
) -> tuple[str, int, int]:
    """``text`` with the directives added: (new text, lines changed, lines skipped).

    ``python`` is the text as Python reads it when it differs from ``text`` by
    IPython syntax (a notebook cell), line for line.
    """
    lines = text.split("\n")
    blocked = _no_room(python if python is not None else text)
    table = suppressions(python if python is not None else text)
    added = skipped = 0
    for number, codes in sorted(codes_by_line.items()):
        if not 1 <= number <= len(lines) or number in blocked:
            skipped += 1
            continue
        present = table.get(number)
        if present is ALL or (present and "*" in present):
            continue
        missing = sorted(
            code for code in codes if not any(code.startswith(p) for p in present or ())
        )
        if not missing:
            continue
        lines[number - 1] = _directive(lines[number - 1], missing, present is not None)
        added += 1
    return "\n".join(lines), added, skipped


def _directive(line: str, codes: list[str], extend: bool) -> str:
    """The physical line with ``codes`` added to its directive, or a new directive."""
    if extend:
        hash_at = line.rfind("#")
        while hash_at >= 0:  # the last comment part holding a coded directive
            match = NOQA.match(line, hash_at)
            if match and match.group("codes"):
                end = match.end("codes")
                return f"{line[:end]}, {', '.join(codes)}{line[end:]}"
            hash_at = line.rfind("#", 0, hash_at)
    return f"{line.rstrip()}  # noqa: {', '.join(codes)}"


def _no_room(text: str) -> set[int]:
    """Lines where a comment cannot go: inside a string that spans lines (all but its
    last line), or ending with a backslash. Everything, when the text does not
    tokenize (its findings would be DL001, which gets no directive)."""
    blocked: set[int] = set()
    opened: list[int] = []  # start lines of the f-strings being read (3.12+)
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            kind = tokenize.tok_name[token.type]
            if kind == "FSTRING_START":
                opened.append(token.start[0])
            elif kind == "FSTRING_END" and opened:
                blocked.update(range(opened.pop(), token.end[0]))
            elif token.type == tokenize.STRING and token.end[0] > token.start[0]:
                blocked.update(range(token.start[0], token.end[0]))
    except (tokenize.TokenError, SyntaxError):
        return set(range(1, text.count("\n") + 2))
    for number, line in enumerate(text.split("\n"), start=1):
        if line.rstrip().endswith("\\"):
            blocked.add(number)
    return blocked


def _add_to_python(path: str, codes_by_line: dict[int, set[str]]) -> tuple[int, int]:
    from dllint.fixes import SourceStyle
    from dllint.source import ParseFailure, decode

    try:
        with open(path, "rb") as handle:
            data = handle.read()
        text = decode(data)
    except (OSError, ParseFailure):
        return 0, len(codes_by_line)
    new, added, skipped = with_directives(text, codes_by_line)
    if added:
        with open(path, "wb") as handle:
            handle.write(SourceStyle.of(data).encode(new))
    return added, skipped


def _add_to_notebook(path: str, cells: dict[int | None, dict[int, set[str]]]) -> tuple[int, int]:
    from dllint.notebook import cell_lines

    wanted = sum(len(lines) for lines in cells.values())
    try:
        with open(path, encoding="utf-8") as handle:
            raw = handle.read()
        document = json.loads(raw)
        notebook_cells = document["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0, wanted
    added = skipped = 0
    for number, codes_by_line in cells.items():
        if number is None or not 1 <= number <= len(notebook_cells):
            skipped += len(codes_by_line)
            continue
        cell = notebook_cells[number - 1]
        source = cell.get("source", "")
        as_list = isinstance(source, list)
        text = "".join(source) if as_list else str(source)
        python = "\n".join(cell_lines(text)[0])
        new, changed, missed = with_directives(text, codes_by_line, python)
        added, skipped = added + changed, skipped + missed
        if changed:
            cell["source"] = new.splitlines(keepends=True) if as_list else new
    if added:
        indent = _indent(raw)
        written = json.dumps(document, indent=indent, ensure_ascii=False)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(written + ("\n" if raw.endswith("\n") else ""))
    return added, skipped


def _indent(raw: str) -> int | None:
    """The notebook's JSON indentation (Jupyter writes 1), None for one-line JSON."""
    match = re.match(r"\s*\{\n( +)", raw)
    if match:
        return len(match.group(1))
    return None if "\n" not in raw.strip() else 1
