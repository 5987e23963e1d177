"""Hostile input: every bad file is reported (DL001) and skipped, the rest of the run
stays intact, no traceback reaches the user, and dllint never runs the code it reads.

One hostile tree is built and checked once through the installed command (a
subprocess, cold cache, two workers); the in-process runs (``cli.main``) then check
that the cache and a serial run report exactly the same.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dllint.engine
from dllint.cli import main
from dllint.engine import check_paths
from dllint.registry import all_rules

SCRIPT = Path(sys.executable).parent / "dllint"

# A DL401 bug: the optimizer steps every iteration and its gradients are never cleared.
BUG = """\
import torch
from torch import nn

model = nn.Linear(4, 2)
crit = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = crit(model(x), y)
    loss.backward()
    opt.step()
"""
BUG_LINE = 10  # `opt.step()`
HUGE_LINES = 180_000
TORCH = "import torch\nfrom torch import nn\n"

# name -> (bytes, the line DL001 must name, words of its message)
UNPARSABLE = {
    "syntax.py": (b"import torch\nx = (1,\ny = 2\n", 2, "never closed"),
    "python2.py": (b"import torch\nprint 'loss', loss\n", 2, "Missing parentheses"),
    "undecodable.py": (b"import torch\nname = '\xff\xfe'\n", 2, "cannot decode"),
    "nul.py": (b"import torch\nx = 1\x00\n", 2, "NUL byte"),
    "badcoding.py": (b"# -*- coding: klingon -*-\nimport torch\n", 1, "coding"),
    "deep_parens.py": ((TORCH + "x = " + "(" * 5000 + "1" + ")" * 5000).encode(), 3, "nested"),
    "deep_lists.py": ((TORCH + "x = " + "[" * 5000 + "]" * 5000).encode(), 3, "nested"),
    "deep_calls.py": ((TORCH + "x = " + "f(" * 3000 + ")" * 3000).encode(), 3, "nested"),
    "deep_unary.py": ((TORCH + "x = " + "-" * 100_000 + "1\n").encode(), 3, "nested"),
    "deep_sum.py": ((TORCH + "x = 1" + " + 1" * 100_000 + "\n").encode(), 3, "nested"),
    "deep_attrs.py": ((TORCH + "x = a" + ".b" * 100_000 + "\n").encode(), 3, "nested"),
    "deep_ifs.py": (
        (TORCH + "".join(" " * i + "if x:\n" for i in range(150)) + " " * 150 + "pass\n").encode(),
        None,
        "nested",
    ),
    "deep_valid.py": ((TORCH + "x = a" + "[0]" * 400 + "\n").encode(), 3, "nested"),
    "fifo.py": (None, 1, "not a regular file"),
    "broken_link.py": (None, 1, "not found"),
}
# name -> the lines DL401 must name
BUGGY = {
    "good.py": BUG_LINE,
    "latin1.py": BUG_LINE + 2,
    "crlf.py": BUG_LINE,
    "lone_cr.py": BUG_LINE,
    "bom.py": BUG_LINE,
    "huge.py": HUGE_LINES + BUG_LINE - 2,  # BUG's two import lines open the file
    "nested_but_fine.py": BUG_LINE + 1,
}
EXCLUDED = (".git", "venv", ".venv", "node_modules", "my_env", "build")


def build_tree(root: Path) -> Path:
    """Every hostile input of the issue, beside real bugs that must still be found."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (data, _, _) in UNPARSABLE.items():
        if data is not None:
            (root / name).write_bytes(data)
    os.mkfifo(root / "fifo.py")
    (root / "broken_link.py").symlink_to(root / "nowhere.py")
    (root / "good.py").write_text(BUG, "utf-8")
    latin = "# -*- coding: latin-1 -*-\n# caf\u00e9, na\u00efve, \u00a9 \u00b5\n" + BUG
    (root / "latin1.py").write_bytes(latin.encode("latin-1"))
    (root / "crlf.py").write_bytes(BUG.replace("\n", "\r\n").encode())
    (root / "lone_cr.py").write_bytes(BUG.replace("\n", "\r").encode())
    (root / "bom.py").write_bytes(b"\xef\xbb\xbf" + BUG.encode())
    filler = "".join(f"value_{i} = {i}\n" for i in range(HUGE_LINES - 2))
    (root / "huge.py").write_text(TORCH + filler + BUG.split("\n", 2)[2], "utf-8")
    deep = "weights = (" + "(" * 150 + "1" + ")" * 150 + ")\n"  # deep, within the limits
    (root / "nested_but_fine.py").write_text(BUG.replace("for x", deep + "for x"), "utf-8")
    (root / "empty.py").write_bytes(b"")
    (root / "notes.txt").write_text("not python", "utf-8")
    for folder in EXCLUDED:
        (root / folder / "pkg").mkdir(parents=True)
        (root / folder / "pkg" / "train.py").write_text(BUG, "utf-8")
    (root / "my_env" / "pyvenv.cfg").write_text("home = /usr/bin\n", "utf-8")
    (root / "sub").mkdir()
    (root / "sub" / "loop").symlink_to(root)  # a folder link back up: a cycle
    (root / "self_loop.py").symlink_to("self_loop.py")  # a link to itself
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build_tree(tmp_path_factory.mktemp("hostile") / "project")


