"""Files -> parsed modules -> rules -> findings, with ``# noqa`` applied.

A file that cannot be read or parsed becomes a ``DL001`` finding and the run goes
on; a rule that raises becomes ``DL002`` and the other rules' findings stand.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dllint.analysis import ModuleFacts
from dllint.discovery import DEFAULT_EXCLUDES, Excluder, iter_source_files
from dllint.finding import Finding
from dllint.noqa import is_suppressed, suppressions
from dllint.registry import matches
from dllint.rule import Rule
from dllint.source import ParseFailure, decode, parse

if TYPE_CHECKING:
    from dllint.config import Settings

PARSE_ERROR = ("DL001", "parse-error")
INTERNAL_ERROR = ("DL002", "internal-error")
ENGINE_CODES = (
    (*PARSE_ERROR, "the file could not be read or parsed; it was skipped"),
    (*INTERNAL_ERROR, "a rule failed on the file; the other rules' findings stand"),
)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    tracebacks: list[str] = field(default_factory=list)


def _error(code_name, path, message, line=1, column=1) -> Finding:
    code, name = code_name
    return Finding(path, line, column, code, name, message, line, column)


def check_text(
    text: str,
    path: str,
    rules: Iterable[type[Rule]],
    report: Report | None = None,
    noqa: bool = True,
) -> list[Finding]:
    """Check already-decoded source. Parse errors come back as a DL001 finding.

    ``noqa=False`` leaves ``# noqa`` comments to the caller (flake8 applies its own).
    """
    try:
        module = parse(text)
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    facts = ModuleFacts(path, text, module)
    findings: list[Finding] = []
    for rule in rules:
        if not rule.applies_to(text):
            continue
        try:
            findings.extend(rule(facts).check())
        except Exception as exc:  # a bug in one rule must not hide the others
            reason = f"{type(exc).__name__}: {exc}".strip()
            findings.append(
                _error(
                    INTERNAL_ERROR,
                    path,
                    f"rule {rule.code} [{rule.name}] failed on this file ({reason}); "
                    f"its findings here are missing, other rules ran. Please report this.",
                )
            )
            if report is not None:
                report.tracebacks.append(traceback.format_exc())
    if noqa:
        table = suppressions(text)
        findings = [f for f in findings if not is_suppressed(f.code, f.line, table)]
    return sorted(set(findings), key=Finding.sort_key)


def read_source(path: str) -> str:
    """Read and decode a file; every way this can fail becomes a ParseFailure."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ParseFailure("file not found (a broken symlink, or removed while checking)") from None
    except IsADirectoryError:
        raise ParseFailure("is a directory") from None
    except OSError as exc:
        raise ParseFailure(f"cannot read the file: {exc.strerror or exc}") from None
    return decode(data)


def check_file(
    path: str, rules: Iterable[type[Rule]], report: Report | None = None
) -> list[Finding]:
    if path.endswith(".ipynb"):
        from dllint.notebook import check_notebook

        return check_notebook(path, rules, report)
    try:
        text = read_source(path)
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    return check_text(text, path, rules, report)


def check_paths(
    paths: list[str],
    rules: Iterable[type[Rule]],
    exclude: tuple[str, ...] | Excluder = DEFAULT_EXCLUDES,
    settings: Settings | None = None,
) -> Report:
    """Check every source file under ``paths``.

    With ``settings`` (from ``dllint.config``), its exclude patterns replace
    ``exclude``, files named explicitly are dropped when the user's own patterns
    exclude them, per-file-ignores apply, and engine findings (DL001, DL002) are kept
    only when enabled.
    """
    rules = list(rules)
    report = Report()
    if settings is not None:
        exclude = settings.exclude or ()
        paths = [p for p in paths if os.path.isdir(p) or not settings.is_user_excluded(p)]
    for path in iter_source_files(paths, exclude):
        report.files += 1
        if settings is None:
            report.findings.extend(check_file(path, rules, report))
            continue
        ignored = settings.ignored_in(path)
        here = [rule for rule in rules if not matches(rule.code, ignored)]
        report.findings.extend(
            f
            for f in check_file(path, here, report)
            if settings.enabled(f.code) and not matches(f.code, ignored)
        )
    report.findings.sort(key=Finding.sort_key)
    return report
