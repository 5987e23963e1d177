"""Where a file's project starts, and which project file an import names.

The root is the nearest folder above the file holding ``pyproject.toml``,
``setup.cfg``, ``setup.py`` or ``.git`` (as ruff and pyright find it), never above a
``site-packages`` folder. Imports resolve, in this order, against the file's own
folder (Python puts a script's folder first on ``sys.path``), the root and the
root's ``src/``; without a marker, also the working folder when it holds the
file. Installed packages are never read: a module found only in the environment
stays unknown, and the built-in knowledge of torch, torchvision, timm and the rest
applies to it as before.

Nothing here imports or runs project code; it only looks at paths and text.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")
INSTALL_FOLDERS = ("site-packages", "dist-packages")

# ``from a.b import (x, y as z)`` / ``from .. import m`` / ``import a.b as c, d``:
# a superset of the imports (strings that look like imports match too), cheap
# enough to run on every file of a warm run.
_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)[ \t]*([\w.]*)[ \t]+import\b", re.MULTILINE)
_NAME = r"[\w.]+(?:[ \t]+as[ \t]+\w+)?"
_IMPORT = re.compile(rf"^[ \t]*import[ \t]+({_NAME}(?:[ \t]*,[ \t]*{_NAME})*)", re.MULTILINE)


def installed(path: str) -> bool:
    """Is ``path`` inside an installed package (``site-packages``)? Such a file is
    checked alone: installed packages are never read for another file, their own
    included, which keeps a run over a whole environment as cheap as before."""
    parts = os.path.abspath(path).split(os.sep)
    return any(folder in parts for folder in INSTALL_FOLDERS)


@lru_cache(maxsize=4096)
def marked_root(folder: str) -> str | None:
    """The nearest folder from ``folder`` up holding a root marker, if any."""
    current = folder
    while True:
        if os.path.basename(current) in INSTALL_FOLDERS:
            return None
        if any(os.path.exists(os.path.join(current, marker)) for marker in ROOT_MARKERS):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


@lru_cache(maxsize=4096)
def project_root(folder: str) -> str:
    """The project root of a file in ``folder`` (absolute): the nearest folder with
    a root marker, else the outermost package folder's parent, else ``folder``."""
    marked = marked_root(folder)
    if marked is not None:
        return marked
    top = folder
    while os.path.isfile(os.path.join(top, "__init__.py")):
        parent = os.path.dirname(top)
        if parent == top:
            break
        top = parent
    return top


def search_folders(path: str) -> tuple[str, ...]:
    """The folders that absolute imports in ``path`` are looked up in."""
    return _search_folders(os.path.dirname(os.path.abspath(path)), os.getcwd())


@lru_cache(maxsize=4096)
def _search_folders(folder: str, here: str) -> tuple[str, ...]:
    root = project_root(folder)
    folders = [folder, root, os.path.join(root, "src")]
    if marked_root(folder) is None:
        # No marker (a repository exported without .git): the folder dllint runs in,
        # when it holds the file, is where such a project is usually run from too.
        if folder == here or folder.startswith(here + os.sep):
            folders.append(here)
    seen: list[str] = []
    for candidate in folders:
        if candidate not in seen and os.path.isdir(candidate):
            seen.append(candidate)
    return tuple(seen)


def package_folder(path: str, level: int) -> str | None:
    """The folder a relative import of ``level`` dots in ``path`` starts from."""
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(level - 1):
        if not os.path.isfile(os.path.join(folder, "__init__.py")):
            return None
        folder = os.path.dirname(folder)
    return folder


def module_file(folder: str, dotted: str) -> str | None:
    """``folder/a/b.py`` or ``folder/a/b/__init__.py`` for ``a.b``, when it exists."""
    base = os.path.join(folder, *dotted.split(".")) if dotted else folder
    candidates = (
        (base + ".py", os.path.join(base, "__init__.py"))
        if dotted
        else (os.path.join(base, "__init__.py"),)
    )
    for candidate in candidates:
        if _is_file(candidate):
            return candidate
    return None


@lru_cache(maxsize=65536)
def _is_file(path: str) -> bool:
    return os.path.isfile(path)


def resolve(path: str, level: int, dotted: str) -> str | None:
    """The project file that ``from <level dots><dotted> import ...`` in ``path``
    names, or None (an installed package, or nothing)."""
    path = os.path.abspath(path)
    return _resolve(path, os.path.dirname(path), level, dotted, os.getcwd())


@lru_cache(maxsize=65536)
def _resolve(path: str, folder: str, level: int, dotted: str, here: str) -> str | None:
    if level:
        start = package_folder(path, level)
        return module_file(start, dotted) if start is not None else None
    if not dotted:
        return None
    for candidate in _search_folders(folder, here):
        found = module_file(candidate, dotted)
        if found is not None and os.path.abspath(found) != path:
            return found
    return None


def forget() -> None:
    """Drop what is remembered of the file system (roots, files found or missing):
    a long-running process (the language server) calls it when files may have
    appeared or gone. A ``dllint check`` run sees one file system and never needs to."""
    for remembered in (marked_root, project_root, _search_folders, _resolve, _is_file):
        remembered.cache_clear()


def imported_modules(path: str, text: str) -> list[str]:
    """The project files ``text`` may import (a superset: also ``from m import sub``'s
    submodule). For cache keys, where no parse may be spent."""
    found: list[str] = []
    for start in _import_lines(text):
        match = _FROM.match(text, start)
        if match is not None:
            level, dotted = len(match.group(1)), match.group(2)
            target = resolve(path, level, dotted)
            if target is not None:
                found.append(target)
                if target.endswith("__init__.py"):
                    found.extend(_submodules_named(target, text, match.end()))
            continue
        match = _IMPORT.match(text, start)
        if match is None:
            continue
        for part in match.group(1).split(","):
            dotted = part.split()[0] if part.split() else ""
            target = resolve(path, 0, dotted)
            if target is not None:
                found.append(target)
    return found


def _import_lines(text: str) -> list[int]:
    """Where each line holding the word ``import`` starts: the only lines the
    import patterns can match, found without running a pattern over every line."""
    starts: list[int] = []
    position = text.find("import")
    while position != -1:
        start = text.rfind("\n", 0, position) + 1
        if not starts or starts[-1] != start:
            starts.append(start)
        end = text.find("\n", position)
        if end == -1:
            break
        position = text.find("import", end)
    return starts


def _submodules_named(init: str, text: str, start: int) -> list[str]:
    """Submodule files of a package that ``from package import a, b`` may name."""
    names = re.match(r"[ \t(]*([\w \t,\n\\]*)", text[start : start + 2000])
    if names is None:
        return []
    folder = os.path.dirname(init)
    files = []
    for name in re.findall(r"\w+", names.group(1)):
        candidate = module_file(folder, name)
        if candidate is not None and candidate != init:
            files.append(candidate)
    return files
