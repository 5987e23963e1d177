"""Turn a file's bytes into a libcst module, or into the reason it cannot be checked."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

import libcst as cst


@dataclass
class ParseFailure(Exception):
    """Why a file cannot be checked, with the position the parser gave (1-based)."""

    message: str
    line: int = 1
    column: int = 1


def decode(data: bytes) -> str:
    """Decode source bytes as Python does: BOM, then a PEP 263 coding line, then UTF-8.

    Line endings are normalised to ``\\n`` (CRLF and lone CR both count as one line
    break, as in Python), so reported line numbers match what an editor shows.
    """
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ParseFailure("source contains a NUL byte; is this a binary file?", line, 1)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        if "unknown encoding" in str(exc):
            raise ParseFailure(f"bad coding declaration: {exc}", 1, 1) from None
        encoding = "utf-8"  # undecodable first lines: let the decode below say where
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        line = 1
        if isinstance(exc, UnicodeDecodeError):
            line = data[: exc.start].count(b"\n") + 1
        raise ParseFailure(f"cannot decode the file as {encoding}: {exc}", line, 1) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _python_syntax_error(text: str) -> ParseFailure | None:
    """CPython's own message and position for a syntax error (clearer than libcst's).

    Only compiles to an AST: nothing is imported or run.
    """
    try:
        ast.parse(text)
    except SyntaxError as exc:
        return ParseFailure(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1)
    except (RecursionError, MemoryError, ValueError):
        return None
    return None


def parse(text: str) -> cst.Module:
    """Parse with libcst; every parser failure becomes a ParseFailure."""
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        python_error = _python_syntax_error(text)
        if python_error is not None:
            raise python_error from None
        message = str(exc.message).strip() or "invalid syntax"
        line, column = exc.raw_line, exc.raw_column + 1
        where = re.search(r"error at (\d+):(\d+):\s*", message)
        if where:
            line, column = int(where.group(1)), int(where.group(2)) + 1
            message = message[where.end() :]
        message = message.removeprefix("parser error: ")
        raise ParseFailure(f"syntax error: {message}", line, column) from None
    except RecursionError:
        raise ParseFailure("code is nested too deeply to parse") from None
    except Exception as exc:  # libcst's native parser raises a few other types
        raise ParseFailure(f"cannot parse: {type(exc).__name__}: {exc}") from None
