"""Speed and memory cliffs: a huge literal in a short file never reaches libcst, and
DL403's look at how a total is used grows with the file, not with its square."""

from __future__ import annotations

import random

import libcst as cst

import dllint.source
from dllint.engine import check_text
from dllint.registry import all_rules, rule_by_code
from dllint.source import BIG_LITERAL_CHARS, UNKNOWN_VALUE, parse_for_check

RULES = [rule for rule in all_rules() if rule.default_enabled]

BUG = """\
import torch
from torch import nn

WEIGHTS = [{numbers}]
model = nn.Linear(4, 2)
crit = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
scale = torch.tensor(WEIGHTS)
for x, y in loader:
    loss = crit(model(x), y)
    loss.backward()
    opt.step()
"""


def short_file_with_a_big_literal() -> str:
    rng = random.Random(0)
    numbers = ", ".join(f"{rng.random():.6f}" for _ in range(40_000))  # about 360 KB
    return BUG.format(numbers=numbers)


def test_a_big_literal_on_one_line_is_not_parsed_by_libcst(monkeypatch):
    text = short_file_with_a_big_literal()
    assert text.count("\n") < 20 and len(text) > 10 * BIG_LITERAL_CHARS
    parsed = []
    original = cst.parse_module
    monkeypatch.setattr(
        dllint.source.cst, "parse_module", lambda source: parsed.append(source) or original(source)
    )
    module, slim = parse_for_check(text)
    assert f"WEIGHTS = {UNKNOWN_VALUE}" in slim
    assert slim.count("\n") == text.count("\n")
    assert max(len(source) for source in parsed) < BIG_LITERAL_CHARS


def test_the_findings_are_those_of_the_whole_file():
    text = short_file_with_a_big_literal()
    slim = check_text(text, "big.py", RULES)
    exact = check_text(text, "big.py", RULES, exact=True)
    assert [(f.line, f.column, f.code) for f in slim] == [(12, 5, "DL401")]
    assert [f.to_json() for f in slim] == [f.to_json() for f in exact]


FUNCTION = """

def train_{i}():
    total = 0.0
    hist = []
    for x, y in loader:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        total += loss
        hist.append(loss)
    print(total / len(loader), sum(hist))
"""
HEADER = """\
import torch
import torch.nn as nn

model = nn.Linear(4, 2)
criterion = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""


def test_dl403_looks_at_each_use_a_bounded_number_of_times(monkeypatch):
    rule = rule_by_code("DL403")
    calls = []
    original = rule._numeric_use

    def counted(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(rule, "_numeric_use", counted)
    counts = []
    for copies in (10, 40):
        calls.clear()
        text = HEADER + "".join(FUNCTION.format(i=i) for i in range(copies))
        found = check_text(text, "many.py", [rule])
        assert len(found) == 2 * copies
        assert all(f.fix_safety == "safe" for f in found)
        counts.append(len(calls))
    assert counts[1] <= 4 * counts[0] + 10  # linear in the copies (it was quadratic)
