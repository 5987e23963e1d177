"""Turn a file's bytes into a libcst module, or into the reason it cannot be checked."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import Counter
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


# libcst's native parser recurses once per level of nesting: past a few thousand
# levels it overflows the C stack and kills the process, and long before that its
# time grows with the square of the depth. CPython's parser refuses such code with a
# clean error, so it looks first (about a sixth of libcst's time), and a statement
# nested deeper than MAX_DEPTH syntax-tree levels is skipped (real code stays under 50;
# at 300 the slowest shapes, long ternary chains, take seconds to check).
MAX_DEPTH = 300
NESTING_MESSAGES = ("too many nested parentheses", "too many levels of indentation", "too complex")


def _too_deep(
    text: str, line: int | None = None, column: int = 1, reason: str = ""
) -> ParseFailure:
    if line is None:  # CPython gave no position: the longest line is the likely culprit
        lengths = [len(part) for part in text.split("\n")]
        line = lengths.index(max(lengths)) + 1
    reason = reason or "past the parser's limits"
    return ParseFailure(
        f"code is nested too deeply to parse ({reason}); the file was skipped", line, column
    )


def _statements(tree: ast.AST):
    """Every statement, nested ones included, without visiting expressions."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                stack.extend(children)
        if isinstance(node, ast.stmt):
            yield node


def _deepest(statement: ast.stmt) -> tuple[int, ast.AST]:
    """The deepest nesting of a statement's own expressions (not its body's)."""
    best, where = 0, statement
    stack = [(child, 1) for child in ast.iter_child_nodes(statement) if not _is_body(child)]
    while stack:
        node, depth = stack.pop()
        if depth > best:
            best, where = depth, node
        elements = _elements(node)
        if elements is None:
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
            continue
        # a display (a data table): its constants and its context are leaves one level
        # down, pushed as one, not one by one (millions of numbers in a data file)
        if depth + 1 > best:
            best, where = depth + 1, node
        stack.extend((child, depth + 1) for child in elements if type(child) is not ast.Constant)
    return best, where


def _elements(node: ast.AST) -> list | None:
    """The element nodes of a list, tuple, set or dict display; None for other nodes."""
    kind = type(node)
    if kind is ast.List or kind is ast.Tuple or kind is ast.Set:
        return node.elts
    if kind is ast.Dict:
        return [key for key in node.keys if key is not None] + node.values
    return None


def _is_body(node: ast.AST) -> bool:
    return isinstance(node, (ast.stmt, ast.ExceptHandler)) or type(node).__name__ == "match_case"


def _start(node: ast.AST) -> tuple[int, int]:
    """Where a statement, handler or ``case`` starts (a ``match_case`` has no position
    of its own: its pattern's, just after ``case``, bounds it)."""
    if not hasattr(node, "lineno"):
        node = node.pattern
    return node.lineno, node.col_offset


def check_depth(tree: ast.Module, text: str) -> None:
    """Raise when a statement nests deeper than MAX_DEPTH.

    Each level of nesting takes at least one character, so only statements whose own
    source (up to their first nested statement) is longer than MAX_DEPTH are walked.
    """
    starts = [0]
    for part in text.split("\n"):
        starts.append(starts[-1] + len(part) + 1)

    def offset(line: int, column: int) -> int:
        return starts[min(line, len(starts)) - 1] + column

    for statement in _statements(tree):
        end = (statement.end_lineno or statement.lineno, statement.end_col_offset or 0)
        body = [getattr(statement, name, None) for name in ("body", "handlers", "cases")]
        firsts = [part[0] for part in body if isinstance(part, list) and part]
        if firsts:
            end = min(_start(first) for first in firsts)
        if offset(*end) - offset(statement.lineno, statement.col_offset) <= MAX_DEPTH:
            continue
        depth, node = _deepest(statement)
        if depth > MAX_DEPTH:
            line = getattr(node, "lineno", statement.lineno)
            column = getattr(node, "col_offset", statement.col_offset) + 1
            raise _too_deep(
                text, line, column, f"{depth} levels in one statement, over {MAX_DEPTH}"
            )


def _bracket_depth(text: str) -> int:
    """The deepest bracket nesting, strings and comments not told apart (a rough
    bound, for files CPython refused before reading them through)."""
    depth = best = 0
    for match in re.finditer(r"[\[\](){}]", text):
        if match.group() in "([{":
            depth += 1
            best = max(best, depth)
        else:
            depth = max(0, depth - 1)
    return best


