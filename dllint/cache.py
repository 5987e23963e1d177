"""Findings remembered between runs, so a re-run only analyses the files that changed.

An entry holds one file's findings, keyed by a hash of the file's bytes, its path,
the codes it may report (the effective configuration for that file) and the
dllint *build*: the version plus the size and modification time of every dllint
source file, so editing a rule (or upgrading) never serves stale findings.

Entries live in ``.dllint_cache/`` at the project root (the folder of the
``pyproject.toml`` that configures dllint, else the working folder), which holds a
``.gitignore`` of ``*`` as ruff's cache does. ``DLLINT_CACHE_DIR`` moves it.
Writes go to a temporary file that is renamed into place, so concurrent runs never
read half an entry; an entry that cannot be read or decoded is ignored and
rewritten.

The rule catalog (codes and defaults of the installed rules) is cached
the same way, per user, so a run whose files all come from the cache never imports
libcst or the rules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from pathlib import Path

from dllint import __version__
from dllint.finding import Finding

FOLDER = ".dllint_cache"
FORMAT = 1  # bump when the entry layout changes
GITIGNORE = "# Automatically created by dllint.\n*\n"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by dllint.\n"
)


def build_fingerprint() -> str:
    """The dllint version plus the size and mtime of each of its source files."""
    parts = [f"{FORMAT}", __version__, f"{sys.version_info[0]}.{sys.version_info[1]}"]
    for folder in _source_folders():
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    try:
                        stat = os.stat(path)
                    except OSError:  # removed while we looked: it is not part of the build
                        continue
                    parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _source_folders() -> list[str]:
    """The dllint package and its rules (a separate folder in an editable install)."""
    folders = [os.path.dirname(os.path.abspath(__file__))]
    spec = importlib.util.find_spec("dllint.rules")  # locates it without importing it
    for location in (spec.submodule_search_locations or []) if spec else []:
        location = os.path.abspath(location)
        if not location.startswith(folders[0] + os.sep):
            folders.append(location)
    return folders


def user_cache_dir() -> Path:
    """Where per-user facts go: ``$DLLINT_CACHE_DIR``, else ``~/.cache/dllint``."""
    override = os.environ.get("DLLINT_CACHE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dllint"


def project_cache_dir(root: Path) -> Path:
    """``<root>/.dllint_cache``, or ``$DLLINT_CACHE_DIR`` when set."""
    override = os.environ.get("DLLINT_CACHE_DIR")
    return Path(override) if override else Path(root) / FOLDER


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a renamed temporary file, so a concurrent
    reader sees the old entry or the new one. Errors are ignored: a cache that
    cannot be written only costs time."""
    import tempfile  # here: a run served from the cache writes nothing

    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)


class Cache:
    """Findings per file, in one cache folder, for one dllint build."""

    def __init__(self, folder: Path, fingerprint: str | None = None) -> None:
        self.root = Path(folder)
        self.folder = self.root / (fingerprint or build_fingerprint())
        self._prepared = False

    def key(self, path: str, codes: Iterable[str], data: bytes) -> str:
        """The entry name for ``path`` with these bytes, reporting these codes."""
        digest = hashlib.sha256()
        digest.update(f"{path}\0{','.join(sorted(codes))}\0".encode("utf-8", "surrogateescape"))
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str) -> list[Finding] | None:
        """The findings stored under ``key``; None when absent, unreadable or not
        exactly what ``put`` writes (an entry edited, truncated or from another
        build is dropped, never served)."""
        try:
            with open(self.folder / f"{key}.json", encoding="utf-8") as handle:
                entries = json.load(handle)
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(entries, list):
            return None
        findings = []
        for entry in entries:
            finding = _finding_of(entry)
            if finding is None:
                return None
            findings.append(finding)
        return findings

    def put(self, key: str, findings: Iterable[Finding]) -> None:
        self._prepare()
        entries = [finding.to_json() for finding in findings]
        _write_atomically(self.folder / f"{key}.json", json.dumps(entries))

    def _prepare(self) -> None:
        """Create the folder once, with a ``.gitignore`` of ``*`` and a ``CACHEDIR.TAG``."""
        if self._prepared:
            return
        self._prepared = True
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for name, text in ((".gitignore", GITIGNORE), ("CACHEDIR.TAG", CACHEDIR_TAG)):
                marker = self.root / name
                if not marker.exists():
                    _write_atomically(marker, text)
        except OSError:
            pass


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value) -> bool:
    return isinstance(value, str)


def _is_optional(check):
    return lambda value: value is None or check(value)


def _is_places(value) -> bool:
    """``related``: a list of {path, line, column, message} objects."""
    return isinstance(value, list) and all(
        isinstance(place, dict)
        and set(place) <= {"path", "line", "column", "message"}
        and all(_is_int(v) if k in ("line", "column") else _is_text(v) for k, v in place.items())
        for place in value
    )


# What each key of a stored finding must hold (``Finding.to_json``'s output).
ENTRY_TYPES = {
    "code": _is_text,
    "name": _is_text,
    "message": _is_text,
    "path": _is_text,
    "line": _is_int,
    "column": _is_int,
    "end_line": _is_int,
    "end_column": _is_int,
    "severity": _is_text,
    "cell": _is_optional(_is_int),
    "fix": _is_optional(_is_text),
    "fix_safety": _is_optional(lambda value: value in ("safe", "unsafe")),
    "related": _is_places,
}
REQUIRED = ("code", "name", "message", "path", "line", "column")


def _newer_field(key: str):
    """A check for a serialised ``Finding`` field this table does not list yet (added
    since): any JSON scalar. None for a key that is no field at all."""
    from dataclasses import fields

    if key == "edit" or key not in {field.name for field in fields(Finding)}:
        return None
    return lambda value: value is None or isinstance(value, (str, int, float))


def _finding_of(entry) -> Finding | None:
    """The finding an entry stores, or None when a key is unknown, missing or of the
    wrong type."""
    if not isinstance(entry, dict) or not all(key in entry for key in REQUIRED):
        return None
    for key, value in entry.items():
        check = ENTRY_TYPES.get(key) or _newer_field(key)
        if check is None or not check(value):
            return None
    if "related" in entry:
        entry = {**entry, "related": tuple(entry["related"])}
    try:
        return Finding(**entry)
    except TypeError:  # a key this build's Finding does not have
        return None


# -- the rule catalog ---------------------------------------------------------------


@dataclass(frozen=True)
class RuleInfo:
    """What the command line needs to know of a rule before checking any file."""

    code: str
    name: str
    default_enabled: bool


def rule_catalog(use_cache: bool = True) -> list[RuleInfo]:
    """The installed rules' codes and defaults, read from the per-user
    cache when this dllint build wrote it before (importing the rules costs more
    than checking a warm repository)."""
    where = user_cache_dir() / f"rules-{build_fingerprint()}.json" if use_cache else None
    if where is not None:
        try:
            rows = json.loads(where.read_text("utf-8"))
            return [RuleInfo(str(code), str(name), bool(on)) for code, name, on in rows]
        except (OSError, ValueError, TypeError, IndexError):
            pass
    from dllint.registry import all_rules

    catalog = [RuleInfo(r.code, r.name, r.default_enabled) for r in all_rules()]
    if where is not None:
        _write_atomically(where, json.dumps([astuple(info) for info in catalog]))
    return catalog
