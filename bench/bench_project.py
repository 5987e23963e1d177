"""Benchmark: the project index on a generated 100-file project.

Usage: python bench/bench_project.py [--runs 5]

The project (written to a temporary folder) has 40 model modules (a block module
and a network each, some importing blocks from others), 40 training scripts that
import them (`from models.net_7 import Net7`), 19 utility modules and a
`pyproject.toml`. Timed, each in a fresh `dllint check` process, median of
`--runs`:

- cold: `--no-cache`;
- fully warm: every file served from the cache;
- one edit: after changing one model module, the warm re-run; it must re-check
  that module and the scripts that import it (counted by new cache entries) and
  take at most 2x the fully warm run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS, SCRIPTS, UTILS = 40, 40, 19

BLOCK = """\
import torch.nn as nn


class Block{i}(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(width)

    def forward(self, x):
        return self.norm(self.conv(x)).relu()
"""

NET = """\
import torch.nn as nn

from models.block_{i} import Block{i}
from models.block_{j} import Block{j}


class Net{i}(nn.Module):
    def __init__(self, width=16, classes=10):
        super().__init__()
        self.features = nn.Sequential(Block{i}(width), Block{j}(width), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))
"""

SCRIPT = """\
import torch
import torch.nn as nn

from models.net_{i} import Net{i}
from utils.util_{u} import log


def train(loader, epochs=3):
    model = Net{i}()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        log(epoch, loss.item())
"""

UTIL = """\
import json


def log(epoch, value):
    print(json.dumps({{"epoch": epoch, "loss": value, "id": {u}}}))
"""


def write_project(root: Path) -> None:
    (root / "pyproject.toml").write_text('[project]\nname = "generated"\nversion = "0"\n')
    for folder in ("models", "utils", "scripts"):
        (root / folder).mkdir()
        (root / folder / "__init__.py").write_text("")
    for i in range(MODELS // 2):
        (root / "models" / f"block_{i}.py").write_text(BLOCK.format(i=i))
    for i in range(MODELS // 2):
        j = (i + 1) % (MODELS // 2)
        (root / "models" / f"net_{i}.py").write_text(NET.format(i=i, j=j))
    for u in range(UTILS):
        (root / "utils" / f"util_{u}.py").write_text(UTIL.format(u=u))
    for s in range(SCRIPTS):
        text = SCRIPT.format(i=s % (MODELS // 2), u=s % UTILS)
        (root / "scripts" / f"train_{s}.py").write_text(text)


def run(root: Path, cache: Path, *flags: str) -> float:
    env = dict(os.environ, DLLINT_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "dllint", "check", ".", "--isolated", *flags]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"dllint failed: {done.stderr}")
    return elapsed


def entries(cache: Path) -> set[Path]:
    return set(cache.rglob("*.json"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root, cache = Path(folder) / "project", Path(folder) / "cache"
        root.mkdir()
        write_project(root)
        files = len(list(root.rglob("*.py")))
        run(root, cache, "--no-cache")  # bytecode, file cache
        cold = statistics.median(run(root, cache, "--no-cache") for _ in range(args.runs))
        run(root, cache)
        warm = statistics.median(run(root, cache) for _ in range(args.runs))
        edits, counts = [], []
        edited = root / "models" / "block_3.py"
        for n in range(args.runs):
            before = entries(cache)
            edited.write_text(BLOCK.format(i=3) + f"\nVERSION = {n}\n")
            edits.append(run(root, cache))
            counts.append(len(entries(cache) - before))
        edit = statistics.median(edits)
        print(f"project: {files} files")
        print(f"cold          {cold:6.3f} s")
        print(f"fully warm    {warm:6.3f} s")
        print(f"one edit      {edit:6.3f} s  ({edit / warm:.2f}x fully warm)")
        print(f"re-checked after one edit: {statistics.median(counts):.0f} files")
        print("(block_3.py is imported by net_3 and net_2; each net by 2 scripts: 1 + 2 + 4 = 7)")


if __name__ == "__main__":
    main()
