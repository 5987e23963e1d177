from __future__ import annotations

from dllint.finding import Finding


def location(finding: Finding) -> str:
    if finding.cell is not None:
        return f"{finding.path}:cell {finding.cell}:{finding.line}:{finding.column}"
    return f"{finding.path}:{finding.line}:{finding.column}"


def format_text(findings: list[Finding]) -> str:
    return "".join(f"{location(f)}: {f.code} [{f.name}] {f.message}\n" for f in findings)
