"""Formatters: findings -> text for the terminal, JSON, SARIF, GitHub annotations."""

from __future__ import annotations

from collections.abc import Callable

from dllint.finding import Finding
from dllint.report.github import format_github
from dllint.report.json import format_json
from dllint.report.sarif import format_sarif
from dllint.report.text import format_text

FORMATTERS: dict[str, Callable[[list[Finding]], str]] = {
    "text": format_text,
    "json": format_json,
    "sarif": format_sarif,
    "github": format_github,
}
