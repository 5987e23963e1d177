"""Files -> parsed modules -> rules -> findings, with ``# noqa`` applied.

A file that cannot be read or parsed becomes a ``DL001`` finding and the run goes
on; a rule that raises becomes ``DL002`` and the other rules' findings stand.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field

from dllint.analysis import ModuleFacts
from dllint.discovery import DEFAULT_EXCLUDES, iter_source_files
from dllint.finding import Finding
from dllint.noqa import is_suppressed, suppressions
from dllint.rule import Rule
from dllint.source import ParseFailure, decode, parse

PARSE_ERROR = ("DL001", "parse-error")
INTERNAL_ERROR = ("DL002", "internal-error")


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    tracebacks: list[str] = field(default_factory=list)


def _error(code_name, path, message, line=1, column=1) -> Finding:
    code, name = code_name
    return Finding(path, line, column, code, name, message, line, column)


def check_text(
    text: str, path: str, rules: Iterable[type[Rule]], report: Report | None = None
) -> list[Finding]:
    """Check already-decoded source. Parse errors come back as a DL001 finding."""
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
    noqa = suppressions(text)
    kept = [f for f in findings if not is_suppressed(f.code, f.line, noqa)]
    return sorted(set(kept), key=Finding.sort_key)


def read_source(path: str) -> str:
    """Read and decode a file; every way this can fail becomes a ParseFailure."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ParseFailure("file not found (a broken symlink, or removed while checking)")
    except IsADirectoryError:
        raise ParseFailure("is a directory")
    except OSError as exc:
        raise ParseFailure(f"cannot read the file: {exc.strerror or exc}")
    return decode(data)


def check_file(path: str, rules: Iterable[type[Rule]], report: Report | None = None) -> list[Finding]:
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
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES,
) -> Report:
    rules = list(rules)
    report = Report()
    for path in iter_source_files(paths, exclude):
        report.files += 1
        report.findings.extend(check_file(path, rules, report))
    report.findings.sort(key=Finding.sort_key)
    return report
