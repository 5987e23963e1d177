"""Multi-file projects under ``tests/fixtures/projects/``: a bug that shows in one
file and is caused in another (a model defined in ``model.py``, trained in
``train.py``).

Each project folder holds ``# expect: DLxxx`` markers in any of its files. Checked
as a whole (``dllint check project/``) the findings equal the markers, file by
file. Checked one file at a time, as pre-commit and flake8 do, no run reports an
unmarked finding, and the runs together find every marker: a file's run sees the
project files it imports.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_fixtures import expected_markers

from dllint.engine import check_file, check_paths
from dllint.registry import all_rules

PROJECTS = sorted(p for p in (Path(__file__).parent / "fixtures" / "projects").iterdir())


def sources(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.suffix in (".py", ".ipynb"))


def project_markers(project: Path) -> set[tuple]:
    """(file, cell, line, code) of every marker; cell None outside notebooks."""
    found = set()
    for path in sources(project):
        for marker in expected_markers(path):
            cell = marker[0] if path.suffix == ".ipynb" else None
            found.add((str(path.resolve()), cell, *marker[-2:]))
    return found


def reported(findings) -> set[tuple]:
    return {(str(Path(f.path).resolve()), f.cell, f.line, f.code) for f in findings}


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_project_checked_whole(project: Path) -> None:
    report = check_paths([str(project)], all_rules())
    found, expected = reported(report.findings), project_markers(project)
    assert found == expected, (
        f"missing: {sorted(expected - found)}\nextra: {sorted(found - expected)}"
    )


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_project_checked_file_by_file(project: Path) -> None:
    expected = project_markers(project)
    together: set = set()
    for path in sources(project):
        found = reported(check_file(str(path), all_rules()))
        assert found <= expected, f"{path.name}: unmarked {sorted(found - expected)}"
        together |= found
    assert together == expected


def test_projects_hold_positives_and_negatives() -> None:
    names = [p.name for p in PROJECTS]
    assert sum(n.startswith("pos_") for n in names) >= 5
    assert sum(n.startswith("neg_") for n in names) >= 3
    for project in PROJECTS:
        assert (project_markers(project) != set()) == project.name.startswith("pos_")
