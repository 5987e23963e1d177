"""What the text mode says around the findings: the last line on stderr, each fix
with ``--show-fixes``, and the fixes ``--fix`` applied."""

from __future__ import annotations

from collections import Counter

from dllint.finding import Finding


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(findings: list[Finding]) -> str:
    """``Found N findings (M fixable).``, or ``All checks passed!``."""
    if not findings:
        return "All checks passed!"
    fixable = sum(1 for f in findings if f.fix)
    return f"Found {_plural(len(findings), 'finding')} ({fixable} fixable)."


def fix_lines(findings: list[Finding]) -> str:
    """``--show-fixes`` without ``--fix``: what each fixable finding's fix does."""
    rows = [(f.path, f.cell, f.line, f.code, f.fix) for f in findings if f.fix]
    if not rows:
        return ""
    out = [f"Available fixes ({len(rows)}):\n"]
    for path, cell, line, code, fix in rows:
        where = f"{path}:cell {cell}:{line}" if cell is not None else f"{path}:{line}"
        out.append(f"  {where}: {code} {fix}\n")
    return "".join(out)


def fixed_listing(before: list[Finding], after: list[Finding]) -> str:
    """``--fix --show-fixes``: per file, how many findings of each code the fixes
    removed (fixable findings before the fix, less those still there after)."""
    names = {f.code: f.name for f in before}
    gone = Counter((f.path, f.code) for f in before if f.fix)
    gone.subtract(Counter((f.path, f.code) for f in after))
    rows = sorted((path, code, n) for (path, code), n in gone.items() if n > 0)
    if not rows:
        return "No findings were fixed.\n"
    out = [f"Fixed {_plural(sum(n for _, _, n in rows), 'finding')}:\n"]
    current = None
    for path, code, count in rows:
        if path != current:
            out.append(f"- {path}:\n")
            current = path
        out.append(f"    {count} × {code} ({names[code]})\n")
    return "".join(out)
