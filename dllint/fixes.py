"""Autofixes: rules attach node replacements; this module applies them to a file.

A rule offers a fix only where the meaning is certain. The fix replaces CST nodes
(libcst keeps every comment and space outside the replaced nodes), and all fixes of
one file are applied in a single transform. Two fixes that touch overlapping code
cannot both apply: the later one waits for the next run (``--fix`` loops until
nothing changes). The file is written back with its own encoding, BOM and line
endings, through a temporary file renamed over it.

Fixes are *safe* (``--fix`` applies them: the result is certainly what the author
meant) or *unsafe* (shown; applied only with ``--unsafe-fixes``), as in ruff. A rule
says which; the engine then applies the safe ones and checks the result again
(``dllint.engine``): a fix after which the file reports a finding it did not report
before is never safe, whatever the rule said. Fixing whole files, which checks
them, is ``dllint.autofix``; this module checks nothing itself.
"""

from __future__ import annotations

import codecs
import difflib
import io
import os
import re
import stat
import tempfile
import tokenize
from dataclasses import dataclass

import libcst as cst

from dllint.analysis.tree import TreeIndex

SAFE, UNSAFE = "safe", "unsafe"


@dataclass(frozen=True)
class Fix:
    """What to change: each edit replaces ``old`` (a node of the parsed module) by
    ``new`` (a node, or ``cst.RemoveFromParent()`` for a statement)."""

    description: str
    edits: tuple[tuple[cst.CSTNode, cst.CSTNode | cst.RemovalSentinel], ...]
    module: cst.Module | None = None  # the parse the edited nodes belong to
    safe: bool = True  # False: applied only with ``--unsafe-fixes``

    @property
    def safety(self) -> str:
        return SAFE if self.safe else UNSAFE


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
    """How a file was stored, so a fixed file is written back the same way: its
    encoding, BOM, and line endings (each line's own, when they are mixed)."""

    encoding: str
    bom: bool
    newline: str  # the most common ending: for lines a fix adds or changes
    endings: tuple[str, ...] = ()  # each line's ending, when the file mixes them

    @classmethod
    def of(cls, data: bytes) -> SourceStyle:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError:
            encoding = "utf-8"
        bom = data.startswith(codecs.BOM_UTF8)
        if encoding == "utf-8-sig":
            encoding, bom = "utf-8", True
        found = re.findall(rb"\r\n|\r|\n", data)
        kinds = {ending: found.count(ending) for ending in set(found)}
        newline = "\n"
        if kinds:
            first = found[0]
            newline = max(kinds, key=lambda e: (kinds[e], e == first)).decode("ascii")
        endings = tuple(e.decode("ascii") for e in found) if len(kinds) > 1 else ()
        return cls(encoding, bom, newline, endings)

    def encode(self, text: str, before: str | None = None) -> bytes:
        """``text`` (``\\n`` line breaks) as the file stores it. With ``before`` (the
        text the file held), lines a fix left alone keep their own ending in a file
        of mixed endings."""
        if self.endings and before is not None:
            text = self._mixed(before, text)
        elif self.newline != "\n":
            text = text.replace("\n", self.newline)
        data = text.encode(self.encoding)
        return codecs.BOM_UTF8 + data if self.bom else data

    def _mixed(self, before: str, after: str) -> str:
        old, new = before.split("\n"), after.split("\n")
        endings: list[str] = []
        matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                endings.extend(
                    self.endings[i] if i < len(self.endings) else self.newline
                    for i in range(i1, i2)
                )
            else:
                endings.extend([self.newline] * (j2 - j1))
        endings[-1] = ""  # what follows the last line break
        return "".join(line + ending for line, ending in zip(new, endings, strict=True))


def _diff_name(path: str) -> str:
    """The path a diff names: relative to the working folder, normalised, with ``/``
    (``./sub/p.py``, ``sub/../sub/p.py`` and the absolute path all give ``sub/p.py``),
    so ``git apply`` and ``patch -p1`` run there accept it."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive
        relative = absolute
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        relative = os.path.normpath(path)  # outside the working folder: as given
    return relative.replace(os.sep, "/")


NO_NEWLINE = b"\\ No newline at end of file\n"


def _byte_lines(data: bytes) -> list[bytes]:
    """Lines as ``git`` and ``patch`` count them: ended by ``\\n`` only (a form feed or
    a lone ``\\r`` is part of its line)."""
    return [line for line in re.split(rb"(?<=\n)", data) if line]


def unified_diff(path: str, before: str | bytes, after: str | bytes) -> str:
    """A unified diff that ``git apply`` and ``patch -p1`` accept: computed on the
    bytes as stored (encoding and line endings kept), ``\\ No newline at end of file``
    where a side ends without one. Bytes that are not UTF-8 come back as surrogate
    escapes (``dllint.cli`` writes them out as they were)."""
    if isinstance(before, str):
        before = before.encode("utf-8", "surrogateescape")
    if isinstance(after, str):
        after = after.encode("utf-8", "surrogateescape")
    name = _diff_name(path).encode("utf-8", "surrogateescape")
    out = []
    for line in difflib.diff_bytes(
        difflib.unified_diff,
        _byte_lines(before),
        _byte_lines(after),
        fromfile=b"a/" + name,
        tofile=b"b/" + name,
    ):
        out.append(line)
        if not line.endswith(b"\n"):
            out.append(b"\n" + NO_NEWLINE)
    return b"".join(out).decode("utf-8", "surrogateescape")


def applicable(finding, unsafe: bool = False) -> bool:
    """The finding carries a fix that this run applies (safe ones; unsafe ones too
    with ``unsafe``)."""
    edit = finding.edit
    return edit is not None and (unsafe or edit.safe)


def new_codes(before, after) -> set[str]:
    """Codes reported more often after a change than before it (lines move, so
    findings are counted per code)."""
    from collections import Counter

    grown = Counter(f.code for f in after)
    grown.subtract(Counter(f.code for f in before))
    return {code for code, count in grown.items() if count > 0}


def demoted(finding):
    from dataclasses import replace

    edit = replace(finding.edit, safe=False)
    return replace(finding, edit=edit, fix_safety=UNSAFE)


def module_of(findings) -> cst.Module:
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
    data: bytes | None = None  # the file's bytes as read

    @property
    def changed(self) -> bool:
        return self.after != self.before

    def encoded(self) -> bytes:
        """The fixed file's bytes: its encoding, BOM and each untouched line's ending."""
        return self.style.encode(self.after, self.before)

    def diff(self) -> str:
        before = self.data if self.data is not None else self.style.encode(self.before)
        return unified_diff(self.path, before, self.encoded())

    def write(self) -> None:
        """Write the fixed text back with the file's own encoding, BOM and newlines
        (raises OSError; the file then keeps its old content)."""
        write_atomically(self.path, self.encoded())


def write_atomically(path: str, data: bytes) -> None:
    """Replace the file's content with ``data`` all at once: a temporary file beside
    it, flushed to disk, given the file's mode bits and renamed over it. A full disk
    or a crash leaves the old file whole. A symlink is followed (its target is
    rewritten, the link stays) and a file its user may not write is refused, as
    ``open(path, "w")`` would."""
    target = os.path.realpath(path)
    if not os.access(target, os.W_OK):
        raise PermissionError(13, "Permission denied", path)
    mode = stat.S_IMODE(os.stat(target).st_mode)
    folder, name = os.path.split(target)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".dllint", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
