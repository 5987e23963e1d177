"""The engine sits above the pieces it drives: ``notebook``, ``fixes``, ``rule``,
``registry`` and ``cache`` (and the analysis) never import ``dllint.engine`` or what
is built on it, lazily or not, so none of them can reach back into a half-imported
engine. What checks files (``autofix``, the front ends) imports the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BELOW_ENGINE = [
    "dllint/notebook.py",
    "dllint/fixes.py",
    "dllint/rule.py",
    "dllint/registry.py",
    "dllint/cache.py",
    "dllint/finding.py",
    "dllint/source.py",
    "dllint/noqa.py",
    "dllint/prefilter.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "dllint" / "analysis").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "dllint" / "project").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rules").glob("*.py")),
]
ABOVE = ("dllint.engine", "dllint.autofix", "dllint.cli", "dllint.stdin", "dllint.server")


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", BELOW_ENGINE)
def test_imports_nothing_above_the_engine(module: str) -> None:
    found = {name for name in imported(ROOT / module) if name.startswith(ABOVE)}
    assert not found, f"{module} imports {sorted(found)}"


def test_the_engine_drives_them() -> None:
    found = imported(ROOT / "dllint" / "engine.py")
    assert {"dllint.notebook", "dllint.fixes", "dllint.registry"} <= found
