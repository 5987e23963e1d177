"""The findings cache: keyed by file bytes, configuration and dllint build; safe to
share between concurrent runs; a bad entry is ignored and rewritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dllint import cache as cache_module
from dllint.cache import Cache, build_fingerprint, rule_catalog
from dllint.cli import main
from dllint.engine import check_paths
from dllint.registry import all_rules

FIXTURES = Path(__file__).parent / "fixtures"
BUGGY = FIXTURES / "DL401" / "pos_plain_loop.py"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project with a [tool.dllint] table and a training script with a DL401 bug;
    the cache in its default place (no DLLINT_CACHE_DIR)."""
    monkeypatch.delenv("DLLINT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.dllint]\nextend-ignore = []\n", "utf-8")
    (root / "src" / "train.py").write_text(BUGGY.read_text("utf-8"), "utf-8")
    monkeypatch.chdir(root)
    return root


def check(capsys, *flags: str) -> tuple[int, list[dict]]:
    code = main(["check", ".", "--format", "json", *flags])
    return code, json.loads(capsys.readouterr().out)


def entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.json") if not p.name.startswith("rules-"))


def test_the_cache_lives_at_the_project_root_and_ignores_itself(project, capsys):
    code, found = check(capsys)
    assert code == 1 and {d["code"] for d in found} == {"DL401"}
    folder = project / ".dllint_cache"
    assert (folder / ".gitignore").read_text("utf-8").splitlines()[-1] == "*"
    assert (folder / "CACHEDIR.TAG").exists()
    assert len(entries(folder)) == 1
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ".dllint_cache" not in status.stdout and "src/train.py" in status.stdout


def test_a_warm_run_reuses_entries_and_reports_the_same(project, capsys, monkeypatch):
    cold = check(capsys)
    import dllint.engine

    def never(*args, **kwargs):
        raise AssertionError("a cached file was checked again")

    monkeypatch.setattr(dllint.engine, "_check_pending", never)
    assert check(capsys) == cold


def test_changed_bytes_or_configuration_miss_the_cache(project, capsys):
    _, before = check(capsys)
    script = project / "src" / "train.py"
    script.write_text("import torch\n\n" + script.read_text("utf-8"), "utf-8")
    _, after = check(capsys)
    assert [d["line"] for d in after] == [d["line"] + 2 for d in before]
    (project / "pyproject.toml").write_text('[tool.dllint]\nextend-ignore = ["DL401"]\n')
    assert check(capsys) == (0, [])
    assert len(entries(project / ".dllint_cache")) == 3


def test_per_file_ignores_are_part_of_the_key(project, capsys):
    assert check(capsys)[0] == 1
    (project / "pyproject.toml").write_text(
        '[tool.dllint.per-file-ignores]\n"src/*" = ["DL4"]\n', "utf-8"
    )
    assert check(capsys) == (0, [])


def test_a_corrupt_entry_is_ignored_and_rewritten(project, capsys):
    cold = check(capsys)
    (entry,) = entries(project / ".dllint_cache")
    for garbage in ("{not json", '[{"code": 1}]', "", '{"a": 1}'):
        entry.write_text(garbage, "utf-8")
        assert check(capsys) == cold
        assert {f["code"] for f in json.loads(entry.read_text("utf-8"))} == {"DL401"}


def test_an_unwritable_cache_only_costs_time(project, capsys):
    (project / ".dllint_cache").write_text("a file where the folder should be", "utf-8")
    code, found = check(capsys)
    assert code == 1 and {d["code"] for d in found} == {"DL401"}


def test_no_cache_neither_reads_nor_writes(project, capsys):
    check(capsys, "--no-cache")
    assert not (project / ".dllint_cache").exists()
    check(capsys)
    (entry,) = entries(project / ".dllint_cache")
    entry.write_text("[]", "utf-8")  # a wrong (but valid) entry: --no-cache must not read it
    assert check(capsys, "--no-cache")[0] == 1
    assert check(capsys) == (0, [])


def test_a_rule_failure_is_not_cached(project, capsys, monkeypatch):
    dl401 = next(rule for rule in all_rules() if rule.code == "DL401")

    def broken(self):
        raise ValueError("boom")

    monkeypatch.setattr(dl401, "check", broken)
    code, found = check(capsys)
    assert code == 2 and [d["code"] for d in found] == ["DL002"]
    assert entries(project / ".dllint_cache") == []


def test_concurrent_runs_share_the_cache_safely(project):
    for index in range(30):
        (project / "src" / f"copy_{index}.py").write_text(BUGGY.read_text("utf-8"), "utf-8")
    command = [sys.executable, "-m", "dllint", "check", ".", "--format", "json", "-j2"]
    env = {**os.environ, "DLLINT_CACHE_DIR": ""}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, env=env) for _ in range(3)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert all(run.returncode == 1 for run in runs)
    assert len(set(outputs)) == 1 and len(json.loads(outputs[0])) >= 31
    stored = entries(project / ".dllint_cache")
    assert len(stored) == 31
    assert all(json.loads(path.read_text("utf-8")) for path in stored)
    assert not [p for p in (project / ".dllint_cache").rglob(".tmp-*")]


def test_keys_differ_by_path_codes_and_bytes(tmp_path):
    store = Cache(tmp_path, fingerprint="f")
    key = store.key("a.py", ["DL401", "DL001"], b"x = 1\n")
    assert key == store.key("a.py", ["DL001", "DL401"], b"x = 1\n")
    assert key != store.key("b.py", ["DL001", "DL401"], b"x = 1\n")
    assert key != store.key("a.py", ["DL001"], b"x = 1\n")
    assert key != store.key("a.py", ["DL001", "DL401"], b"x = 2\n")
    assert store.get(key) is None


def test_entries_round_trip_findings_with_cells_and_fixes(tmp_path):
    notebook = next(FIXTURES.rglob("pos_*.ipynb"))
    report = check_paths([str(notebook)], all_rules())
    assert any(f.cell for f in report.findings)
    store = Cache(tmp_path, fingerprint="f")
    store.put("k", report.findings)
    assert store.get("k") == report.findings
    assert [f.to_json() for f in store.get("k")] == [f.to_json() for f in report.findings]


def test_editing_a_dllint_source_file_changes_the_fingerprint(tmp_path, monkeypatch):
    source = tmp_path / "rule.py"
    source.write_text("x = 1\n", "utf-8")
    monkeypatch.setattr(cache_module, "_source_folders", lambda: [str(tmp_path)])
    before = build_fingerprint()
    assert build_fingerprint() == before
    source.write_text("x = 22\n", "utf-8")
    assert build_fingerprint() != before


def test_the_rule_catalog_is_cached_and_a_bad_one_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("DLLINT_CACHE_DIR", str(tmp_path))
    expected = [(r.code, r.name, r.default_enabled) for r in all_rules()]
    first = rule_catalog()
    (stored,) = tmp_path.glob("rules-*.json")
    assert [(i.code, i.name, i.default_enabled) for i in first] == expected
    assert [(i.code, i.name, i.default_enabled) for i in rule_catalog()] == expected
    stored.write_text("[[1]]", "utf-8")
    assert rule_catalog() == first
    assert rule_catalog(use_cache=False) == first
