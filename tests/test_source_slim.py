"""Huge files: dead top-level constants are not handed to libcst, and nothing else
changes (positions, findings, what --fix writes)."""

from __future__ import annotations

from dllint.cli import main
from dllint.engine import check_text
from dllint.registry import all_rules
from dllint.source import SLIM_FROM_LINES, parse_for_check

BUG = """import torch
from torch import nn

model = nn.Linear(4, 2)
crit = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
for x, y in loader:
    loss = crit(model(x), y)
    loss.backward()
    opt.step()
"""


def huge(lines: int) -> str:
    filler = "".join(f"value_{i} = {i} * 2\n" for i in range(lines))
    return "LEARNING_RATE = 0.1\nTABLE = [1, 2, 3]\n" + filler + "print(TABLE)\n" + BUG


def test_dead_constants_are_blanked_and_lines_kept():
    text = huge(SLIM_FROM_LINES)
    module, parsed = parse_for_check(text)
    assert parsed.count("\n") == text.count("\n")
    assert "value_7 = 7 * 2" not in parsed and "value_7 = 7 * 2" in text
    # used names keep their statements
    assert "LEARNING_RATE = 0.1" in parsed and "TABLE = [1, 2, 3]" in parsed
    assert module.code == parsed


def test_small_files_and_exact_parses_are_untouched():
    small = huge(10)
    assert parse_for_check(small)[1] == small
    text = huge(SLIM_FROM_LINES)
    assert parse_for_check(text, slim=False)[1] == text


def test_findings_in_a_huge_file_are_the_same_as_in_an_exact_parse():
    text = huge(SLIM_FROM_LINES)
    rules = list(all_rules())
    slim = check_text(text, "huge.py", rules)
    exact = check_text(text, "huge.py", rules, exact=True)
    assert [(f.line, f.column, f.code) for f in slim] == [(f.line, f.column, f.code) for f in exact]
    assert (text.count("\n"), "DL401") in {(f.line, f.code) for f in slim}


def test_fix_on_a_huge_file_keeps_every_line(tmp_path, capsys):
    text = huge(SLIM_FROM_LINES).replace("    opt.step()\n", "    opt.step()\n    model.eval\n")
    target = tmp_path / "huge.py"
    target.write_text(text, "utf-8")
    main(["check", "--fix", "--isolated", "--no-cache", "--select", "DL503", str(target)])
    fixed = target.read_text("utf-8")
    assert fixed == text.replace("    model.eval\n", "    model.eval()\n")
