"""What a new user meets first: the README's commands on a machine without torch, and
``dllint explain`` from the installed wheel rather than from this checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dllint.runtime.cli as trace_cli
from dllint.cli import main

ROOT = Path(__file__).resolve().parent.parent

# Python with torch made unimportable (``find_spec`` answers None, ``import`` raises),
# as on a machine where only ``pip install ".[test]"`` ran.
WITHOUT_TORCH = "import sys; sys.modules['torch'] = None; "


def test_missing_script_is_reported_before_torch_is_looked_for(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(trace_cli, "torch_available", lambda: False)
    assert main(["trace", str(tmp_path / "absent.py")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_tracer_tests_skip_or_pass_without_torch():
    code = (
        WITHOUT_TORCH + "import pytest; raise SystemExit(pytest.main(["
        "'-q', '-p', 'no:cacheprovider', 'tests/test_trace.py', 'tests/test_trace_logic.py']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "failed" not in run.stdout and "error" not in run.stdout.lower()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from this checkout, unpacked where ``import dllint`` finds it
    (a copy of the sources is built, so the checkout gets no build/ or egg-info)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("dllint", "rules", "docs"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(work / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (work / "dist").glob("dllint-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def run_installed(site: Path, *args: str, prefix: str = "") -> subprocess.CompletedProcess:
    """``dllint ARGS`` with the unpacked wheel first on the path, run from an empty
    folder (so neither this checkout nor its docs folder can be found)."""
    env = {**os.environ, "PYTHONPATH": str(site), "DLLINT_CACHE_DIR": str(site / ".cache")}
    code = (
        prefix + "import sys, dllint; from dllint.cli import main; "
        f"assert dllint.__file__.startswith({str(site)!r}), dllint.__file__; "
        f"raise SystemExit(main({list(args)!r}))"
    )
    cwd = site.parent / "elsewhere"
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_installed_wheel_explains_every_rule_by_code_and_by_name(installed):
    """Every rule's page, asked for by code and by name, in one run of the wheel."""
    prefix = (
        "import contextlib, io, json\n"
        "from dllint.cli import main as run\n"
        "from dllint.registry import all_rules\n"
        "pages = {}\n"
        "for rule in all_rules():\n"
        "    for word in (rule.code, rule.name):\n"
        "        out = io.StringIO()\n"
        "        with contextlib.redirect_stdout(out):\n"
        "            pages[word] = (run(['explain', word]), out.getvalue()[:40])\n"
        "print(json.dumps(pages))\n"
    )
    checked = run_installed(installed, "rules", prefix=prefix)
    assert checked.returncode == 0, checked.stderr
    pages = json.loads(checked.stdout.splitlines()[0])
    from dllint.registry import all_rules

    assert len(pages) == 2 * len(all_rules())
    for rule in all_rules():
        for word in (rule.code, rule.name):
            assert pages[word][0] == 0, (word, checked.stderr)
            assert pages[word][1].startswith(f"# {rule.code}"), (word, pages[word])


def test_installed_wheel_checks_a_folder_without_torch(installed, tmp_path):
    (tmp_path / "train.py").write_text(
        "import torch\nfrom torch import nn\n\nmodel = nn.Linear(4, 2)\n"
        "crit = nn.CrossEntropyLoss()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x, y in loader:\n    loss = crit(model(x), y)\n    loss.backward()\n"
        "    opt.step()\n"
    )
    run = run_installed(installed, "check", str(tmp_path), "--no-cache", prefix=WITHOUT_TORCH)
    assert run.returncode == 1, run.stderr
    assert "DL401" in run.stdout


def test_readme_shows_a_folder_that_exists():
    readme = (ROOT / "README.md").read_text("utf-8")
    setup = readme[readme.index("## Set up") : readme.index("## Usage")]
    assert "dllint check ." in setup
    assert "dllint check src/" not in setup
