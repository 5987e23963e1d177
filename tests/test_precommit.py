"""The pre-commit hook, through the real ``pre-commit try-repo``: it installs this
project into its own virtualenv (from a snapshot of the working tree) and runs the
``dllint`` hook on the files staged in a throwaway repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BIN = Path(sys.executable).parent
MARKER = re.compile(r"#\s*expect:\s*(DL\d{3})")
SHIPPED = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "dllint", "rules", "docs")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(*args: str, cwd: Path) -> None:
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> Path:
    """A git repository holding this working tree's shippable files (so the test
    checks what is on disk, whether or not this checkout is itself a git repo)."""
    repo = tmp_path_factory.mktemp("hook-repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SHIPPED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=ignore)
        else:
            shutil.copy2(source, repo / name)
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "snapshot", cwd=repo)
    return repo


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory) -> Path:
    """One cache for the module: the hook's virtualenv is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def try_repo(project: Path, hook_repo: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home)}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [str(BIN / "pre-commit"), "try-repo", str(hook_repo), "dllint", "--color", "never"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def staged_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    git("init", "-q", cwd=root)
    for name, text in files.items():
        (root / name).write_text(text, "utf-8")
    git("add", *files, cwd=root)
    return root


def positive(code: str) -> Path:
    for path in sorted((FIXTURES / code).glob("pos_*.py")):
        if set(MARKER.findall(path.read_text("utf-8"))) == {code}:
            return path
    raise AssertionError(code)


def notebook_with_a_bug() -> str:
    cells = [
        "import torch\nimport torch.nn as nn\n%matplotlib inline",
        "model = nn.Linear(4, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)",
        "for x in torch.randn(10, 8, 4):\n"
        "    loss = model(x).pow(2).mean()\n"
        "    loss.backward()\n"
        "    opt.step()",
    ]
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "metadata": {}, "outputs": [], "source": c} for c in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_a_buggy_staged_file_fails_the_hook_and_shows_the_finding(
    tmp_path, hook_repo, pre_commit_home
):
    source = positive("DL401")
    project = staged_project(
        tmp_path / "project",
        {"train.py": source.read_text("utf-8"), "explore.ipynb": notebook_with_a_bug()},
    )
    result = try_repo(project, hook_repo, pre_commit_home)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert re.search(r"^dllint\.+Failed$", output, re.MULTILINE), output
    for number, line in enumerate(source.read_text("utf-8").splitlines(), start=1):
        if MARKER.search(line):
            assert re.search(
                rf"^train\.py:{number}:\d+: DL401 \[missing-zero-grad\] ", output, re.M
            )
    assert re.search(r"^explore\.ipynb:cell 3:4:5: DL401 \[missing-zero-grad\] ", output, re.M)


def test_a_clean_staged_file_passes(tmp_path, hook_repo, pre_commit_home):
    clean = sorted((FIXTURES / "DL401").glob("neg_*.py"))[0]
    project = staged_project(tmp_path / "project", {"train.py": clean.read_text("utf-8")})
    result = try_repo(project, hook_repo, pre_commit_home)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"^dllint\.+Passed$", output, re.MULTILINE), output
