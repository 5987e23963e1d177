"""Autofixes: rules attach node replacements; this module applies them to a file.

A rule offers a fix only where the meaning is certain. The fix replaces CST nodes
(libcst keeps every comment and space outside the replaced nodes), and all fixes of
one file are applied in a single transform. Two fixes that touch overlapping code
cannot both apply: the later one waits for the next run (``--fix`` loops until
nothing changes). The file is written back with its own encoding, BOM and line
endings.
"""

from __future__ import annotations

import codecs
import difflib
import io
import tokenize
from dataclasses import dataclass

import libcst as cst

from dllint.analysis.tree import TreeIndex


@dataclass(frozen=True)
class Fix:
    """What to change: each edit replaces ``old`` (a node of the parsed module) by
    ``new`` (a node, or ``cst.RemoveFromParent()`` for a statement)."""

    description: str
    edits: tuple[tuple[cst.CSTNode, cst.CSTNode | cst.RemovalSentinel], ...]
    module: cst.Module | None = None  # the parse the edited nodes belong to


class _Replace(cst.CSTTransformer):
    def __init__(self, mapping: dict[cst.CSTNode, cst.CSTNode | cst.RemovalSentinel]) -> None:
        self.mapping = mapping

    def on_leave(self, original_node, updated_node):
        return self.mapping.get(original_node, updated_node)


def apply(module: cst.Module, fixes: list[Fix]) -> tuple[str, int]:
    """The module's code with every non-overlapping fix applied, and how many applied."""
    tree = TreeIndex(module)
    taken: list[tuple[int, int]] = []
    mapping: dict[cst.CSTNode, cst.CSTNode | cst.RemovalSentinel] = {}
    applied = 0
    for fix in fixes:
        spans = [(tree.order[old], tree.last[old]) for old, _ in fix.edits if old in tree.order]
        if len(spans) != len(fix.edits):
            continue
        if any(a <= d and c <= b for a, b in spans for c, d in taken):
            continue
        taken.extend(spans)
        mapping.update(fix.edits)
        applied += 1
    if not mapping:
        return module.code, 0
    return module.visit(_Replace(mapping)).code, applied


@dataclass(frozen=True)
class SourceStyle:
    """How a file was stored, so a fixed file is written back the same way."""

    encoding: str
    bom: bool
    newline: str

    @classmethod
    def of(cls, data: bytes) -> SourceStyle:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError:
            encoding = "utf-8"
        bom = data.startswith(codecs.BOM_UTF8)
        if encoding == "utf-8-sig":
            encoding, bom = "utf-8", True
        newline = "\n"
        first = data.find(b"\n")
        if first > 0 and data[first - 1 : first] == b"\r":
            newline = "\r\n"
        elif first < 0 and b"\r" in data:
            newline = "\r"
        return cls(encoding, bom, newline)

    def encode(self, text: str) -> bytes:
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        data = text.encode(self.encoding)
        return codecs.BOM_UTF8 + data if self.bom else data


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    )


MAX_PASSES = 5


def fix_text(text: str, path: str, rules) -> tuple[str, int]:
    """Apply every available fix, re-checking until none applies (at most a few passes).

    Returns the fixed text and the number of fixes applied. Fixes that would leave
    code that does not parse are dropped.
    """
    from dllint.engine import check_text
    from dllint.source import ParseFailure, parse

    total = 0
    for _ in range(MAX_PASSES):
        findings = [f for f in check_text(text, path, rules, exact=True) if f.edit is not None]
        if not findings:
            break
        try:
            module = _module_of(findings)
        except LookupError:
            break
        fixed, applied = apply(module, [f.edit for f in findings])
        if not applied or fixed == text:
            break
        try:
            parse(fixed)
        except ParseFailure:
            break
        text, total = fixed, total + applied
    return text, total


def _module_of(findings) -> cst.Module:
    """The parsed module the findings' edits point into (they share one parse)."""
    for finding in findings:
        module = getattr(finding.edit, "module", None)
        if module is not None:
            return module
    raise LookupError("fix without its module")


@dataclass(frozen=True)
class FileFix:
    """The outcome of fixing one file: its text before and after, and how many fixes."""

    path: str
    before: str
    after: str
    applied: int
    style: SourceStyle

    @property
    def changed(self) -> bool:
        return self.after != self.before

    def diff(self) -> str:
        return unified_diff(self.path, self.before, self.after)

    def write(self) -> None:
        """Write the fixed text back with the file's own encoding, BOM and newlines."""
        with open(self.path, "wb") as handle:
            handle.write(self.style.encode(self.after))


def fix_file(path: str, rules) -> FileFix | None:
    """Fix one Python file with ``rules`` (classes); None when it cannot be read or
    decoded (the check has reported that already). Notebooks are not rewritten."""
    from dllint.source import ParseFailure, decode

    if path.endswith(".ipynb"):
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        before = decode(data)
    except (OSError, ParseFailure):
        return None
    after, applied = fix_text(before, path, rules)
    return FileFix(path, before, after, applied, SourceStyle.of(data))
