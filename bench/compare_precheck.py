"""Does the precheck (``dllint.precheck``) change any finding, and how much libcst work
does it save? On a folder (default: the installed torch package, found without
importing torch).

Usage: python bench/compare_precheck.py [FOLDER ...] [--select CODES] [--no-compare]

1. Counts the files and lines that reach libcst with the token test alone and with
   the precheck after it (deterministic: the work saved, whatever the machine's load).
2. Runs ``dllint check FOLDER --isolated --no-cache --format json`` twice, with the
   precheck and with ``DLLINT_NO_PRECHECK=1``, and compares the outputs byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_speed import torch_folder

from dllint.discovery import iter_source_files
from dllint.precheck import narrow
from dllint.registry import select_rules


def libcst_work(folder: Path, select: list[str] | None) -> None:
    rules = select_rules(select)
    files = lines = token_files = token_lines = kept_files = kept_lines = 0
    for path in iter_source_files([str(folder)]):
        if path.endswith(".ipynb"):
            continue
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
        count = text.count("\n")
        files += 1
        lines += count
        passing = [rule for rule in rules if rule.applies_to(text)]
        if not passing:
            continue
        token_files += 1
        token_lines += count
        narrowed = narrow(text, passing)
        if narrowed is None or narrowed[0]:
            kept_files += 1
            kept_lines += count
    print(f"{folder}: {files} files, {lines:,} lines ({len(rules)} rules)")
    print(f"  to libcst with the token test alone: {token_files} files, {token_lines:,} lines")
    print(
        f"  to libcst with the precheck too:     {kept_files} files, {kept_lines:,} lines "
        f"({kept_lines / max(token_lines, 1):.1%})"
    )


def run(folders: list[Path], disabled: bool, select: list[str] | None) -> tuple[float, bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DLLINT_NO_PRECHECK"}
    if disabled:
        env["DLLINT_NO_PRECHECK"] = "1"
    command = [sys.executable, "-m", "dllint", "check", *map(str, folders), "--isolated"]
    command += ["--no-cache", "--format", "json"]
    if select:
        command += ["--select", ",".join(select)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, env=env)
    return time.perf_counter() - start, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--select", help="rule codes or prefixes (default: the default rules)")
    parser.add_argument("--no-compare", action="store_true", help="only count the lines")
    args = parser.parse_args()
    folders = args.folders or [torch_folder()]
    select = args.select.split(",") if args.select else None
    for folder in folders:
        libcst_work(folder, select)
    if args.no_compare:
        return
    with_seconds, with_output = run(folders, disabled=False, select=select)
    without_seconds, without_output = run(folders, disabled=True, select=select)
    findings = json.loads(with_output)
    same = with_output == without_output
    print(
        f"  dllint check, cold: {with_seconds:.1f} s with the precheck, "
        f"{without_seconds:.1f} s without"
    )
    codes = sorted({f["code"] for f in findings})
    print(
        f"  identical findings: {'yes' if same else 'NO'} ({len(findings)} findings of "
        f"{len(codes)} codes {', '.join(codes)}; {len(without_output):,} bytes of JSON each)"
    )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