def _positions(found: list[dict]) -> set[tuple[str, int, str]]:
    return {(Path(d["path"]).name, d["line"], d["code"]) for d in found}


@pytest.fixture(scope="module")
def cold_run(tree, tmp_path_factory):
    """The installed command on the whole tree: cold cache, two worker processes."""
    env = {**os.environ, "DLLINT_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    start = time.perf_counter()
    result = subprocess.run(
        [str(SCRIPT), "check", str(tree), "--format", "json", "--isolated", "-j", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return result, time.perf_counter() - start, env["DLLINT_CACHE_DIR"]


def test_the_hostile_tree_exits_1_with_every_bug_on_its_line_and_no_traceback(cold_run, tree):
    result, elapsed, _ = cold_run
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    found = json.loads(result.stdout)
    by_name: dict[str, list[dict]] = {}
    for finding in found:
        by_name.setdefault(Path(finding["path"]).name, []).append(finding)
    for name, line in BUGGY.items():
        assert [(d["line"], d["code"]) for d in by_name.get(name, [])] == [(line, "DL401")], name
    for name, (_, line, words) in UNPARSABLE.items():
        (error,) = by_name.get(name, [None])
        assert error is not None, f"{name}: no DL001"
        assert error["code"] == "DL001" and error["name"] == "parse-error", error
        assert words in error["message"], error["message"]
        if line is not None:
            assert error["line"] == line, (name, error)
        assert error["line"] >= 1 and error["column"] >= 1
    assert "empty.py" not in by_name and "notes.txt" not in by_name
    for finding in found:  # nothing from excluded folders, nothing through the cycle
        parts = Path(finding["path"]).relative_to(tree).parts
        assert not set(parts) & {*EXCLUDED, "loop"}, finding["path"]
    assert set(by_name) == {*BUGGY, *UNPARSABLE, "self_loop.py"}
    (loop,) = by_name["self_loop.py"]
    assert (loop["code"], loop["line"]) == ("DL001", 1) and "cannot read" in loop["message"]
    # Generous (a quiet 2-core machine takes well under a minute; a loaded one more):
    # libcst and its position metadata over the 180k-line file take most of it.
    assert elapsed < 240


def test_a_warm_run_and_a_serial_run_report_the_same(cold_run, tree, capsys, monkeypatch):
    result, _, cache = cold_run
    expected = json.loads(result.stdout)
    monkeypatch.setenv("DLLINT_CACHE_DIR", cache)
    code = main(["check", str(tree), "--format", "json", "--isolated", "-j", "2"])
    out, err = capsys.readouterr()
    assert (code, err) == (1, "") and json.loads(out) == expected
    # Serial, no cache; the 180k-line file is left out here (the cold run timed it).
    code = main(
        ["check", str(tree), "--format", "json", "--isolated", "-j", "1", "--no-cache"]
        + ["--extend-exclude", "huge.py"]
    )
    out, err = capsys.readouterr()
    assert (code, err) == (1, "")
    assert json.loads(out) == [d for d in expected if Path(d["path"]).name != "huge.py"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_an_unreadable_file_is_dl001(tmp_path, capsys):
    locked = tmp_path / "locked.py"
    locked.write_text(BUG, "utf-8")
    locked.chmod(0)
    try:
        code = main(["check", str(tmp_path), "--format", "json", "--isolated", "--no-cache"])
    finally:
        locked.chmod(0o644)
    found = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(d["code"], d["line"]) for d in found] == [("DL001", 1)]
    assert "cannot read" in found[0]["message"]


def test_a_file_removed_between_discovery_and_reading_is_dl001(tmp_path, monkeypatch):
    (tmp_path / "a_train.py").write_text(BUG, "utf-8")
    doomed = tmp_path / "b_gone.py"
    doomed.write_text(BUG, "utf-8")
    (tmp_path / "c_train.py").write_text(BUG, "utf-8")
    discover = dllint.engine.iter_source_files

    def discover_then_remove(*args, **kwargs):
        yield from discover(*args, **kwargs)
        doomed.unlink()  # after discovery, before any file is read

    monkeypatch.setattr(dllint.engine, "iter_source_files", discover_then_remove)
    report = check_paths([str(tmp_path)], all_rules())
    assert [(Path(f.path).name, f.line, f.code) for f in report.findings] == [
        ("a_train.py", BUG_LINE, "DL401"),
        ("b_gone.py", 1, "DL001"),
        ("c_train.py", BUG_LINE, "DL401"),
    ]
    assert "removed" in report.findings[1].message


def test_a_named_fifo_does_not_block(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.py")
    code = main(["check", str(tmp_path / "pipe.py"), "--isolated", "--no-cache"])
    out = capsys.readouterr().out
    assert code == 1 and "DL001" in out and "not a regular file" in out


# A rule that raises ------------------------------------------------------------------


@pytest.fixture
def broken_dl306(monkeypatch):
    """DL306 raises on every file it checks (it applies to BUG); DL401 still works."""
    rule = next(rule for rule in all_rules() if rule.code == "DL306")
    assert rule.applies_to(BUG)

    def broken(self):
        raise ValueError("unexpected node\nsecond line")
        yield

    monkeypatch.setattr(rule, "check", broken)
    return rule


@pytest.mark.parametrize("verbose", [False, True])
def test_a_failing_rule_is_dl002_the_other_rules_still_report(
    broken_dl306, tmp_path, capsys, verbose
):
    target = tmp_path / "train.py"
    target.write_text(BUG, "utf-8")
    argv = ["check", str(target), "--format", "json", "--isolated", "--no-cache", "-j", "1"]
    code = main(argv + ["--verbose"] * verbose)
    out, err = capsys.readouterr()
    found = json.loads(out)
    assert code == 2  # docs/usage.md: DL002 is an internal error
    assert [(d["line"], d["code"]) for d in found] == [(1, "DL002"), (BUG_LINE, "DL401")]
    failure = found[0]
    assert failure["path"] == str(target) and failure["name"] == "internal-error"
    assert "DL306" in failure["message"] and broken_dl306.name in failure["message"]
    assert "ValueError: unexpected node" in failure["message"] and "\n" not in failure["message"]
    if verbose:
        assert "Traceback (most recent call last)" in err and "def broken" not in out
        assert "raise ValueError" in err
    else:
        assert err == ""


def test_a_failing_rule_in_text_output_still_exits_2_with_exit_zero(broken_dl306, tmp_path, capsys):
    target = tmp_path / "train.py"
    target.write_text(BUG, "utf-8")
    code = main(["check", str(target), "--isolated", "--no-cache", "--exit-zero"])
    out, err = capsys.readouterr()
    assert code == 2 and err == "Found 2 findings (0 fixable).\n"
    assert [line.split(": ")[1].split()[0] for line in out.splitlines()] == ["DL002", "DL401"]


# Never runs the code it reads ----------------------------------------------------------


def _payload(marker: Path, tag: str) -> str:
    return f"open({str(marker)!r} + {tag!r}, 'w').write('ran')\n"


def test_checking_never_imports_or_runs_the_code(tmp_path):
    marker = tmp_path / "marker-"
    project = tmp_path / "project"
    package = project / "pkg"
    package.mkdir(parents=True)
    files = {
        "pkg/__init__.py": "",
        "pkg/train.py": "",
        "conftest.py": "",
        "setup.py": "",
        "torch.py": "",  # shadows the library if anything imported from the project
        "__main__.py": "",
    }
    for name in files:
        tag = name.replace("/", "_")
        body = "import torch\nimport os\n" + _payload(marker, tag) + BUG.split("\n", 2)[2]
        (project / name).write_text(body, "utf-8")
    (project / "evil.pth").write_text("import os; " + _payload(marker, "pth"), "utf-8")
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [{**cell, "source": "import torch\n" + _payload(marker, "ipynb") + "!touch x\n"}],
    }
    (project / "explore.ipynb").write_text(json.dumps(notebook), "utf-8")
    (project / "pyproject.toml").write_text("[tool.dllint]\nselect = ['DL4']\n", "utf-8")
    env = {**os.environ, "DLLINT_CACHE_DIR": str(tmp_path / "cache")}
    for argv in (["check", "."], ["check", ".", "-j", "2", "--format", "json"]):
        result = subprocess.run(
            [str(SCRIPT), *argv], cwd=project, capture_output=True, text=True, timeout=120, env=env
        )
        assert result.returncode == 1, result.stderr
        assert "DL401" in result.stdout
        if "--format" in argv:
            assert result.stderr == ""
        else:  # text mode ends with a summary on stderr, and nothing else
            assert re.fullmatch(r"Found \d+ findings? \(0 fixable\)\.\n", result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("marker-")) == []
