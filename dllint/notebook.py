"""Jupyter notebooks: code cells joined into one module, findings mapped back to cells.

Cells are checked as one module, in order, so a model defined in cell 3 is known in
cell 7. IPython syntax is neutralised without moving any line: a magic or shell
escape becomes ``pass`` at the same indent (the original kept as a comment, so a
``# noqa`` on it still works), ``x = !ls`` keeps binding ``x`` (to an unknown
value), ``%time stmt`` keeps ``stmt`` (columns mapped back), and a ``%%bash``-style
cell is blanked while a ``%%time`` cell keeps its Python body. Markdown and raw
cells are skipped. Cells are numbered 1-based among all cells, markdown included,
as ruff counts them; lines count within the cell.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from dllint.finding import Finding
from dllint.source import ParseFailure

# Cell magics whose body is Python that IPython runs in the user's namespace.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug", "memit"}
# Line magics whose argument is a Python statement: ``%time model.fit(x)``.
PYTHON_LINE_MAGICS = {"time", "timeit", "prun", "debug", "memit"}

ESCAPE = re.compile(r"[%!?/,;]")  # no Python logical line starts with these
HELP = re.compile(r"\s*(\?\??[\w.*]+|[\w.*]+\?\??)\s*$")  # ?obj, obj?, obj.attr??
STATEMENT_MAGIC = re.compile(r"(\s*)%(\w+)[ \t]+(?=[^\s-])")  # %time <stmt>
ASSIGNED_MAGIC = re.compile(r"(\s*[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*)[!%]")
UNKNOWN = "__ipython__"  # what ``x = !ls`` binds ``x`` to: a name nothing defines


@dataclass(frozen=True)
class Origin:
    """Where a line of the joined module came from."""

    cell: int
    line: int
    shift: int = 0  # columns removed from the front (``%time `` of ``%time f(x)``)


class _Continuation:
    """Tracks brackets, triple-quoted strings and backslashes across physical lines,
    so IPython syntax is recognised only where a logical line starts (``(a\\n % b)``
    is Python, and a docstring line may start with ``?``)."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None
        self.backslash = False

    def at_start(self) -> bool:
        return self.depth == 0 and self.quote is None and not self.backslash

    def feed(self, line: str) -> None:
        i, n, comment = 0, len(line), False
        while i < n:
            char = line[i]
            if self.quote:
                if char == "\\":
                    i += 2
                elif line.startswith(self.quote, i):
                    i, self.quote = i + 3, None
                else:
                    i += 1
                continue
            if char == "#":
                comment = True
                break
            if char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            elif char in "'\"":
                if line[i : i + 3] in ('"""', "'''"):
                    self.quote, i = line[i : i + 3], i + 3
                    continue
                i = _string_end(line, i)
                continue
            i += 1
        self.backslash = not comment and self.quote is None and line.endswith("\\")


def _string_end(line: str, start: int) -> int:
    """Index after the single-quoted string opening at ``start`` (or the line's end)."""
    i = start + 1
    while i < len(line) and line[i] != line[start]:
        i += 2 if line[i] == "\\" else 1
    return i + 1


def _opaque(line: str) -> str:
    """A line IPython handles itself: ``pass`` at its indent, the original kept as a
    comment (so ``# noqa`` on it still reads)."""
    indent = line[: len(line) - len(line.lstrip())]
    return f"{indent}pass  # {line.strip()}"


def _neutralise(line: str) -> tuple[str, int, bool]:
    """(Python for one IPython line, columns removed from the front, whether the
    magic continues on the next line with a backslash)."""
    stripped = line.lstrip()
    continues = line.rstrip().endswith("\\")
    statement = STATEMENT_MAGIC.match(line)
    if statement and statement.group(2) in PYTHON_LINE_MAGICS:
        indent = statement.group(1)
        return indent + line[statement.end() :], statement.end() - len(indent), False
    if stripped and ESCAPE.match(stripped) or HELP.match(line):
        return _opaque(line), 0, continues
    assigned = ASSIGNED_MAGIC.match(line)
    if assigned:
        rest = line[assigned.end() - 1 :]
        return f"{assigned.group(1)}{UNKNOWN}  # {rest}", 0, continues
    return line, 0, False


