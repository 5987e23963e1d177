"""``dllint check --diff`` prints a patch that ``git apply`` and ``patch -p1`` apply, and
applying it gives the same bytes as ``--fix``: whatever the file's line endings,
encoding, final newline or form feeds, and however its path was written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HEAD = (
    "import torch\n"
    "import torch.nn as nn\n"
    "\n"
    "model = nn.Linear(4, 2)\n"
    "criterion = nn.CrossEntropyLoss()\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
)
LOOP = (
    "for x, y in loader:\n"
    "    optimizer.zero_grad()\n"
    "    loss = criterion(model(x), y)\n"
    "    loss.backward\n"
    "    optimizer.step()\n"
)
SOURCE = HEAD + LOOP


def _mixed(text: str) -> bytes:
    endings = ["\r\n", "\n", "\r"]
    lines = text.split("\n")[:-1]
    return "".join(line + endings[i % 3] for i, line in enumerate(lines)).encode()


FILES = {
    "no_final_newline.py": SOURCE.rstrip("\n").encode(),
    "crlf.py": SOURCE.replace("\n", "\r\n").encode(),
    "cr.py": SOURCE.replace("\n", "\r").encode(),
    "mixed.py": _mixed(SOURCE),
    "latin1.py": ("# -*- coding: latin-1 -*-\n# poids initialisés\n" + SOURCE).encode("latin-1"),
    "form_feed.py": (HEAD + "\x0c\n# next page\x0c\n" + LOOP).encode(),
    "sub/nested.py": SOURCE.encode(),
}


def dllint(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dllint", "check", "--isolated", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


def tree(folder: Path) -> Path:
    for name, data in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def fixed(tmp_path_factory) -> dict[str, bytes]:
    """What ``--fix`` writes, the reference a patch must reproduce."""
    folder = tree(tmp_path_factory.mktemp("fixed"))
    run = dllint(folder, "--fix", ".")
    assert run.returncode == 0, run.stderr.decode()
    return contents(folder)


def test_fix_keeps_each_files_bytes_but_the_fixed_line(fixed):
    for name, data in FILES.items():
        assert fixed[name] == data.replace(b"loss.backward\r", b"loss.backward()\r").replace(
            b"loss.backward\n", b"loss.backward()\n"
        ), name
    assert fixed["mixed.py"].count(b"\r\n") == FILES["mixed.py"].count(b"\r\n")


@pytest.mark.parametrize(
    "paths",
    [
        ["."],
        [
            "./no_final_newline.py",
            "./crlf.py",
            "cr.py",
            "mixed.py",
            "latin1.py",
            "form_feed.py",
            "./sub/nested.py",
        ],
        [
            "sub/../no_final_newline.py",
            "crlf.py",
            "cr.py",
            "mixed.py",
            "latin1.py",
            "form_feed.py",
            "sub/../sub/nested.py",
        ],
        ["ABSOLUTE"],
    ],
    ids=["folder", "dot-slash", "dot-dot", "absolute"],
)
@pytest.mark.parametrize("tool", ["git", "patch"])
def test_the_diff_applies_and_matches_fix(paths, tool, fixed, tmp_path):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    folder = tree(tmp_path)
    paths = [str(folder / name) for name in FILES] if paths == ["ABSOLUTE"] else paths
    run = dllint(folder, "--diff", *paths)
    assert run.returncode == 1, run.stderr.decode()
    patch = run.stdout
    assert patch.count(b"\n--- a/") + patch.startswith(b"--- a/") == len(FILES)
    assert (folder / "crlf.py").read_bytes() == FILES["crlf.py"], "--diff wrote a file"
    if tool == "git":
        command = ["git", "apply", "--unsafe-paths", "-p1", "-"]  # no repository needed
    else:
        command = ["patch", "-p1", "--batch", "--forward", "--binary"]
    applied = subprocess.run(command, cwd=folder, input=patch, capture_output=True, timeout=60)
    assert applied.returncode == 0, applied.stderr.decode() + applied.stdout.decode()
    assert contents(folder) == fixed


def test_diff_with_format_json_gives_json(tmp_path):
    folder = tree(tmp_path)
    run = dllint(folder, "--diff", "--format", "json", ".")
    rows = json.loads(run.stdout)
    assert sorted(row["path"].removeprefix("./") for row in rows) == sorted(FILES)
    assert all(row["fixes"] == 1 and row["diff"].startswith("--- a/") for row in rows)
