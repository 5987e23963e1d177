"""``--statistics``: how many findings of each code, most frequent first."""

from __future__ import annotations

import json
from collections import Counter

from dllint.finding import Finding


def counts(findings: list[Finding]) -> list[tuple[str, str, int]]:
    """(code, name, count), most frequent first, then by code."""
    names = {f.code: f.name for f in findings}
    tally = Counter(f.code for f in findings)
    return sorted(((c, names[c], n) for c, n in tally.items()), key=lambda r: (-r[2], r[0]))


def format_statistics(findings: list[Finding], json_output: bool = False) -> str:
    """One row per code; ``[*]`` (text) or ``"fixable"`` (JSON, how many of them)
    marks the codes whose findings ``dllint check --fix`` can repair."""
    rows = counts(findings)
    fixable = Counter(f.code for f in findings if f.fix)
    if json_output:
        data = [
            {"code": code, "name": name, "count": n, "fixable": fixable[code]}
            for code, name, n in rows
        ]
        return json.dumps(data, indent=2) + "\n"
    width = max((len(str(n)) for _, _, n in rows), default=1)
    return "".join(
        f"{n:>{width}}  {code}  [{name}]{' [*]' if fixable[code] else ''}\n"
        for code, name, n in rows
    )
