"""DL403's fix: ``.item()`` (or ``.detach()`` where the total is used as a tensor)."""

from __future__ import annotations

import textwrap

from dllint.autofix import fix_text
from dllint.registry import all_rules

RULES = [rule for rule in all_rules() if rule.code == "DL403"]

HEADER = """\
import torch
import torch.nn as nn

model = nn.Linear(4, 2)
criterion = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""


def fix(body: str) -> str:
    text = HEADER + textwrap.dedent(body)
    fixed, _ = fix_text(text, "train.py", RULES)
    again, applied = fix_text(fixed, "train.py", RULES)
    assert again == fixed and applied == 0  # idempotent, nothing left to fix
    return fixed[len(HEADER) :]


def test_total_and_list_get_item_and_keep_comments():
    before = """\
    total, losses = 0.0, []
    for x, y in loader:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        total  +=  loss   # running sum
        losses.append( loss )  # for the plot
        total += criterion(model(x), y)
    print(total / len(losses), sum(losses))
    """
    after = """\
    total, losses = 0.0, []
    for x, y in loader:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        total  +=  loss.item()   # running sum
        losses.append( loss.item() )  # for the plot
        total += criterion(model(x), y).item()
    print(total / len(losses), sum(losses))
    """
    assert fix(before) == textwrap.dedent(after)


def test_detach_where_the_total_is_used_as_a_tensor():
    before = """\
    total = torch.zeros(())
    for x, y in loader:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        total += loss
    print(total.item())
    """
    assert "total += loss.detach()\n" in fix(before)


def test_unreduced_loss_is_detached_not_itemed():
    before = """\
    per_sample = nn.CrossEntropyLoss(reduction="none")
    kept = []
    for x, y in loader:
        opt.zero_grad()
        each = per_sample(model(x), y)
        each.mean().backward()
        opt.step()
        kept.append(each)
    """
    assert "kept.append(each.detach())\n" in fix(before)


def test_no_fix_for_sums_of_expressions():
    before = """\
    total = 0.0
    acc = 0.0
    for x, y in loader:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        total = total + loss
        acc += loss * x.size(0)
    """
    assert fix(before) == textwrap.dedent(before)
