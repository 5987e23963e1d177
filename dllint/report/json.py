from __future__ import annotations

import json

from dllint.finding import Finding


def format_json(findings: list[Finding]) -> str:
    return json.dumps([f.to_json() for f in findings], indent=2) + "\n"
