"""The speed machinery changes nothing a user sees: the prefilter, worker processes,
the cache and the fast tree walk all give the findings a plain serial run gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest

from dllint.analysis import tree as tree_module
from dllint.analysis.tree import TreeIndex
from dllint.cache import Cache
from dllint.cli import main
from dllint.engine import check_paths, check_text
from dllint.prefilter import applies, groups
from dllint.registry import all_rules
from dllint.rule import Rule

FIXTURES = Path(__file__).parent / "fixtures"
FILES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".py", ".ipynb"))
PY_FILES = [p for p in FILES if p.suffix == ".py"]


def as_json(findings) -> list[dict]:
    return [f.to_json() for f in findings]


@pytest.fixture(scope="module")
def serial() -> list[dict]:
    return as_json(check_paths([str(FIXTURES)], all_rules(), jobs=1).findings)


def test_the_fixtures_have_findings_to_compare(serial):
    assert len({d["code"] for d in serial}) >= 5 and any("cell" in d for d in serial)


def test_parallel_run_equals_serial_run(serial):
    report = check_paths([str(FIXTURES)], all_rules(), jobs=3)
    assert as_json(report.findings) == serial
    assert all(f.edit is None for f in report.findings)  # fixes do not cross processes


def test_cold_and_warm_cached_runs_equal_serial_run(serial, tmp_path):
    cold = check_paths([str(FIXTURES)], all_rules(), jobs=2, cache=Cache(tmp_path))
    assert as_json(cold.findings) == serial
    entries = list(tmp_path.rglob("*.json"))
    assert len(entries) == len(FILES)
    warm = check_paths([str(FIXTURES)], all_rules(), jobs=1, cache=Cache(tmp_path))
    assert as_json(warm.findings) == serial
    assert warm.files == cold.files == len(FILES)


def test_command_line_output_is_identical_in_every_mode(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DLLINT_CACHE_DIR", str(tmp_path))
    outputs = []
    for flags in (["--no-cache", "-j1"], ["--no-cache", "-j2"], [], [], ["-j1"]):
        code = main(["check", str(FIXTURES), "--isolated", "--format", "json", *flags])
        outputs.append((code, capsys.readouterr().out))
    assert outputs[0][0] == 1 and json.loads(outputs[0][1])
    assert all(output == outputs[0] for output in outputs)


# The prefilter ---------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_prefilter_hides_no_finding(path, monkeypatch):
    """Every rule's ``needs`` holds in every fixture it fires on: the findings with the
    prefilter equal those of every rule run on every file."""
    rules = all_rules()
    filtered = as_json(check_paths([str(path)], rules).findings)
    monkeypatch.setattr(Rule, "applies_to", classmethod(lambda cls, text: True))
    unfiltered = as_json(check_paths([str(path)], rules).findings)
    assert filtered == unfiltered


def test_needs_spellings():
    assert groups(()) == ()
    assert groups(("a", "b")) == (("a", "b"),)
    assert groups((("a",), ("b", "c"))) == (("a",), ("b", "c"))
    with pytest.raises(TypeError):
        groups(("a", ("b",)))
    assert applies((), "anything")
    assert applies(("x", "backward"), "loss.backward()")
    assert not applies((("backward",), ("step",)), "loss.backward()")
    assert applies((("backward",), ("step",)), "loss.backward()\nopt.step()")


def test_every_rule_declares_needs_in_a_valid_spelling():
    for rule in all_rules():
        assert groups(rule.needs), rule.code  # an empty needs would parse every file


class Counting(Rule):
    code, name, summary = "DL999", "counting", "test rule"
    needs = (("backward",), ("step",))
    checked = 0

    def check(self):
        Counting.checked += 1
        return iter(())


def test_a_file_no_rule_needs_is_not_parsed(monkeypatch):
    parsed = []
    import dllint.source

    original = dllint.source.parse_for_check

    def counting(text, slim=True):
        parsed.append(text)
        return original(text, slim)

    monkeypatch.setattr(dllint.source, "parse_for_check", counting)
    assert check_text("loss.backward()\n", "a.py", [Counting]) == []
    assert parsed == [] and Counting.checked == 0
    assert check_text("loss.backward()\nopt.step()\n", "b.py", [Counting]) == []
    assert len(parsed) == 1 and Counting.checked == 1


def test_a_broken_file_no_rule_needs_is_still_dl001_with_the_same_message():
    broken = "import torch\nx = (1,\ny = 2\n"
    unparsed = check_text(broken, "a.py", [Counting])
    parsed = check_text(broken + "loss.backward(); opt.step()\n", "a.py", [Counting])
    assert [f.code for f in unparsed] == ["DL001"]
    assert (unparsed[0].line, unparsed[0].message) == (parsed[0].line, parsed[0].message)


def test_syntax_libcst_accepts_is_not_dl001_when_skipped(monkeypatch):
    """CPython may object to syntax newer than itself; libcst then decides."""
    import builtins

    def failing_compile(*args, **kwargs):
        raise SyntaxError("too new for this Python")

    monkeypatch.setattr(builtins, "compile", failing_compile)
    assert check_text("x = 1\n", "a.py", [Counting]) == []


# The tree walk ---------------------------------------------------------------------


class _Visitor(cst.CSTVisitor):
    """The straightforward index: libcst's own visit, as the tree walk used to be."""

    def __init__(self) -> None:
        self.order, self.last, self.parent, self.stack = {}, {}, {}, []

    def on_visit(self, node) -> bool:
        self.order[node] = len(self.order)
        if self.stack:
            self.parent[node] = self.stack[-1]
        self.stack.append(node)
        return True

    def on_leave(self, node) -> None:
        self.stack.pop()
        self.last[node] = len(self.order) - 1


