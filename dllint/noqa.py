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
