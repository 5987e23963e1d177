"""``[tool.dllint]`` in pyproject.toml, and how command-line flags layer over it.

Rule selection works as in ruff: the built-in defaults, then the file, then the
command line, each a layer. A layer's ``select`` replaces what came before;
``extend-select`` adds; ``ignore`` and ``extend-ignore`` remove. Inside one layer the
most specific pattern wins (``select = ["DL401"]`` beats ``ignore = ["DL4"]``); on a
tie, ignore wins. So ``--select DL401`` on the command line enables DL401 even if the
file ignores it, and ``--extend-ignore DL401`` removes it even if the file selects it.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from dllint.discovery import DEFAULT_EXCLUDES

CODE_LISTS = ("select", "ignore", "extend-select", "extend-ignore")
PATTERN_LISTS = ("exclude", "extend-exclude")
KEYS = (*CODE_LISTS, "per-file-ignores", *PATTERN_LISTS)
ALL = "ALL"


class ConfigError(Exception):
    """A configuration the user must fix; the message names the file and the key."""


@dataclass(frozen=True)
class Layer:
    """One source of rule selection: the file or the command line."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    extend_ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileConfig:
    """What one ``[tool.dllint]`` table says. Patterns are relative to ``root``."""

    root: Path
    source: Path | None = None
    layer: Layer = field(default_factory=Layer)
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()


def _specificity(code: str, patterns: Iterable[str]) -> int:
    """Length of the longest pattern matching ``code`` (``ALL`` scores 0), -1 if none."""
    best = -1
    for pattern in patterns:
        if pattern == ALL:
            best = max(best, 0)
        elif code.startswith(pattern):
            best = max(best, len(pattern))
    return best


def resolve_codes(
    known: Iterable[str], default: Iterable[str], layers: Iterable[Layer]
) -> frozenset[str]:
    """The enabled codes after applying each layer in order over the defaults.

    A rule that is off by default (a hint such as DL407) is selected only by its full
    code or ``ALL``: ``select = ["DL4"]`` means the training-loop rules people expect,
    not every hint of the family.
    """
    known = list(known)
    default = set(default)
    enabled = set(default)
    for layer in layers:
        carried = set() if layer.select is not None else enabled
        selectors = (*(layer.select or ()), *layer.extend_select)
        ignores = (*layer.ignore, *layer.extend_ignore)
        now = set()
        for code in known:
            if code in default:
                chosen = _specificity(code, selectors)
            else:
                chosen = _specificity(code, [p for p in selectors if p in (ALL, code)])
            dropped = _specificity(code, ignores)
            if chosen > dropped or (chosen < 0 and dropped < 0 and code in carried):
                now.add(code)
        enabled = now
    return frozenset(enabled)


def rule_pattern(value: str) -> str:
    """A selection pattern as written by the user: a code or prefix (any case) or
    ``ALL`` upper-cased, a rule's name (``missing-zero-grad``) as its code. An unknown
    name is kept as written, so the error that follows quotes it."""
    value = value.strip()
    if not re.fullmatch(r"[a-z]+(-[a-z]+)+|[a-z]{4,}", value):
        return value.upper()
    return _rule_names().get(value, value)


def _rule_names() -> dict[str, str]:
    """Name -> code of every rule and engine code (from the cached catalog)."""
    from dllint.cache import rule_catalog
    from dllint.engine import ENGINE_CODES

    names = {info.name: info.code for info in rule_catalog()}
    names.update((name, code) for code, name, _ in ENGINE_CODES)
    return names


def unknown_patterns(patterns: Iterable[str], known: Iterable[str]) -> list[str]:
    """Patterns that match no known code (a typo the user should hear about)."""
    known = list(known)
    return [p for p in patterns if p != ALL and not any(c.startswith(p) for c in known)]


class PathMatcher:
    """Glob patterns matched the way users write them in pyproject.toml: against a
    file's name, against its path relative to the config's folder (or any folder above
    the file within it), or against its absolute path."""

    def __init__(self, patterns: Iterable[str], root: Path) -> None:
        self.patterns = tuple(p.rstrip("/") for p in patterns if p.strip())
        self.root = root.resolve()

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def _candidates(self, path: str, ancestors: bool) -> list[str]:
        absolute = Path(os.path.abspath(path))
        names = [absolute.name, absolute.as_posix(), Path(path).as_posix()]
        try:
            parts = absolute.relative_to(self.root).parts
        except ValueError:
            return names
        names.append("/".join(parts))
        if ancestors:  # a folder anywhere above the file: "generated", "src/generated"
            names.extend(parts)
            names.extend("/".join(parts[:end]) for end in range(1, len(parts)))
        return names

    def matches(self, path: str, ancestors: bool = True) -> bool:
        """Does a pattern match this path, or (with ``ancestors``) a folder above it?"""
        candidates = self._candidates(path, ancestors)
        return any(fnmatch.fnmatchcase(c, p) for p in self.patterns for c in candidates)

    def __call__(self, name: str, full: str) -> bool:
        """The discovery walk's question, asked level by level: is this entry excluded?"""
        return self.matches(full, ancestors=False)


