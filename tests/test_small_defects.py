"""The smaller defects of issue 12: file names that are not UTF-8, SARIF for a file
outside the working folder, a run that finds no Python file, the wording of confirmed
trace findings and of DL403, final periods, the DL002 page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dllint.cli import main
from dllint.engine import check_file
from dllint.finding import Finding
from dllint.registry import all_rules
from dllint.runtime.events import ELEMENTWISE, Event, Place
from dllint.runtime.statuses import CONFIRMED, REFUTED, assign

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
BUG = (FIXTURES / "DL401" / "pos_plain_loop.py").read_bytes()


def run_strict(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``dllint`` with a strict UTF-8 standard output, as in many CI containers."""
    return subprocess.run(
        [sys.executable, "-m", "dllint", "check", "--isolated", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8:strict"},
        timeout=300,
    )


@pytest.fixture
def latin1_name(tmp_path) -> Path:
    name = b"caf\xe9_train.py"  # a latin-1 file name: not UTF-8
    try:
        path = Path(os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), name)))
        path.write_bytes(BUG)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    return path


@pytest.mark.parametrize("form", ["text", "json", "sarif", "github"])
def test_a_file_name_that_is_not_utf8_is_reported_in_every_format(latin1_name, form):
    run = run_strict(latin1_name.parent, "--format", form, ".")
    assert run.returncode == 1, run.stderr.decode(errors="replace")
    assert b"Traceback" not in run.stderr
    if form == "sarif":
        results = json.loads(run.stdout)["runs"][0]["results"]
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
        assert uris == {"caf%E9_train.py"}
    elif form == "json":
        assert {Path(f["path"]).name for f in json.loads(run.stdout)} == {"caf\udce9_train.py"}
    else:
        assert b"caf\xe9_train.py" in run.stdout  # the name's own bytes


def test_sarif_for_a_file_outside_the_working_folder_has_no_base(tmp_path, capsys, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "train.py").write_bytes(BUG)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    main(["check", "--isolated", "--no-cache", "--format", "sarif", str(outside / "train.py")])
    log = json.loads(capsys.readouterr().out)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": (outside / "train.py").as_uri()}


@pytest.mark.parametrize("how", ["empty folder", "all excluded"])
def test_no_python_files_found_is_said_and_exits_0(how, tmp_path, capsys):
    if how == "all excluded":
        (tmp_path / "train.py").write_bytes(BUG)
        code = main(
            ["check", "--isolated", "--no-cache", "--extend-exclude", "*.py", str(tmp_path)]
        )
    else:
        code = main(["check", "--isolated", "--no-cache", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0
    assert "no Python files found" in captured.err
    assert "no Python files found" not in captured.out


def test_a_confirmed_trace_finding_no_longer_asks_to_run_the_tracer():
    hint = "use `pred.squeeze(1)`. Run `dllint trace` to confirm."
    static = Finding("train.py", 10, 12, "DL306", "broadcast-prone-shapes", hint, 10, 25)
    bad = Event(ELEMENTWISE, "sub", Place("train.py", 10, 12, 10, 25), ((7, 1), (7,)), (7, 7))
    (traced,) = assign([static], [bad])
    assert traced.status == CONFIRMED
    assert "to confirm" not in traced.finding.message
    assert traced.finding.message.endswith(
        "`dllint trace` confirmed it: sub((7, 1), (7,)) -> (7, 7)."
    )
    fine = Event(ELEMENTWISE, "sub", Place("train.py", 10, 12, 10, 25), ((7, 1), (7, 1)), (7, 1))
    (traced,) = assign([static], [fine])
    assert traced.status == REFUTED and "to confirm" not in traced.finding.message


def test_dl403_says_what_it_keeps():
    (finding,) = check_file(str(FIXTURES / "DL403" / "pos_running_total.py"), list(all_rules()))[:1]
    assert "activations saved for its backward pass" in finding.message
    assert "runs out" not in finding.message


@pytest.mark.parametrize("code", ["DL101", "DL105"])
def test_messages_end_with_a_period(code):
    rules = list(all_rules())
    messages = [
        f.message
        for path in sorted((FIXTURES / code).glob("pos_*.py"))
        for f in check_file(str(path), rules)
        if f.code == code
    ]
    assert messages and all(message.endswith(".") for message in messages)


def test_dl002_has_a_docs_page(capsys):
    assert main(["explain", "DL002"]) == 0
    page = capsys.readouterr().out
    for section in ("# DL002 internal-error", "## What it does", "## Why is this bad?"):
        assert section in page
