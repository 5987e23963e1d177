"""GitHub Actions workflow commands: one ``::error``/``::warning``/``::notice`` line per
finding, shown as an annotation on the pull request's diff.

Escaping follows the runner's rules: in the message ``%``, CR and LF are
percent-encoded; in property values ``:`` and ``,`` are too.
"""

from __future__ import annotations

import os
from pathlib import Path

from dllint.finding import Finding

COMMANDS = {"error": "error", "warning": "warning", "note": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workspace_path(path: str) -> str:
    """GitHub places annotations by the path from the repository root (the folder the
    workflow runs in): an absolute path under it is made relative."""
    if os.path.isabs(path):
        try:
            relative = os.path.relpath(path)
        except ValueError:  # another drive, on Windows
            return path
        if not relative.startswith(".."):
            return Path(relative).as_posix()
    return path


def _properties(finding: Finding) -> list[tuple[str, str]]:
    props = [("file", workspace_path(finding.path))]
    if finding.cell is None:  # a cell's line is not a line of the .ipynb file
        props += [("line", str(finding.line)), ("col", str(finding.column))]
        if finding.end_line >= finding.line:
            props.append(("endLine", str(finding.end_line)))
            if finding.end_column:
                props.append(("endColumn", str(finding.end_column)))
    props.append(("title", f"{finding.code} [{finding.name}]"))
    return props


def github_command(finding: Finding) -> str:
    command = COMMANDS.get(finding.severity, "warning")
    props = ",".join(f"{key}={escape_property(value)}" for key, value in _properties(finding))
    message = finding.message
    if finding.cell is not None:
        message = f"cell {finding.cell}, line {finding.line}: {message}"
    return f"::{command} {props}::{escape_data(message)}"


def format_github(findings: list[Finding]) -> str:
    return "".join(github_command(f) + "\n" for f in findings)
