"""Benchmark: how fast `dllint check` is beside ruff, flake8 and TorchFix.

Usage: python bench/bench_speed.py [--runs 5] [--full-runs 3] [--torchfix-full]

Targets: the installed torch package's `nn/` folder and the whole `torch/` package
(found without importing torch; `pip install torch==2.13.0` first), and a copy of
`nn/` outside site-packages (`<tmp>/torch-nn-project/torch/nn`, a `pyproject.toml` at
the project's root) where the project index is on: files inside site-packages never
read their project, the copy's files do (`torch.nn.x` imports resolve in it); its
peers' medians are those measured on the installed `nn/` (they have no index). dllint runs
three ways: cold (`--no-cache`, one worker per core), warm (the cache filled by an
untimed run) and serial cold (`-j1`). Peers run cold: ruff (`--no-cache`), flake8
and TorchFix, each with its default rules and parallelism. flake8 and TorchFix are
installed into virtualenvs under ~/.cache/dllint-bench/ (TorchFix pins an older
libcst), created on first use and reused.

Every command runs once untimed first (it writes bytecode and warms the file
cache, as a second run in a developer's day would), then `--runs` timed times in a
fresh process; the median is reported. Peak memory is the largest resident set of
any process of a run (getrusage RUSAGE_CHILDREN in a wrapper process, so dllint's
workers count). dllint's JSON output must be identical in every mode.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dllint import __version__
from dllint.discovery import iter_source_files

PEERS_HOME = Path.home() / ".cache" / "dllint-bench"
# Runs a command, its stdout into a file; prints "seconds peak_kib exit_code".
WRAPPER = """\
import resource, subprocess, sys, time
with open(sys.argv[1], "wb") as out:
    start = time.perf_counter()
    code = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode
    elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


@dataclass
class Measure:
    name: str
    times: list[float] = field(default_factory=list)
    peak_kib: int = 0
    outputs: list[bytes] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def row(self) -> str:
        return (
            f"  {self.name:<16} median {self.median:7.3f} s  (min {min(self.times):.3f}, "
            f"max {max(self.times):.3f}, {len(self.times)} runs)  peak {self.peak_kib >> 10:4} MiB"
        )


def torch_folder() -> Path:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed; `pip install torch==2.13.0` first")
    return Path(next(iter(spec.submodule_search_locations)))


def peer_venv(name: str, package: str, executable: str) -> Path:
    """``executable`` from a virtualenv of its own holding ``package``."""
    folder = PEERS_HOME / f"{name}-venv"
    program = folder / "bin" / executable
    if not program.exists():
        print(f"installing {package} into {folder} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        subprocess.run(
            [str(folder / "bin" / "pip"), "install", "-q", package],
            check=True,
            stderr=subprocess.DEVNULL,
        )
    return program


