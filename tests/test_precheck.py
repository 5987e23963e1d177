"""The precheck (``dllint.precheck``) changes which files libcst parses, never what is
found: every fixture, single files and multi-file projects, gives the same findings
(fixes and their safety included) with it and without it."""

from __future__ import annotations

from pathlib import Path

import pytest

import dllint.precheck
import dllint.source
from dllint.engine import check_paths, check_text
from dllint.noqa import UnusedNoqa
from dllint.precheck import CONDITIONS, narrow, sketch
from dllint.registry import all_rules, rule_by_code

FIXTURES = Path(__file__).parent / "fixtures"
FOLDERS = sorted(
    [p for p in FIXTURES.iterdir() if p.is_dir() and p.name != "projects"]
    + [p for p in (FIXTURES / "projects").iterdir() if p.is_dir()]
)
PY_FILES = sorted(p for p in FIXTURES.rglob("*.py"))


def as_json(findings) -> list[dict]:
    return [f.to_json() for f in findings]


@pytest.fixture
def without_precheck(monkeypatch):
    def run(function, *args, **kwargs):
        with monkeypatch.context() as patch:
            patch.setattr(dllint.precheck, "DISABLED", True)
            return function(*args, **kwargs)

    return run


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_findings_equal_those_without_the_precheck(folder, without_precheck):
    rules = [*all_rules(), UnusedNoqa]  # every rule, DL003 too
    with_it = as_json(check_paths([str(folder)], rules).findings)
    without_it = as_json(without_precheck(check_paths, [str(folder)], rules).findings)
    assert with_it == without_it
    if folder.parent == FIXTURES and folder.name.startswith("DL"):
        assert any(f["code"] == folder.name for f in with_it)  # something to compare


def test_fixes_equal_those_without_the_precheck(without_precheck):
    """The exact parse ``--fix`` uses: the same findings and the same fixes."""
    rules = all_rules()
    differences = []
    for path in PY_FILES:
        text = path.read_text(encoding="utf-8")
        with_it = check_text(text, str(path), rules, exact=True)
        without_it = without_precheck(check_text, text, str(path), rules, exact=True)
        if as_json(with_it) != as_json(without_it) or [f.edit is None for f in with_it] != [
            f.edit is None for f in without_it
        ]:
            differences.append(str(path.relative_to(FIXTURES)))
    assert differences == []


def test_the_precheck_is_not_a_no_op_on_the_fixtures():
    """Some rules the token test lets run are dropped, and some files are not parsed."""
    rules = all_rules()
    dropped = skipped = 0
    for path in PY_FILES:
        text = path.read_text(encoding="utf-8")
        passing = [rule for rule in rules if rule.applies_to(text)]
        narrowed = narrow(text, passing)
        if passing and narrowed is not None:
            dropped += len(passing) - len(narrowed[0])
            skipped += not narrowed[0]
    assert dropped >= 100 and skipped >= 3


class TestSketch:
    def test_docstrings_and_comment_lines_are_not_code(self):
        drawn = sketch(
            'def f():\n    """Use it as\n\n    loss = log(softmax(x))\n    """\n'
            "    # softmax again\n    return 1  # sigmoid\n"
        )
        assert "softmax" not in drawn.words and "log" not in drawn.words
        assert "sigmoid" in drawn.words  # a comment after code is kept: wide, not exact

    def test_code_on_a_string_first_or_last_line_is_code(self):
        drawn = sketch('x = log("""a\nb\nc""", softmax)\ny = """\n#x\n#z""".exp()\n')
        assert {"log", "softmax", "exp"} <= drawn.words

    def test_code_inside_a_multi_line_f_string_is_code(self):
        drawn = sketch('print(f"""\n{torch.log(p.softmax(1))}\n""")\n')
        assert {"log", "softmax"} <= drawn.words
        assert "log" in drawn.attribute_calls

    def test_lone_carriage_returns_end_lines(self):
        drawn = sketch('s = """a\rb\rsoftmax\r"""\rlog(x)\r')
        assert "log" in drawn.words and "softmax" not in drawn.words

    def test_calls_bare_attributes_and_aliases(self):
        drawn = sketch(
            "from torch.nn.functional import softmax as sm\nimport random\n"
            "pick = random.shuffle\nmodel.eval\npick(xs)\npick(ys)\nsm(x)\n"
        )
        assert drawn.bare_attributes == {"eval"}
        assert drawn.calls_any(["softmax"]) and drawn.calls_any(["softmax"], drawn.undimmed_calls)
        assert drawn.count_calls(["shuffle"]) == 2
        assert not sketch("F.softmax(x, dim=1)\nF.softmax(*a)\n").calls_any(
            ["softmax"], set(sketch("F.softmax(x, dim=1)\nF.softmax(*a)\n").undimmed_calls)
        )

    def test_module_classes_through_imports_assignments_and_other_classes(self):
        drawn = sketch(
            "from torch.nn import Module as M\nBase = M\nclass A(Base): pass\n"
            "class B(A): pass\nclass C(object): pass\nclass D(pl.LightningModule): pass\n"
        )
        assert {node.name for node in drawn.module_classes} == {"A", "B", "D"}
        assert sketch("class C(Thing): pass\nimport torch.nn\n").module_classes == []

    def test_no_sketch_for_what_cpython_cannot_parse(self):
        assert sketch("def f(:\n") is None
        assert narrow("def f(:\n", all_rules()) is None


def test_every_condition_names_a_rule():
    for code in CONDITIONS:
        assert rule_by_code(code).code == code


def test_a_file_no_condition_holds_for_is_not_parsed(monkeypatch):
    parsed = []
    original = dllint.source.parse_for_check

    def counting(text, slim=True):
        parsed.append(text)
        return original(text, slim)

    monkeypatch.setattr(dllint.source, "parse_for_check", counting)
    text = '"""Call loss.backward() then optimizer.step()."""\nimport torch\n'
    rules = [rule_by_code("DL401"), rule_by_code("DL406")]
    assert all(rule.applies_to(text) for rule in rules)  # the token test lets it through
    assert check_text(text, "a.py", rules) == []
    assert parsed == []
    text += "loss.backward()\noptimizer.step()\n"
    check_text(text, "a.py", rules)
    assert len(parsed) == 1


def test_a_skipped_file_still_reports_unused_noqa_and_deep_nesting(without_precheck):
    rules = [rule_by_code("DL401"), UnusedNoqa]
    text = "import torch\nloss = 1  # noqa: DL401\n# backward step\n"
    found = check_text(text, "a.py", rules)
    assert [f.code for f in found] == ["DL003"]
    assert as_json(found) == as_json(without_precheck(check_text, text, "a.py", rules))
    deep = "import torch\n# backward step\nx = " + "(" * 150 + "1" + ")" * 150 + "\n"
    found = check_text(deep, "a.py", rules)
    assert as_json(found) == as_json(without_precheck(check_text, deep, "a.py", rules))