def _cell_magic(lines: list[str]) -> str | None:
    """The name of the cell magic (``time`` for ``%%time``), if the cell starts with one."""
    for line in lines:
        if line.strip():
            match = re.match(r"%%(\w*)", line)
            return match.group(1) if match else None
    return None


def _dedent(lines: list[str]) -> tuple[list[str], int]:
    """IPython's ``leading_indent``: when a cell's first line is indented, that
    indent is removed from every line that starts with it. (lines, its width)."""
    first = next((line for line in lines if line.strip()), "")
    indent = first[: len(first) - len(first.lstrip(" \t"))]
    if not indent:
        return lines, 0
    return [line[len(indent) :] if line.startswith(indent) else line for line in lines], len(indent)


def cell_lines(source: str) -> tuple[list[str], list[int]]:
    """A code cell as Python lines (same count as the cell) and each line's shift."""
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines, indent = _dedent(lines)
    magic = _cell_magic(lines)
    if magic is not None:
        start = next(i for i, line in enumerate(lines) if line.strip())
        body = lines[start + 1 :]
        if magic not in PYTHON_CELL_MAGICS:  # %%bash, %%writefile, %%html...: not Python
            body = [""] * len(body)
        lines = [*lines[:start], _opaque(lines[start]), *body]
        if magic not in PYTHON_CELL_MAGICS:
            return lines, [indent] * len(lines)
    out: list[str] = []
    shifts: list[int] = []
    state = _Continuation()
    magic_continues = False
    for line in lines:
        if magic_continues:  # the rest of a ``!pip install \`` command
            out.append("")
            shifts.append(indent)
            magic_continues = line.rstrip().endswith("\\")
            continue
        shift = 0
        if state.at_start():
            line, shift, magic_continues = _neutralise(line)
        state.feed(line)
        out.append(line)
        shifts.append(shift + indent)
    return out, shifts


class NotPython(Exception):
    """A notebook whose kernel runs another language (R, Julia...): not checked."""


def language_of(document: dict) -> str | None:
    """The notebook's language as its metadata says (lower case), if it says."""
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        return None
    for key in ("language_info", "kernelspec"):
        table = metadata.get(key)
        name = (
            table.get("name" if key == "language_info" else "language")
            if isinstance(table, dict)
            else None
        )
        if isinstance(name, str) and name.strip():
            return name.strip().lower()
    return None


def _cells(document) -> list:
    """The cells of an nbformat 4 notebook, or of an nbformat 3 one's worksheets (its
    code cells keep their source under ``input``)."""
    if not isinstance(document, dict):
        raise ParseFailure("not a valid notebook: its JSON is not an object")
    cells = document.get("cells")
    if isinstance(cells, list):
        return cells
    worksheets = document.get("worksheets")
    if isinstance(worksheets, list):
        found = []
        for sheet in worksheets:
            for cell in sheet.get("cells", []) if isinstance(sheet, dict) else []:
                if isinstance(cell, dict) and "source" not in cell and "input" in cell:
                    cell = {**cell, "source": cell["input"]}
                found.append(cell)
        return found
    version = document.get("nbformat")
    raise ParseFailure(
        f"not a notebook dllint can read (nbformat {version}; 3 and 4 are supported)"
        if version is not None
        else "not a valid notebook: no list of cells"
    )


def notebook_source(data: str, errors: list[CellError] | None = None) -> tuple[str, list[Origin]]:
    """The module text of a notebook and, for each of its lines, where it came from.

    A cell Python cannot compile is left blank (its error goes to ``errors``) so the
    other cells are still checked. Raises ``NotPython`` for another language's
    notebook, ``ParseFailure`` for a file that is no notebook."""
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ParseFailure(f"not a valid notebook: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise ParseFailure("not a valid notebook: its JSON is nested too deeply") from None
    cells = _cells(document)
    language = language_of(document)
    if language is not None and language not in ("python", "python3", "ipython"):
        raise NotPython(language)
    code_cells = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(part) for part in source)
        if isinstance(source, str):
            code_cells.append((number, source))
    return cells_source(code_cells, errors)


