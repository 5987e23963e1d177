"""Fixing files: check, apply the fixes, check again, until nothing applies.

Above the engine: it checks files (``dllint.engine``) and applies the fixes the
findings carry (``dllint.fixes``); notebooks are fixed in their code cells' sources
only (``dllint.notebook`` joins and splits them). The engine imports none of this.
"""

from __future__ import annotations

import json

from dllint.engine import check_text
from dllint.fixes import FileFix, SourceStyle, applicable, apply, module_of, new_codes
from dllint.notebook import cells_source, json_layout, language_of, source_text
from dllint.source import ParseFailure, decode, parse

MAX_PASSES = 5


def fix_text(text: str, path: str, rules, unsafe: bool = False) -> tuple[str, int]:
    """Apply every applicable fix, re-checking until none applies (a few passes at most).

    Returns the fixed text and the number of fixes applied. A pass whose result does
    not parse, or (safe fixes only) reports a finding the text before it did not, is
    dropped and the fixing stops there.
    """

    total = 0
    findings = check_text(text, path, rules, exact=True)
    for _ in range(MAX_PASSES):
        chosen = [f for f in findings if applicable(f, unsafe)]
        if not chosen:
            break
        try:
            module = module_of(chosen)
        except LookupError:
            break
        fixed, applied = apply(module, [f.edit for f in chosen])
        if not applied or fixed == text:
            break
        try:
            parse(fixed)
        except ParseFailure:
            break
        after = check_text(fixed, path, rules, exact=True)
        if not unsafe and new_codes(findings, after):
            break
        text, findings, total = fixed, after, total + applied
    return text, total


def fix_file(path: str, rules, unsafe: bool = False) -> FileFix | None:
    """Fix one Python file or notebook with ``rules`` (classes); None when it cannot
    be read or decoded (the check has reported that already)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        before = decode(data)
    except (OSError, ParseFailure):
        return None
    if path.endswith(".ipynb"):  # the cells' sources only; outputs and layout kept
        after, applied = fix_notebook_text(before, path, rules, unsafe)
    else:
        after, applied = fix_text(before, path, rules, unsafe)
    return FileFix(path, before, after, applied, SourceStyle.of(data), data)


def fix_notebook_text(text: str, path: str, rules, unsafe: bool = False) -> tuple[str, int]:
    """The notebook's JSON with the fixes applied to its code cells' sources only
    (outputs, metadata and the JSON layout untouched), and how many applied. The
    text comes back unchanged when a fix would touch a line IPython syntax changed,
    or the notebook's layout cannot be written back exactly."""
    try:
        document = json.loads(text)
        cells = document.get("cells") if isinstance(document, dict) else None
        language = language_of(document) if isinstance(document, dict) else None
    except (ValueError, RecursionError):
        return text, 0
    layout = json_layout(document, text) if isinstance(cells, list) else None
    if layout is None or (language is not None and language not in ("python", "python3")):
        return text, 0
    code_cells = [
        (number, cell)
        for number, cell in enumerate(cells, start=1)
        if isinstance(cell, dict) and cell.get("cell_type") == "code"
    ]
    sources = {number: source_text(cell.get("source", "")) for number, cell in code_cells}
    if any(source is None or "\r" in source for source in sources.values()):
        return text, 0
    joined, origin = cells_source(sources.items(), [])
    fixed, applied = fix_text(joined, path, rules, unsafe)
    before, after = joined.split("\n"), fixed.split("\n")
    if not applied or len(before) != len(after) or len(after) - 1 != len(origin):
        return text, 0
    lines = {number: source.split("\n") for number, source in sources.items()}
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        if old == new:
            continue
        place = origin[index]
        written = lines[place.cell][place.line - 1]
        indent = old[: len(old) - len(old.lstrip())]
        body = old[len(indent) :]  # the statement, after the cell's indent or a %time
        if not (written.endswith(body) and new.startswith(indent)):
            return text, 0  # a line IPython syntax rewrote (``pass  # %magic``)
        lines[place.cell][place.line - 1] = written[: len(written) - len(body)] + new[len(indent) :]
    for number, cell in code_cells:
        source = "\n".join(lines[number])
        if isinstance(cell.get("source"), list):
            cell["source"] = source.splitlines(keepends=True)
        else:
            cell["source"] = source
    dumped = json.dumps(document, indent=layout["indent"], ensure_ascii=layout["ensure_ascii"])
    return dumped + layout["end"], applied
