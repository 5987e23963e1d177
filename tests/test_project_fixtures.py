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


def test_editing_an_imported_file_rechecks_its_importers(tmp_path: Path) -> None:
    """The cache key of train.py holds a hash of model.py: fixing the model clears
    the finding in train.py on the next (warm) run; editing a file train.py does not
    import leaves its entry alone."""
    import shutil

    from dllint.cache import Cache

    project = tmp_path / "project"
    shutil.copytree(
        PROJECTS[[p.name for p in PROJECTS].index("pos_softmax_head_in_model_py")], project
    )
    (project / "notes.py").write_text("import torch\n\nSCALE = 2\n")
    cache = Cache(tmp_path / "cache")

    def run():
        findings = check_paths([str(project)], all_rules(), cache=cache).findings
        return {(Path(f.path).name, f.code) for f in findings}

    assert run() == {("train.py", "DL301")}
    entries = set((tmp_path / "cache").rglob("*.json"))
    (project / "notes.py").write_text("import torch\n\nSCALE = 3\n")
    assert run() == {("train.py", "DL301")}
    new = set((tmp_path / "cache").rglob("*.json")) - entries
    assert len(new) == 1  # notes.py only: train.py's entry was served
    model = project / "model.py"
    model.write_text(
        model.read_text().replace(
            "nn.Linear(128, n_classes), nn.Softmax(dim=1)", "nn.Linear(128, n_classes)"
        )
    )
    assert run() == set()


def test_installed_packages_are_not_read(tmp_path: Path) -> None:
    """A project copied under site-packages is an installed package: its files are
    checked alone there, while the same files elsewhere see each other."""
    import shutil

    source = PROJECTS[[p.name for p in PROJECTS].index("pos_softmax_head_in_model_py")]
    installed = tmp_path / "venv" / "lib" / "site-packages" / "zoo"
    shutil.copytree(source, installed)
    shutil.copytree(source, tmp_path / "work")
    assert check_file(str(installed / "train.py"), all_rules()) == []
    assert [f.code for f in check_file(str(tmp_path / "work" / "train.py"), all_rules())] == [
        "DL301"
    ]


def test_related_place_in_json_and_sarif(tmp_path: Path, monkeypatch) -> None:
    """The loss call in train.py names the softmax in model.py: in the message, as a
    JSON ``related`` entry and as a SARIF ``relatedLocation``."""
    import json
    import shutil

    from dllint.cli import main

    shutil.copytree(
        PROJECTS[[p.name for p in PROJECTS].index("pos_softmax_head_in_model_py")], tmp_path / "p"
    )
    monkeypatch.chdir(tmp_path / "p")
    main(
        [
            "check",
            "train.py",
            "--isolated",
            "--no-cache",
            "--format",
            "json",
            "--output-file",
            "out.json",
        ]
    )
    (finding,) = json.loads(Path("out.json").read_text())
    assert finding["path"] == "train.py" and "(model.py:14)" in finding["message"]
    assert finding["related"] == [
        {
            "path": "model.py",
            "line": 14,
            "column": 62,
            "message": "`nn.Softmax(dim=1)` is applied here",
        }
    ]
    main(
        [
            "check",
            "train.py",
            "--isolated",
            "--no-cache",
            "--format",
            "sarif",
            "--output-file",
            "out.sarif",
        ]
    )
    (result,) = json.loads(Path("out.sarif").read_text())["runs"][0]["results"]
    (related,) = result["relatedLocations"]
    assert related["physicalLocation"]["artifactLocation"]["uri"] == "model.py"
    assert related["physicalLocation"]["region"] == {"startLine": 14, "startColumn": 62}


def test_without_a_root_marker_the_working_folder_is_searched(tmp_path: Path, monkeypatch) -> None:
    """A repository exported without .git or pyproject.toml: ``tools/train.py`` imports
    the top-level ``models`` package, found from the folder dllint runs in."""
    import shutil

    repo = tmp_path / "repo"
    source = PROJECTS[[p.name for p in PROJECTS].index("pos_star_reexports_and_dotted_imports")]
    shutil.copytree(source, repo)
    (repo / "setup.cfg").unlink()
    train = repo / "tools" / "train_resnet.py"
    monkeypatch.chdir(tmp_path)
    assert check_file(str(train), all_rules()) == []  # run from elsewhere: not found
    monkeypatch.chdir(repo)
    assert [(f.line, f.code) for f in check_file(str(train), all_rules())] == [(13, "DL302")]


def test_summaries_are_kept_by_content_and_read_back(tmp_path: Path) -> None:
    """A run with a cache keeps each imported module's summary under its content
    hash; a later process reads it instead of parsing, and finds the same."""
    import hashlib

    from dllint.cache import Cache
    from dllint.project import summary

    project = PROJECTS[[p.name for p in PROJECTS].index("pos_sigmoid_forward_src_layout")]
    cache = Cache(tmp_path / "cache")
    summary.summary_of.known.clear()  # a fresh process: nothing summarised yet
    first = check_paths([str(project)], all_rules(), cache=cache).findings
    detector = project / "src" / "shapes" / "models" / "detector.py"
    entry = (
        cache.folder / "summaries" / f"{hashlib.sha256(detector.read_bytes()).hexdigest()}.summary"
    )
    assert entry.is_file()
    stored = summary._load(entry)
    assert stored == summary.summarise_text(str(detector), detector.read_text()).statements
    summary.summary_of.known.clear()  # as a new process would start
    again = check_paths([str(project)], all_rules(), cache=Cache(tmp_path / "other")).findings
    assert [f.to_json() for f in again] == [f.to_json() for f in first]
    summary.STORE = None


def test_a_damaged_summary_is_ignored(tmp_path: Path) -> None:
    from dllint.project import summary

    entry = tmp_path / "x.summary"
    for text in ("", '[1, [["class", "1", 2, [], [], null]]]', "[99, []]", "{"):
        entry.write_text(text)
        assert summary._load(entry) is None


def test_a_finding_in_an_imported_helper_names_the_call_that_made_it(
    tmp_path: Path, monkeypatch
) -> None:
    """evaluate() in utils.py runs the model without eval() only because train.py
    calls it on a model with dropout: the finding, in utils.py, names that call."""
    import shutil

    source = PROJECTS[[p.name for p in PROJECTS].index("pos_evaluate_in_utils")]
    shutil.copytree(source, tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    (finding,) = check_file("train.py", all_rules())
    assert (finding.path, finding.line, finding.code) == ("utils.py", 8, "DL501")
    assert finding.related == (
        {"path": "train.py", "line": 18, "column": 22, "message": "`evaluate()` is called here"},
    )


def test_the_language_server_sees_a_module_created_after_it_looked(tmp_path: Path) -> None:
    """roots remembers files found or missing for the run; forget() (called by the
    server when a file is saved) lets a module written later be found."""
    from dllint.project import roots

    (tmp_path / "setup.cfg").write_text("")
    train = tmp_path / "train.py"
    train.write_text("from model import Net\n")
    assert roots.resolve(str(train), 0, "model") is None
    (tmp_path / "model.py").write_text("class Net: pass\n")
    assert roots.resolve(str(train), 0, "model") is None  # remembered as missing
    roots.forget()
    assert roots.resolve(str(train), 0, "model") == str(tmp_path / "model.py")
