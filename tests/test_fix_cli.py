"""``dllint check --fix`` and ``--diff`` as a user runs them, over every fixture.

A fixed file must parse, a second ``--fix`` must change nothing, and no fixable
finding may be left; ``--diff`` prints a unified diff and writes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import libcst as cst
import pytest

from dllint.cli import main
from dllint.engine import check_file
from dllint.registry import all_rules

FIXTURES = Path(__file__).parent / "fixtures"
PY_FILES = sorted(FIXTURES.rglob("*.py"))
RULES = list(all_rules())


def fixable(path: Path) -> list:
    return [f for f in check_file(str(path), RULES) if f.fix]


FIXABLE = [path for path in PY_FILES if fixable(path)]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv, "--isolated", "--no-cache"])
    out, err = capsys.readouterr()
    return code, out, err


def test_some_fixtures_offer_fixes():
    fixable_codes = {f.code for path in FIXABLE for f in fixable(path)}
    assert fixable_codes == {rule.code for rule in RULES if rule.fixable}


@pytest.mark.parametrize("fixture", FIXABLE, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fix_parses_is_idempotent_and_removes_the_fixable_findings(fixture, tmp_path, capsys):
    target = tmp_path / fixture.name
    shutil.copyfile(fixture, target)
    before = target.read_bytes()
    offered = fixable(target)

    code, out, err = run(capsys, "--diff", str(target))
    assert code == 1 and out.startswith(f"--- a/{target}\n+++ b/{target}\n"), out
    assert target.read_bytes() == before, "--diff wrote the file"
    assert "would fix" in err

    run(capsys, "--fix", str(target))
    fixed = target.read_bytes()
    assert fixed != before
    cst.parse_module(fixed)  # still Python
    assert fixable(target) == []
    after = [f.code for f in check_file(str(target), RULES)]
    for code in {f.code for f in offered}:
        # the fixed findings are gone (lines may shift, so counted per code)
        assert after.count(code) <= len(
            [f for f in check_file(str(fixture), RULES) if f.code == code]
        ) - len([f for f in offered if f.code == code])

    run(capsys, "--fix", str(target))
    assert target.read_bytes() == fixed, "a second --fix changed the file again"
    code, out, _ = run(capsys, "--diff", str(target))
    assert out == ""


def test_fix_keeps_crlf_and_the_rest_of_the_file(tmp_path, capsys):
    source = FIXABLE[0].read_text("utf-8")
    target = tmp_path / "crlf.py"
    target.write_bytes(("# a comment the fix must keep\n" + source).replace("\n", "\r\n").encode())
    run(capsys, "--fix", str(target))
    data = target.read_bytes()
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert data.startswith(b"# a comment the fix must keep\r\n")


def test_noqa_keeps_a_fix_out(tmp_path, capsys):
    fixture = FIXABLE[0]
    finding = fixable(fixture)[0]
    lines = fixture.read_text("utf-8").splitlines(keepends=True)
    line = lines[finding.line - 1].rstrip("\n")
    line = line.split("# expect")[0].rstrip()
    lines[finding.line - 1] = f"{line}  # noqa: {finding.code}\n"
    target = tmp_path / "noqa.py"
    target.write_text("".join(lines), "utf-8")
    before = target.read_text("utf-8")
    run(capsys, "--fix", "--select", finding.code, str(target))
    after = target.read_text("utf-8")
    assert after.splitlines()[finding.line - 1] == before.splitlines()[finding.line - 1]


def test_text_output_marks_fixable_findings(capsys):
    code, out, _ = run(capsys, str(FIXABLE[0]))
    assert code == 1
    assert " [*] " in out and out.endswith("fixable with `dllint check --fix`\n")


def test_fix_and_diff_together_is_a_usage_error(capsys):
    code, _, err = run(capsys, "--fix", "--diff", str(FIXABLE[0]))
    assert code == 2 and "choose one" in err


def test_rules_lists_which_rules_can_fix(capsys):
    assert main(["rules"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    for rule in RULES:
        assert ("fix" in rows[rule.code]) == rule.fixable, rule.code
        assert rule.severity in rows[rule.code]
