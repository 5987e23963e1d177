"""``dllint check -``: one source read from standard input, checked as the file it
names (``--stdin-filename``), with that file's configuration and per-file-ignores.
Nothing is read from or written to the disk but the configuration."""

from __future__ import annotations

from dataclasses import replace

from dllint.engine import PARSE_ERROR, Report, _error, _reportable, _rule_classes, check_text
from dllint.finding import Finding


def selected_rules(path: str, catalog, settings) -> tuple[frozenset[str], list]:
    """(the codes ``path`` may report under ``settings``, the rule classes to run):
    the selection less the per-file-ignores of ``path``, as ``dllint check`` does."""
    rules = [rule for rule in catalog if settings.enabled(rule.code)]
    codes = _reportable(path, rules, settings)
    classes = _rule_classes(rules)
    return codes, [classes[code] for code in sorted(codes) if code in classes]


def check_stdin(
    data: bytes, path: str, catalog, settings
) -> tuple[list[Finding], list[str], str | None]:
    """(findings, tracebacks, the decoded text or None for a notebook or bytes that
    do not decode)."""
    from dllint.source import ParseFailure, decode

    if path != "-" and settings.is_user_excluded(path):
        return [], [], None  # as a file named on the command line but excluded
    codes, chosen = selected_rules(path, catalog, settings)
    report = Report()
    text: str | None = None
    try:
        text = decode(data)
    except ParseFailure as failure:
        findings = [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    else:
        if path.endswith(".ipynb"):
            from dllint.engine import check_notebook_text

            findings = check_notebook_text(text, path, chosen, report)
            findings = [replace(f, fix=None, edit=None) for f in findings]
            text = None  # notebooks are not rewritten
        else:
            findings = check_text(text, path, chosen, report)
    findings = sorted((f for f in findings if f.code in codes), key=Finding.sort_key)
    return findings, report.tracebacks, text


def fix_stdin(
    text: str, path: str, findings: list[Finding], unsafe: bool = False
) -> tuple[str, int]:
    """The source with the fixes of ``findings``' rules applied (the safe ones; all
    with ``unsafe``), and how many applied."""
    from dllint.autofix import fix_text
    from dllint.registry import rule_by_code

    codes = sorted({f.code for f in findings if f.fixable(unsafe)})
    rules = [rule for rule in map(rule_by_code, codes) if rule is not None]
    if not rules:
        return text, 0
    return fix_text(text, path, rules, unsafe)
