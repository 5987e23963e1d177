"""No data and no run lost: ``--fix`` writes all or nothing (a full disk leaves the old
file), one unwritable file does not end the run, a worker killed with SIGKILL does not
hang ``-j``, SIGTERM prints no tracebacks, and the cache serves only what it stored for
the bytes it analysed, in the shape it wrote."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dllint.engine
from dllint.cache import Cache
from dllint.cli import main
from dllint.engine import check_file, check_paths
from dllint.finding import Finding
from dllint.parallel import parallel_map
from dllint.registry import all_rules, rule_by_code

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
RULES = [rule for rule in all_rules() if rule.default_enabled]

# DL503 with a safe fix: `loss.backward` becomes `loss.backward()`.
FIXABLE = """\
import torch
import torch.nn as nn

model = nn.Linear(4, 2)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward
    optimizer.step()
"""


def _in_subprocess(code: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# -- --fix writes atomically, and goes on past a file it cannot write --------------------
def test_a_full_disk_leaves_the_old_file_and_the_run_goes_on(tmp_path):
    small = tmp_path / "a_small.py"
    small.write_text(FIXABLE)
    big = tmp_path / "b_big.py"
    padding = "".join(f"# padding line {i:06d} " + "x" * 60 + "\n" for i in range(3000))
    big.write_text(FIXABLE + padding)  # about 250 KB
    before = big.read_bytes()
    limit = 100_000  # bytes any file this process writes may hold: the big one cannot fit
    run = _in_subprocess(
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "from dllint.cli import main\n"
        "sys.exit(main(['check', '--fix', '--isolated', '--no-cache', '-j1', '.']))\n",
        tmp_path,
    )
    assert big.read_bytes() == before, "the file that could not be written was damaged"
    assert "    loss.backward()\n" in small.read_text(), "the file after it was not fixed"
    assert f"{big.name}: cannot write the fixed file" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.returncode == 2
    assert f"{big.name}:10:5: DL503" in run.stdout  # still reported: it was not fixed
    assert sorted(p.name for p in tmp_path.iterdir()) == [small.name, big.name]  # no temp


def test_fix_keeps_the_mode_bits_and_a_symlink(tmp_path, capsys):
    target = tmp_path / "train.py"
    target.write_text(FIXABLE)
    target.chmod(0o754)
    link = tmp_path / "link.py"
    link.symlink_to(target.name)
    main(["check", "--fix", "--isolated", "--no-cache", str(link)])
    capsys.readouterr()
    assert "    loss.backward()\n" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o754
    assert link.is_symlink()


# -- a killed worker --------------------------------------------------------------------
def _kill_own_worker(item):
    """SIGKILL the worker process computing ``item`` when it is "killer" (in the parent,
    which computes what the pools lost, it returns normally)."""
    parent, value = item
    if value == "killer" and os.getpid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return value.upper()


def test_a_worker_killed_with_sigkill_does_not_hang_the_run():
    items = [(os.getpid(), value) for value in ["a", "b", "killer", "c", "d", "e"]]
    started = time.monotonic()
    assert parallel_map(_kill_own_worker, items, 2) == ["A", "B", "KILLER", "C", "D", "E"]
    assert time.monotonic() - started < 60


def test_check_j2_finishes_when_a_worker_is_killed(tmp_path, capsys, monkeypatch):
    from dllint import engine

    monkeypatch.setattr(engine, "SERIAL_BYTES", 0)  # workers even for these few bytes
    for name in ("a.py", "b.py", "killer.py", "c.py"):
        (tmp_path / name).write_text(FIXABLE)
    rule = rule_by_code("DL503")
    original = rule.check
    parent = os.getpid()

    def check(self):
        if self.facts.path.endswith("killer.py") and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return original(self)

    monkeypatch.setattr(rule, "check", check)
    code = main(["check", "-j2", "--isolated", "--no-cache", "--format", "json", str(tmp_path)])
    found = json.loads(capsys.readouterr().out)
    assert code == 1
    assert sorted(Path(f["path"]).name for f in found if f["code"] == "DL503") == [
        "a.py",
        "b.py",
        "c.py",
        "killer.py",
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_j2_prints_no_worker_tracebacks(tmp_path, signum):
    body = FIXTURES / "DL401" / "pos_plain_loop.py"
    for number in range(80):
        (tmp_path / f"train_{number:02d}.py").write_text(body.read_text() * 20)
    process = subprocess.Popen(
        [sys.executable, "-m", "dllint", "check", "-j2", "--isolated", "--no-cache", "."],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if children.exists() and len(children.read_text().split()) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # the workers are checking files
    if process.poll() is not None:
        pytest.skip("the run ended before it could be interrupted")
    os.killpg(process.pid, signum)  # as a terminal or a job scheduler sends it
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err[-3000:]
    if signum == signal.SIGINT:
        assert process.returncode == 130


# -- the cache --------------------------------------------------------------------------
NOTEBOOK_BUG = FIXTURES / "DL301" / "pos_notebook_sequential.ipynb"


def _clean_notebook() -> bytes:
    document = json.loads(NOTEBOOK_BUG.read_text("utf-8"))
    for cell in document["cells"]:
        cell["source"] = "x = 1\n" if cell.get("cell_type") == "code" else cell["source"]
    return json.dumps(document).encode()


def test_the_cache_stores_the_findings_of_the_bytes_it_hashed(tmp_path, monkeypatch):
    """The notebook changes between the read the key hashes and the analysis: the
    entry under the first bytes' key must hold those bytes' findings."""
    notebook = tmp_path / "nb.ipynb"
    notebook.write_bytes(NOTEBOOK_BUG.read_bytes())  # what is on disk: a bug
    clean = _clean_notebook()  # what the key was computed from
    cache = Cache(tmp_path / "cache", fingerprint="f")
    read = dllint.engine._read_bytes
    monkeypatch.setattr(
        dllint.engine,
        "_read_bytes",
        lambda path, failure: clean if failure is OSError else read(path, failure),
    )
    check_paths([str(notebook)], RULES, cache=cache)
    monkeypatch.undo()
    notebook.write_bytes(clean)
    assert check_paths([str(notebook)], RULES, cache=cache).findings == []


@pytest.mark.parametrize(
    "entry",
    [
        [{"code": "DL401", "name": "n", "message": "m", "path": "x.py", "line": "2", "column": 1}],
        [
            {
                "code": "DL401",
                "name": "n",
                "message": "m",
                "path": "x.py",
                "line": 2,
                "column": 1,
                "invented": True,
            }
        ],
        [{"code": "DL401", "name": "n", "message": "m", "path": "x.py", "line": True, "column": 1}],
        [
            {
                "code": "DL401",
                "name": "n",
                "message": "m",
                "path": "x.py",
                "line": 2,
                "column": 1,
                "cell": "1",
            }
        ],
        {"code": "DL401"},
        ["DL401"],
    ],
)
def test_an_entry_of_the_wrong_shape_is_dropped(tmp_path, entry):
    cache = Cache(tmp_path, fingerprint="f")
    cache.put("k", [])
    (tmp_path / "f" / "k.json").write_text(json.dumps(entry))
    assert cache.get("k") is None


def test_a_deeply_nested_entry_is_dropped(tmp_path):
    cache = Cache(tmp_path, fingerprint="f")
    cache.put("k", [])
    (tmp_path / "f" / "k.json").write_text("[" * 100_000 + "]" * 100_000)
    assert cache.get("k") is None


def test_entries_round_trip_every_field(tmp_path):
    cache = Cache(tmp_path, fingerprint="f")
    finding = Finding("x.py", 2, 3, "DL503", "n", "m", 2, 9, "error", 4, "call it", "unsafe")
    cache.put("k", [finding])
    (back,) = cache.get("k")
    assert back.to_json() == finding.to_json()


def test_a_tampered_entry_is_recomputed_in_a_real_run(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(FIXABLE)
    cache = Cache(tmp_path / "cache", fingerprint="f")
    fresh = check_paths([str(path)], RULES, cache=cache).findings
    (entry,) = (tmp_path / "cache" / "f").glob("*.json")
    stored = json.loads(entry.read_text())
    stored[0]["line"] = str(stored[0]["line"])
    entry.write_text(json.dumps(stored))
    again = check_paths([str(path)], RULES, cache=cache).findings
    assert [f.to_json() for f in again] == [f.to_json() for f in fresh]
    assert [f.to_json() for f in fresh] == [
        {**f.to_json()} for f in check_file(str(path), RULES) if f.code == "DL503"
    ]