def version(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    return (result.stdout or result.stderr).strip().splitlines()[0]


def count(target: Path) -> tuple[int, int]:
    files = lines = 0
    for path in iter_source_files([str(target)]):
        files += 1
        with open(path, "rb") as handle:
            lines += handle.read().count(b"\n")
    return files, lines


def run_once(command: list[str], env: dict) -> tuple[float, int, bytes]:
    with tempfile.NamedTemporaryFile() as out:
        result = subprocess.run(
            [sys.executable, "-c", WRAPPER, out.name, *command],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        seconds, peak, _ = result.stdout.split()
        return float(seconds), int(peak), Path(out.name).read_bytes()


def measure(name: str, command: list[str], runs: int, env: dict, prime_each=False) -> Measure:
    """``prime_each``: an untimed run right before every timed one (the warm runs,
    so a dllint source file edited meanwhile cannot leave a timed run cold)."""
    print(f"  ... {name}: {' '.join(command[-6:])}", flush=True)
    run_once(command, env)  # untimed: bytecode, file cache
    result = Measure(name)
    for _ in range(runs):
        if prime_each:
            run_once(command, env)
        seconds, peak, output = run_once(command, env)
        result.times.append(seconds)
        result.peak_kib = max(result.peak_kib, peak)
        result.outputs.append(output)
    return result


def dllint_modes(target: Path, runs: int, env: dict) -> dict:
    """dllint cold, warm and serial cold on ``target``."""
    dllint = [sys.executable, "-m", "dllint", "check", str(target), "--isolated"]
    dllint += ["--format", "json"]
    results = {
        "dllint cold": measure("dllint cold", [*dllint, "--no-cache"], runs, env),
        "dllint warm": None,
        "dllint cold -j1": measure("dllint cold -j1", [*dllint, "--no-cache", "-j1"], runs, env),
    }
    with tempfile.TemporaryDirectory() as cache:
        warm_env = {**env, "DLLINT_CACHE_DIR": cache}
        results["dllint warm"] = measure("dllint warm", dllint, runs, warm_env, prime_each=True)
    return results


def bench_target(target: Path, runs: int, peers: dict, env: dict, torchfix: bool) -> dict:
    files, lines = count(target)
    print(f"\n{target}: {files} files, {lines:,} lines", flush=True)
    results = dllint_modes(target, runs, env)
    results["ruff"] = measure(
        "ruff", [peers["ruff"], "check", "--isolated", "--no-cache", str(target)], runs, env
    )
    results["flake8"] = measure("flake8", [peers["flake8"], "--isolated", str(target)], runs, env)
    if torchfix:
        results["TorchFix"] = measure("TorchFix", [peers["torchfix"], str(target)], runs, env)
    report(results, lines)
    return results


def report(results: dict, lines: int) -> None:
    print()
    for measured in results.values():
        print(f"{measured.row()}   {lines / measured.median:>10,.0f} lines/s")
    peers = [m for name, m in results.items() if not name.startswith("dllint")]
    if peers:
        print("  ratios (dllint time / peer time):")
    for name, measured in results.items():
        if name.startswith("dllint") and peers:
            ratios = ", ".join(f"{p.name} {measured.median / p.median:.3f}x" for p in peers)
            print(f"    {name:<16} {ratios}")
    outputs = [out for name, m in results.items() if name.startswith("dllint") for out in m.outputs]
    findings = json.loads(outputs[0])
    same = all(output == outputs[0] for output in outputs)
    print(
        f"  identical findings in every dllint mode and run: {'yes' if same else 'NO'} "
        f"({len(findings)} findings, {len(outputs)} outputs compared)"
    )


def project_copy(nn: Path) -> Path:
    """``nn`` copied to ``<tmp>/torch-nn-project/torch/nn`` with a ``pyproject.toml`` at
    the project's root: the project index reads it (it never reads site-packages)."""
    root = Path(tempfile.mkdtemp(prefix="dllint-bench-")) / "torch-nn-project"
    shutil.copytree(nn, root / "torch" / "nn", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "torch" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text('[project]\nname = "torch-nn-copy"\nversion = "0"\n')
    return root


def bench_project(root: Path, runs: int, peers: dict, env: dict, small: dict) -> dict:
    files, lines = count(root)
    print(f"\n{root} (project index on): {files} files, {lines:,} lines", flush=True)
    results = dllint_modes(root, runs, env)
    results["ruff"] = measure(
        "ruff", [peers["ruff"], "check", "--isolated", "--no-cache", str(root)], runs, env
    )
    if "TorchFix" in small:
        results["TorchFix"] = small["TorchFix"]  # no index: the same files, the same time
    report(results, lines)
    return results


def verdict(small: dict, full: dict, fixtures: dict, project: dict | None = None) -> None:
    """The issue's bar, measured in this one run."""
    targets = [(small, "nn/")] + ([(project, "nn/ copy, index on")] if project else [])
    dllint_runs = [
        m for r in (small, full, project or {}) for n, m in r.items() if n.startswith("dllint")
    ]
    peak = max(m.peak_kib for m in dllint_runs) / 1024
    checks = []
    for results, where in targets:
        if "TorchFix" in results:
            ratio = results["dllint cold"].median / results["TorchFix"].median
            checks.append(
                (f"cold dllint on {where} = {ratio:.3f}x TorchFix (<= 0.1x)", ratio <= 0.1)
            )
        ratio = results["dllint warm"].median / results["ruff"].median
        checks.append((f"warm dllint on {where} = {ratio:.2f}x ruff cold (<= 3x)", ratio <= 3))
    if full:
        seconds = full["dllint cold"].median
        checks.append((f"whole torch/ cold in {seconds:.1f} s (< 60 s)", seconds < 60))
    checks.append((f"dllint peak memory {peak:.0f} MiB (< 1024 MiB)", peak < 1024))
    same = all(
        len({out for n, m in r.items() if n.startswith("dllint") for out in m.outputs}) == 1
        for r in (small, full, fixtures, project)
        if r
    )
    checks.append(
        ("identical findings in every mode (nn/, torch/, the nn/ copy, the fixtures)", same)
    )
    print("\nverdict:")
    for text, ok in checks:
        print(f"  [{'pass' if ok else 'FAIL'}] {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs on torch/nn")
    parser.add_argument("--full-runs", type=int, default=3, help="timed runs on torch/ (0: skip)")
    parser.add_argument("--no-torchfix", action="store_true", help="skip TorchFix on torch/nn")
    parser.add_argument(
        "--torchfix-full", action="store_true", help="also TorchFix on torch/ (many minutes)"
    )
    parser.add_argument(
        "--no-project", action="store_true", help="skip the nn/ copy with the project index on"
    )
    args = parser.parse_args()
    torch = torch_folder()
    bin_dir = Path(sys.executable).parent
    peers = {
        "ruff": str(bin_dir / "ruff") if (bin_dir / "ruff").exists() else shutil.which("ruff"),
        "flake8": str(peer_venv("flake8", "flake8", "flake8")),
    }
    if not args.no_torchfix:
        peers["torchfix"] = str(peer_venv("torchfix", "torchfix", "torchfix"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["DLLINT_CACHE_DIR"] = tempfile.mkdtemp(prefix="dllint-bench-catalog-")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores; dllint {__version__}; "
        f"{version([peers['ruff'], '--version'])}; flake8 {version([peers['flake8'], '--version'])}"
        + (f"; TorchFix {version([peers['torchfix'], '--version'])}" if "torchfix" in peers else "")
    )
    small = bench_target(torch / "nn", args.runs, peers, env, "torchfix" in peers)
    full = {}
    if args.full_runs:
        full = bench_target(torch, args.full_runs, peers, env, args.torchfix_full)
    project = None
    if not args.no_project:
        root = project_copy(torch / "nn")
        try:
            project = bench_project(root, args.runs, peers, env, small)
        finally:
            shutil.rmtree(root.parent, ignore_errors=True)
    fixtures = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    print(f"\n{fixtures} (findings to compare across modes; dllint only)", flush=True)
    on_fixtures = dllint_modes(fixtures, 2, env)
    report(on_fixtures, count(fixtures)[1])
    verdict(small, full, on_fixtures, project)
    shutil.rmtree(env["DLLINT_CACHE_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
