"""Benchmark: lines per second of `dllint check` on real code that ships on the machine.

Usage: python bench/bench_check.py [--runs 5] [--target torch/nn] [PATH ...]

With no PATH it measures the installed torch package's `nn/` folder (found without
importing torch). Each run is a fresh `dllint check` process; the median of the runs
is reported, so a noisy shared machine disturbs the figure less. Exit code and
findings of dllint are ignored: only the time matters here.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def installed_package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{name} is not installed; `pip install torch==2.13.0` first")
    return Path(next(iter(spec.submodule_search_locations)))


def count_lines(root: Path) -> tuple[int, int]:
    files = lines = 0
    paths = [root] if root.is_file() else root.rglob("*.py")
    for path in paths:
        files += 1
        with open(path, "rb") as handle:
            lines += handle.read().count(b"\n")
    return files, lines


def time_run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--extra", default="", help="extra dllint check arguments")
    args = parser.parse_args()
    targets = [Path(p) for p in args.paths] or [installed_package_folder("torch") / "nn"]
    dllint = [sys.executable, "-m", "dllint", "check", *args.extra.split()]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for target in targets:
        files, lines = count_lines(target)
        times = [time_run([*dllint, str(target)]) for _ in range(args.runs)]
        median = statistics.median(times)
        print(
            f"{target}: {files} files, {lines} lines; median {median:.2f} s over {args.runs} runs "
            f"(min {min(times):.2f}, max {max(times):.2f}); {lines / median:,.0f} lines/s"
        )


if __name__ == "__main__":
    main()