@dataclass(frozen=True)
class Settings:
    """Everything the engine needs to know per file, resolved from file and flags."""

    codes: frozenset[str]
    root: Path
    per_file_ignores: tuple[tuple[PathMatcher, tuple[str, ...]], ...] = ()
    exclude: PathMatcher | None = None
    user_exclude: PathMatcher | None = None
    source: Path | None = None

    def enabled(self, code: str) -> bool:
        return code in self.codes

    def ignored_in(self, path: str) -> tuple[str, ...]:
        """Code patterns that per-file-ignores switches off for this file."""
        ignored: list[str] = []
        for matcher, codes in self.per_file_ignores:
            if matcher.matches(path):
                ignored.extend(codes)
        return tuple(ignored)

    def is_user_excluded(self, path: str) -> bool:
        """Files named on the command line skip only the user's own exclude patterns
        (so pre-commit honours them), never the built-in list."""
        return bool(self.user_exclude) and self.user_exclude.matches(path)


# Reading the file ---------------------------------------------------------------


def find_config(start: str | Path) -> Path | None:
    """The nearest pyproject.toml holding a ``[tool.dllint]`` table, from ``start`` up."""
    here = Path(os.path.abspath(start))
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _has_dllint_table(candidate):
            return candidate
    return None


def _has_dllint_table(path: Path) -> bool:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if "dllint" not in text:
        return False
    tool = _read_toml(path).get("tool")
    return isinstance(tool, dict) and "dllint" in tool


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load_config(path: str | Path, known: Iterable[str]) -> FileConfig:
    """Read and validate ``[tool.dllint]`` (or, for a file not named pyproject.toml
    without that table, its top level)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    document = _read_toml(path)
    tool = document.get("tool")
    table = tool.get("dllint") if isinstance(tool, dict) else None
    where = f"[tool.dllint] in {path}"
    if table is None:
        if path.name == "pyproject.toml":
            raise ConfigError(f"{path}: has no [tool.dllint] table")
        table, where = document, str(path)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    known = list(known)
    for key in table:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}; {hint}the keys are {', '.join(KEYS)}")
    codes = {key: _code_list(table, key, where, known) for key in CODE_LISTS}
    layer = Layer(
        select=codes["select"] if "select" in table else None,
        extend_select=codes["extend-select"],
        ignore=codes["ignore"],
        extend_ignore=codes["extend-ignore"],
    )
    return FileConfig(
        root=path.resolve().parent,
        source=path,
        layer=layer,
        per_file_ignores=_per_file_ignores(table, where, known),
        exclude=_string_list(table, "exclude", where) if "exclude" in table else None,
        extend_exclude=_string_list(table, "extend-exclude", where),
    )


def _string_list(table: dict, key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key!r} must be a list of strings, got {value!r}")
    return tuple(value)


def _codes(values: Iterable[str], key: str, where: str, known: list[str]) -> tuple[str, ...]:
    codes = tuple(rule_pattern(v) for v in values)
    bad = unknown_patterns(codes, known)
    if bad:
        raise ConfigError(
            f"{where}: {key!r} names {', '.join(map(repr, bad))}, which matches no rule; "
            f"`dllint rules` lists them"
        )
    return codes


def _code_list(table: dict, key: str, where: str, known: list[str]) -> tuple[str, ...]:
    return _codes(_string_list(table, key, where), key, where, known)


def _per_file_ignores(table: dict, where: str, known: list[str]):
    value = table.get("per-file-ignores", {})
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: 'per-file-ignores' must be a table of glob = [codes], got {value!r}"
        )
    entries = []
    for pattern, codes in value.items():
        key = f"per-file-ignores.{pattern!r}"
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise ConfigError(f"{where}: {key} must be a list of codes, got {codes!r}")
        entries.append((pattern, _codes(codes, key, where, known)))
    return tuple(entries)


# Putting file and flags together ------------------------------------------------


@dataclass(frozen=True)
class Overrides:
    """What the command line says; None/empty where it says nothing."""

    layer: Layer = field(default_factory=Layer)
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()


def settings_for(
    config: FileConfig, overrides: Overrides, known: Iterable[str], default: Iterable[str]
) -> Settings:
    """Merge a file's configuration with the command line's overrides."""
    codes = resolve_codes(known, default, (config.layer, overrides.layer))
    user_patterns: tuple[str, ...] = ()
    base = DEFAULT_EXCLUDES
    if overrides.exclude is not None:
        base = user_patterns = overrides.exclude
    elif config.exclude is not None:
        base = user_patterns = config.exclude
    user_patterns = (*user_patterns, *config.extend_exclude, *overrides.extend_exclude)
    return Settings(
        codes=codes,
        root=config.root,
        per_file_ignores=tuple(
            (PathMatcher([pattern], config.root), codes)
            for pattern, codes in config.per_file_ignores
        ),
        exclude=PathMatcher(
            (*base, *config.extend_exclude, *overrides.extend_exclude), config.root
        ),
        user_exclude=PathMatcher(user_patterns, config.root),
        source=config.source,
    )


def configs_for(
    paths: list[str], config: str | None, isolated: bool, known: Iterable[str]
) -> list[tuple[FileConfig, list[str]]]:
    """Group the checked paths by the configuration that governs them.

    ``--config`` governs every path; ``--isolated`` means none (patterns are then
    relative to the working folder); otherwise each path gets the nearest
    pyproject.toml with a ``[tool.dllint]`` table above it.
    """
    known = list(known)
    if config is not None:
        return [(load_config(config, known), list(paths))]
    if isolated:
        return [(FileConfig(root=Path.cwd()), list(paths))]
    groups: dict[Path | None, list[str]] = {}
    for path in paths:
        groups.setdefault(find_config(path), []).append(path)
    return [
        (load_config(source, known) if source else FileConfig(root=Path.cwd()), members)
        for source, members in groups.items()
    ]
