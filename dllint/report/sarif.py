"""SARIF 2.1.0, the format GitHub code scanning (and most CI dashboards) upload.

One run, one tool (``dllint``), a ``rules`` entry per reported code with its summary
and documentation page, and one result per finding with a physical location whose
URI is relative to the folder dllint ran in (``%SRCROOT%``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from dllint import __version__
from dllint.finding import Finding
from dllint.report.rules import describe, docs_url

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/dllint/dllint"
LEVELS = {"error": "error", "warning": "warning", "note": "note"}


def artifact_uri(path: str, base: str | None = None) -> str:
    """A relative, percent-encoded URI for files under ``base`` (the working folder),
    a ``file://`` URI for files elsewhere. A file name that is not UTF-8 (held as
    surrogate escapes) is percent-encoded from its bytes."""
    base = os.path.abspath(base or os.getcwd())
    absolute = os.path.abspath(path)
    try:
        relative = Path(absolute).relative_to(base)
    except ValueError:
        return Path(absolute).as_uri()
    return quote(os.fsencode(relative.as_posix()))


def artifact_location(path: str) -> dict:
    """``{"uri", "uriBaseId"}`` for a file under the working folder; an absolute
    ``file://`` URI alone for one outside it (a base would make it relative)."""
    uri = artifact_uri(path)
    if uri.startswith("file:"):
        return {"uri": uri}
    return {"uri": uri, "uriBaseId": "%SRCROOT%"}


def _region(finding: Finding) -> dict:
    if finding.cell is not None:  # a cell's line is not a line of the .ipynb file
        return {"startLine": 1}
    region = {"startLine": finding.line, "startColumn": finding.column}
    if finding.end_line >= finding.line:
        region["endLine"] = finding.end_line
        if finding.end_column and (
            finding.end_line > finding.line or finding.end_column >= finding.column
        ):
            region["endColumn"] = finding.end_column
    return region


def _message(finding: Finding) -> str:
    if finding.cell is not None:
        return f"cell {finding.cell}, line {finding.line}: {finding.message}"
    return finding.message


def _result(finding: Finding, index: int) -> dict:
    result = {
        "ruleId": finding.code,
        "ruleIndex": index,
        "level": LEVELS.get(finding.severity, "warning"),
        "message": {"text": _message(finding)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact_location(finding.path),
                    "region": _region(finding),
                }
            }
        ],
    }
    if finding.cell is not None:
        result["properties"] = {"cell": finding.cell, "lineInCell": finding.line}
    if finding.related:  # the other files of the project the finding is about
        result["relatedLocations"] = [
            {
                "id": number,
                "message": {"text": place["message"]},
                "physicalLocation": {
                    "artifactLocation": artifact_location(place["path"]),
                    "region": {"startLine": place["line"], "startColumn": place["column"]},
                },
            }
            for number, place in enumerate(finding.related)
        ]
    return result


def _rule(code: str) -> dict:
    name, summary, severity = describe(code)
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": summary},
        "helpUri": docs_url(code),
        "defaultConfiguration": {"level": LEVELS.get(severity, "warning")},
    }


def sarif_log(findings: list[Finding]) -> dict:
    codes = sorted({f.code for f in findings})
    index = {code: i for i, code in enumerate(codes)}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dllint",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(code) for code in codes],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "results": [_result(f, index[f.code]) for f in findings],
            }
        ],
    }


def format_sarif(findings: list[Finding]) -> str:
    return json.dumps(sarif_log(findings), indent=2) + "\n"