def _python_check(text: str) -> tuple[ParseFailure | None, ast.Module | None]:
    """CPython's verdict before libcst sees the text: a ParseFailure for a syntax
    error (CPython's message and position, clearer than libcst's), None when it
    parses. Nesting past the parsers' limits raises the failure at once.

    Only compiles to an AST: nothing is imported or run.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        failure = ParseFailure(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1)
        if any(words in str(exc.msg) for words in NESTING_MESSAGES):
            raise _too_deep(text, exc.lineno or None, exc.offset or 1, exc.msg) from None
        if _bracket_depth(text) > 200:  # CPython stopped early; libcst would go on
            raise _too_deep(text, reason="over 200 nested brackets") from None
        return failure, None
    except (RecursionError, MemoryError):
        raise _too_deep(text) from None
    except ValueError:  # e.g. a NUL byte, which decode() already refuses
        return None, None
    check_depth(tree, text)
    return None, tree


def parse(text: str) -> cst.Module:
    """Parse with libcst; every parser failure becomes a ParseFailure."""
    return parse_for_check(text, slim=False)[0]


SLIM_FROM_LINES = 5_000
SLIM_FROM_CHARS = 256_000  # or this much text, however few its lines
BIG_LITERAL_CHARS = 20_000  # a literal this long is not parsed even where its name is used
UNKNOWN_VALUE = "__dllint_literal__()"  # what stands for it: a value nothing knows


def parse_for_check(text: str, slim: bool = True) -> tuple[cst.Module, str]:
    """Parse for checking: the module and the text it was parsed from.

    libcst parses about ten times slower than CPython and holds a node per number
    of a literal. In a file of over ``SLIM_FROM_LINES`` lines or ``SLIM_FROM_CHARS``
    characters (generated tables, dumped constants, a 1 MB list on one line), a
    top-level ``NAME = <literal>`` alone on its lines whose name occurs nowhere else
    in the file cannot matter to any rule, so with ``slim`` its lines are left blank
    before libcst sees them; one over ``BIG_LITERAL_CHARS`` whose name is used gets
    a value no rule knows (``UNKNOWN_VALUE``) instead. Line and column numbers stay
    the same. Fixing must not slim (the fixed file is written from the module).
    """
    python_error, tree = _python_check(text)  # raises for code nested too deeply
    big = len(text) >= SLIM_FROM_CHARS or text.count("\n") >= SLIM_FROM_LINES
    if slim and tree is not None and big:
        text = _without_dead_constants(text, tree)
    if slim and tree is not None and STATEMENT_CACHE is not None:
        try:  # the same module, reusing the statements an editor did not change
            return STATEMENT_CACHE.parse(text, tree), text
        except Exception:  # a chunk libcst refuses: the whole parse says why
            pass
    return _libcst_parse(text, python_error), text


# ``dllint server`` keeps the parses of recent top-level statements here
# (``dllint.incremental.StatementCache``); None: every check parses the whole text.
STATEMENT_CACHE = None


def _without_dead_constants(text: str, tree: ast.Module) -> str:
    counts = Counter(re.findall(r"[A-Za-z_]\w*", text))
    lines = text.split("\n")
    body = tree.body
    changed = 0
    for index, statement in enumerate(body):
        if not (
            isinstance(statement, ast.Assign)
            and all(isinstance(t, ast.Name) for t in statement.targets)
            and _literal(statement.value)
        ):
            continue
        alone = (index == 0 or body[index - 1].end_lineno < statement.lineno) and (
            index + 1 == len(body) or body[index + 1].lineno > statement.end_lineno
        )
        if not alone:
            continue
        first, last = statement.lineno - 1, statement.end_lineno
        if all(counts[t.id] == 1 for t in statement.targets):
            lines[first:last] = [""] * (last - first)
            changed += 1
        elif (
            statement.value.lineno == statement.lineno
            and sum(len(line) + 1 for line in lines[first:last]) >= BIG_LITERAL_CHARS
        ):  # keep ``NAME = `` (its offset counts UTF-8 bytes), drop the literal
            head = lines[first].encode("utf-8")[: statement.value.col_offset]
            lines[first] = head.decode("utf-8", "ignore") + UNKNOWN_VALUE
            lines[first + 1 : last] = [""] * (last - first - 1)
            changed += 1
    return "\n".join(lines) if changed else text


def _literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _literal(node.operand)
    if isinstance(node, ast.BinOp):
        return _literal(node.left) and _literal(node.right)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_literal(element) for element in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _literal(k) for k in node.keys) and all(
            _literal(v) for v in node.values
        )
    return False


def _libcst_parse(text: str, python_error: ParseFailure | None) -> cst.Module:
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
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
