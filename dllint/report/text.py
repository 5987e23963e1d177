from __future__ import annotations

from dllint.finding import Finding

SAFE_MARK, UNSAFE_MARK = " [*]", " [~]"


def location(finding: Finding) -> str:
    if finding.cell is not None:
        return f"{finding.path}:cell {finding.cell}:{finding.line}:{finding.column}"
    return f"{finding.path}:{finding.line}:{finding.column}"


def _mark(finding: Finding) -> str:
    if finding.fix is None:
        return ""
    return SAFE_MARK if finding.fixable() else UNSAFE_MARK


def format_text(findings: list[Finding]) -> str:
    """``path:line:col: CODE [name] level: message``; ``[*]`` after the name marks a
    finding that ``dllint check --fix`` repairs, ``[~]`` one whose fix is unsafe (it
    is applied only with ``--unsafe-fixes``)."""
    return "".join(
        f"{location(f)}: {f.code} [{f.name}]{_mark(f)} {f.severity}: {f.message}\n"
        for f in findings
    )


def fix_note(findings: list[Finding], unsafe: bool = False) -> str:
    """The lines after the findings that say how many fixes ``--fix`` applies (and,
    without ``--unsafe-fixes``, how many more it would apply with it)."""
    safe = sum(1 for f in findings if f.fixable())
    hidden = sum(1 for f in findings if f.fix is not None and not f.fixable())
    lines = []
    if unsafe:
        safe, hidden = safe + hidden, 0
    if hidden:
        lines.append(
            f"[~] {hidden} more fixable with `dllint check --fix --unsafe-fixes` "
            "(unsafe: review the change)\n"
        )
    if safe:
        flag = " --unsafe-fixes" if unsafe else ""
        lines.append(f"[*] {safe} fixable with `dllint check --fix{flag}`\n")
    return "".join(lines)
