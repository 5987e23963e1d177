"""``# noqa`` and ``# noqa: DL401, DL301`` comments, read the way flake8 reads them."""

from __future__ import annotations

import io
import re
import tokenize

NOQA = re.compile(
    r"#\s*noqa(?::[\s]?(?P<codes>[A-Z][0-9A-Z]*(?:[,\s]+[A-Z][0-9A-Z]*)*))?",
    re.IGNORECASE,
)
ALL = frozenset({"*"})


def _comments(text: str):
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string
    except (tokenize.TokenError, SyntaxError, IndentationError):
        for number, line in enumerate(text.splitlines(), start=1):
            if "#" in line:
                yield number, line[line.index("#") :]


def suppressions(text: str) -> dict[int, frozenset[str]]:
    """Map line number -> codes suppressed there (``{"*"}`` for a bare ``# noqa``)."""
    found: dict[int, frozenset[str]] = {}
    if NOQA.search(text) is None:  # most files: no need to tokenize them
        return found
    for line, comment in _comments(text):
        match = NOQA.search(comment)
        if not match:
            continue
        codes = match.group("codes")
        if codes:
            found[line] = frozenset(code.upper() for code in re.split(r"[,\s]+", codes) if code)
        else:
            found[line] = ALL
    return found


def is_suppressed(code: str, line: int, table: dict[int, frozenset[str]]) -> bool:
    codes = table.get(line)
    if codes is None:
        return False
    return codes is ALL or "*" in codes or any(code.startswith(c) for c in codes)


UNUSED_NOQA = ("DL003", "unused-noqa")


def _noqa_columns(text: str) -> dict[int, tuple[int, str]]:
    """Line -> (1-based column of the ``# noqa`` comment, the directive as written)."""
    found: dict[int, tuple[int, str]] = {}
    lines = text.split("\n")
    for line, comment in _comments(text):
        match = NOQA.search(comment)
        if match and 1 <= line <= len(lines):
            start = lines[line - 1].rfind(comment)
            column = (start if start >= 0 else 0) + match.start() + 1
            found[line] = (column, match.group(0).strip())
    return found


def unused(text: str, path: str, findings, ran: frozenset[str]) -> list:
    """DL003: each ``# noqa: DLxxx`` code that silences nothing on its line.

    ``findings`` are the file's findings before suppression. A code is judged only
    when its rule ran on the file (``ran``): a code of a rule the configuration
    switched off, a prefix (``DL4``), another tool's code (``E501``) or one unknown to
    dllint is left alone, and so is a bare ``# noqa`` (flake8 and others read it too).
    """
    from dllint.finding import Finding

    table = suppressions(text)
    if not table:
        return []
    fired: dict[int, set[str]] = {}
    for finding in findings:
        fired.setdefault(finding.line, set()).add(finding.code)
    places = _noqa_columns(text)
    code, name = UNUSED_NOQA
    out = []
    for line, codes in sorted(table.items()):
        if codes is ALL or "*" in codes:
            continue
        silent = []
        for pattern in sorted(codes):
            if pattern not in ran or pattern == code:  # a prefix, another tool's, or off
                continue
            if pattern not in fired.get(line, ()):
                silent.append(pattern)
        if not silent:
            continue
        column, directive = places.get(line, (1, "# noqa"))
        which = ", ".join(silent)
        verb = "does" if len(silent) == 1 else "do"
        remedy = "remove the comment" if len(silent) == len(codes) else f"remove {which} from it"
        message = (
            f"`{directive}` silences nothing here: {which} {verb} not fire on this line; {remedy}"
        )
        end = column + len(directive)
        out.append(Finding(path, line, column, code, name, message, line, end, "warning"))
    return out


class UnusedNoqa:
    """DL003 in a rule list: it finds nothing itself; the engine's ``# noqa`` step
    reports the directives that silenced nothing (``apply``)."""

    code, name = UNUSED_NOQA
    summary = "a `# noqa: DLxxx` comment silences nothing on its line"
    severity = "warning"
    default_enabled = False
    fixable = False
    needs = ()

    def __init__(self, facts) -> None:
        self.facts = facts

    def check(self) -> list:
        return []

    @classmethod
    def applies_to(cls, text: str) -> bool:
        return NOQA.search(text) is not None


def apply(text: str, path: str, findings: list, ran: frozenset[str]) -> list:
    """The findings no ``# noqa`` silences, plus DL003 when it ran and no rule failed
    on the file (a failed rule's directives would look unused)."""
    extra: list = []
    if UNUSED_NOQA[0] in ran and not any(f.code == "DL002" for f in findings):
        extra = unused(text, path, findings, ran)
    if not findings and not extra:
        return findings
    table = suppressions(text)
    return [f for f in (*findings, *extra) if not is_suppressed(f.code, f.line, table)]