TRICKY = """\
from . import (a, b as c)
from x import *
print(f"{value!r:>{width}} {other=}", rf"\\d{n}")
async def f(*args, x: int = 1, **kw) -> list[int]:
    async with a as b, c:
        return [y async for y in z if y] or {k: v for k, v in w} or (lambda q=1: q)
match command:
    case [Point(x=0, y=0), *rest] | {"k": _} if rest:
        pass
try:
    del a[1:2, ::3], b.c
except* (E1, E2) as e:
    raise E from e
global g; nonlocal_ = yield_ = None
@decorator(arg)
class K(Base, metaclass=M):
    x: int = 0
"""


def _compare(module: cst.Module) -> None:
    expected = _Visitor()
    module.visit(expected)
    index = TreeIndex(module)
    assert list(index.order.items()) == list(expected.order.items())
    assert index.last == expected.last and index.parent == expected.parent
    kinds = {}
    for node in expected.order:
        kinds.setdefault(type(node), []).append(node)
    assert dict(index.by_type) == kinds


@pytest.mark.parametrize("path", PY_FILES[::3], ids=lambda p: str(p.relative_to(FIXTURES)))
def test_tree_index_walks_like_libcst_visit(path):
    _compare(cst.parse_module(path.read_text("utf-8")))


def test_tree_index_on_rare_syntax_and_without_libcst_sources(monkeypatch):
    module = cst.parse_module(TRICKY)
    _compare(module)
    monkeypatch.setattr(tree_module, "_CHILD_FIELDS", {})
    monkeypatch.setattr(tree_module.inspect, "getsource", _no_source)
    _compare(module)  # falls back to node.children


def _no_source(obj):
    raise OSError("no source")


# Startup -----------------------------------------------------------------------------


def test_a_run_served_from_the_cache_imports_neither_libcst_nor_the_rules(tmp_path):
    source = tmp_path / "train.py"
    source.write_text((FIXTURES / "DL401").joinpath("pos_plain_loop.py").read_text("utf-8"))
    script = (
        "import sys\nfrom dllint.cli import main\n"
        f"code = main(['check', {str(source)!r}, '--isolated', '-j1'])\n"
        "print(code, 'libcst' in sys.modules, 'dllint.rules' in sys.modules)\n"
    )
    env = {"DLLINT_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
        for _ in range(2)
    ]
    cold, warm = (run.stdout.splitlines() for run in runs)
    assert cold[:-1] == warm[:-1] and cold[:-1]  # the same findings
    assert cold[-1] == "1 True True"
    assert warm[-1] == "1 False False"


def test_a_few_small_files_are_checked_without_workers(tmp_path, monkeypatch):
    """A warm re-run after editing a file or two: starting worker processes (each
    importing libcst and the rules) would cost more than checking in this one, so it
    does not, and the findings are those a parallel run gives (no fixes attached)."""
    from dllint import engine

    source = next(p for p in PY_FILES if p.parent.name == "DL401" and p.name.startswith("pos_"))
    (tmp_path / "train.py").write_text(source.read_text())

    def no_workers(*args, **kwargs):
        raise AssertionError("worker processes started for a few small files")

    monkeypatch.setattr(engine, "parallel_map", no_workers)
    report = check_paths([str(tmp_path)], all_rules(), jobs=2)
    assert report.findings and all(f.edit is None for f in report.findings)
    monkeypatch.setattr(engine, "SERIAL_BYTES", 0)
    with pytest.raises(AssertionError, match="worker processes"):
        check_paths([str(tmp_path)], all_rules(), jobs=2)
