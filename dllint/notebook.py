"""Jupyter notebooks: code cells joined into one module, findings mapped back to cells.

Cells are checked as one module, in order, so a model defined in cell 3 is known in
cell 7. IPython magics and shell escapes are blanked (a ``pass`` at the same indent)
so line numbers do not move. Cells are numbered 1-based among all cells, markdown
included, as ruff counts them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace

from dllint.finding import Finding
from dllint.rule import Rule
from dllint.source import ParseFailure

MAGIC = re.compile(r"^(\s*)([%!?]|\w[\w.]*\?\??\s*$)")


def _neutralise(line: str) -> str:
    match = MAGIC.match(line)
    if match:
        return f"{match.group(1)}pass  # {line.strip()}"
    return line


def notebook_source(data: str) -> tuple[str, list[tuple[int, int]]]:
    """The module text of a notebook and, for each of its lines, (cell, line in cell)."""
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ParseFailure(f"not a valid notebook: {exc.msg}", exc.lineno, exc.colno) from None
    cells = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(cells, list):
        raise ParseFailure("not a valid notebook: no list of cells")
    lines: list[str] = []
    origin: list[tuple[int, int]] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(part) for part in source)
        if not isinstance(source, str):
            continue
        cell_lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        cell_magic = bool(cell_lines) and cell_lines[0].lstrip().startswith("%%")
        for index, line in enumerate(cell_lines, start=1):
            if cell_magic:
                line = "" if index > 1 else "pass  # cell magic"
            lines.append(_neutralise(line))
            origin.append((number, index))
    return "\n".join(lines) + "\n", origin


def check_notebook(path: str, rules: Iterable[type[Rule]], report=None) -> list[Finding]:
    from dllint.engine import PARSE_ERROR, _error, check_text, read_source

    try:
        text, origin = notebook_source(read_source(path))
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    mapped = []
    for finding in check_text(text, path, rules, report):
        if 1 <= finding.line <= len(origin):
            cell, line = origin[finding.line - 1]
            end = finding.end_line - finding.line + line
            mapped.append(replace(finding, cell=cell, line=line, end_line=end))
        else:
            mapped.append(finding)
    return mapped
