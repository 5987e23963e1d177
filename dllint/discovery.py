"""Find the Python files under the paths a user names."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".env",
    "env",
    "virtualenv",
    "node_modules",
    "build",
    "dist",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".dllint_cache",
    "site-packages",
    ".eggs",
    ".ipynb_checkpoints",
)
SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")
Excluder = Callable[[str, str], bool]  # (name, path) -> excluded?


def _is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def _excluded(name: str, path: str, patterns: tuple[str, ...] | Excluder) -> bool:
    if callable(patterns):  # a configured matcher (dllint.config.PathMatcher)
        return patterns(name, path)
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)


def iter_source_files(
    paths: list[str], exclude: tuple[str, ...] | Excluder = DEFAULT_EXCLUDES
) -> Iterator[str]:
    """Yield files to check, in a stable order. Paths named explicitly are always
    yielded (a broken symlink too, so the reader can report it); folders are walked
    without following symlink loops, skipping excluded and virtualenv folders."""
    seen: set[str] = set()
    for given in paths:
        if os.path.isdir(given):
            yield from _walk(given, exclude, seen)
        else:
            real = os.path.realpath(given)
            if real not in seen:
                seen.add(real)
                yield given


def _walk(root: str, exclude: tuple[str, ...] | Excluder, seen: set[str]) -> Iterator[str]:
    visited_dirs: set[str] = set()
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        real_folder = os.path.realpath(folder)
        if real_folder in visited_dirs:
            dirnames[:] = []
            continue
        visited_dirs.add(real_folder)
        kept = []
        for name in sorted(dirnames):
            full = os.path.join(folder, name)
            if _excluded(name, full, exclude) or _is_virtualenv(full):
                continue
            if os.path.realpath(full) in visited_dirs:
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            full = os.path.join(folder, name)
            if not name.endswith(SOURCE_SUFFIXES) or _excluded(name, full, exclude):
                continue
            real = os.path.realpath(full)
            if real in seen:
                continue
            seen.add(real)
            yield str(Path(full))
