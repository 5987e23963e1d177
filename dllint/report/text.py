from __future__ import annotations

from dllint.finding import Finding


def location(finding: Finding) -> str:
    if finding.cell is not None:
        return f"{finding.path}:cell {finding.cell}:{finding.line}:{finding.column}"
    return f"{finding.path}:{finding.line}:{finding.column}"


def format_text(findings: list[Finding]) -> str:
    """``path:line:col: CODE [name] level: message``; ``[*]`` after the name marks a
    finding that ``dllint check --fix`` can repair."""
    return "".join(
        f"{location(f)}: {f.code} [{f.name}]{' [*]' if f.fix else ''} {f.severity}: {f.message}\n"
        for f in findings
    )