@dataclass(frozen=True)
class CellError:
    """A code cell Python cannot compile: CPython's message, at the cell's line."""

    cell: int
    line: int
    column: int
    message: str


def _compile_error(lines: list[str], shifts: list[int], cell: int) -> CellError | None:
    """CPython's verdict on one cell alone (as Jupyter runs it)."""
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        compile("\n".join(lines) + "\n", f"<cell {cell}>", "exec", flags, dont_inherit=True)
    except SyntaxError as exc:
        line = min(max(exc.lineno or 1, 1), len(lines))
        column = (exc.offset or 1) + shifts[line - 1]
        return CellError(cell, line, column, f"syntax error: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = "code is nested too deeply" if not isinstance(exc, ValueError) else str(exc)
        return CellError(cell, 1, 1, f"cannot compile this cell: {reason}")
    return None


def cells_source(
    cells: Iterable[tuple[int, str]], errors: list[CellError] | None = None
) -> tuple[str, list[Origin]]:
    """The module text of code cells given as (cell number, source), and each line's
    origin (an editor's notebook sends its cells one by one). A cell that does not
    compile is left blank; its error is added to ``errors``."""
    lines: list[str] = []
    origin: list[Origin] = []
    for number, source in cells:
        python, shifts = cell_lines(source)
        error = _compile_error(python, shifts, number)
        if error is not None:
            python = [""] * len(python)
            if errors is not None:
                errors.append(error)
        lines.extend(python)
        origin.extend(Origin(number, index, shift) for index, shift in enumerate(shifts, 1))
    return "\n".join(lines) + "\n", origin


LINE_REFERENCE = re.compile(r"\bline (\d+)\b")


def _message(message: str, cell: int, origin: list[Origin]) -> str:
    """Rewrite the message's "line 24" (a line of the joined module) as the cell's line,
    naming the cell when it is another one."""

    def where(match: re.Match) -> str:
        number = int(match.group(1))
        if not 1 <= number <= len(origin):
            return match.group(0)
        place = origin[number - 1]
        if place.cell == cell:
            return f"line {place.line}"
        return f"line {place.line} of cell {place.cell}"

    return LINE_REFERENCE.sub(where, message)


def place_in_cell(finding: Finding, origin: list[Origin]) -> Finding:
    """A finding on the joined module, placed in its cell."""
    if not 1 <= finding.line <= len(origin):
        return finding
    start = origin[finding.line - 1]
    end_line, end_column = finding.end_line, finding.end_column
    if 1 <= end_line <= len(origin) and end_line >= finding.line:
        end = origin[end_line - 1]
        end_line, end_column = end.line, end_column + end.shift
    else:
        end_line, end_column = start.line, finding.column + start.shift
    return replace(
        finding,
        cell=start.cell,
        line=start.line,
        message=_message(finding.message, start.cell, origin),
        column=finding.column + start.shift,
        end_line=end_line,
        end_column=end_column,
    )


# -- writing a notebook back (dllint.autofix fixes its cells) --------------------------


def json_layout(document, text: str) -> dict | None:
    """The ``json.dumps`` arguments that write ``document`` back as ``text`` exactly
    (nbformat writes ``indent=1, ensure_ascii=False`` and a final newline); None when
    no usual layout does, so the notebook is not rewritten."""
    for indent in (1, 2, 4, None):
        for ensure_ascii in (False, True):
            dumped = json.dumps(document, indent=indent, ensure_ascii=ensure_ascii)
            for end in ("\n", ""):
                if dumped + end == text:
                    return {"indent": indent, "ensure_ascii": ensure_ascii, "end": end}
    return None


def source_text(source) -> str | None:
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        return "".join(source)
    return source if isinstance(source, str) else None
