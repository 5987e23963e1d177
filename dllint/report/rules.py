"""What reporters say about a code: its name, summary, severity and docs page."""

from __future__ import annotations

DOCS_BASE_URL = "https://github.com/dllint/dllint/blob/main/docs/rules/"


def docs_url(code: str) -> str:
    return f"{DOCS_BASE_URL}{code}.md"


def describe(code: str) -> tuple[str, str, str]:
    """(name, summary, severity) of a rule or engine code; placeholders if unknown."""
    from dllint.engine import ENGINE_CODES, ENGINE_OFF_BY_DEFAULT
    from dllint.registry import rule_by_code

    for engine_code, name, summary in ENGINE_CODES:
        if engine_code == code:
            return name, summary, "warning" if code in ENGINE_OFF_BY_DEFAULT else "error"
    rule = rule_by_code(code)
    if rule is None:
        from dllint.runtime.codes import runtime_code

        runtime = runtime_code(code)  # DL601-DL603, from `dllint trace`
        if runtime is not None:
            return runtime.name, runtime.summary, runtime.severity
        return code.lower(), code, "warning"
    return rule.name, rule.summary, rule.severity
