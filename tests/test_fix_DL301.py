"""DL301's fix: an inline softmax (sigmoid) as a logit loss's input is dropped."""

from __future__ import annotations

import textwrap

import pytest

from dllint.autofix import fix_text
from dllint.registry import rule_by_code

HEADER = """\
import torch
import torch.nn as nn
import torch.nn.functional as F

criterion = nn.CrossEntropyLoss()
"""


def fix(body: str) -> str:
    text = HEADER + textwrap.dedent(body)
    fixed, _ = fix_text(text, "t.py", [rule_by_code("DL301")])
    again, applied = fix_text(fixed, "t.py", [rule_by_code("DL301")])
    assert (again, applied) == (fixed, 0)  # idempotent
    return fixed[len(HEADER) :]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("loss = criterion(F.softmax(logits, dim=1), y)  # keep\n",
         "loss = criterion(logits, y)  # keep\n"),
        ("loss = F.cross_entropy(torch.softmax(out, 1), y)\n",
         "loss = F.cross_entropy(out, y)\n"),
        ("loss = criterion(out.softmax(dim=-1), y)\n", "loss = criterion(out, y)\n"),
        ("loss = criterion((out * 2).softmax(1), y)\n", "loss = criterion(out * 2, y)\n"),
        ("loss = criterion(input=F.softmax(out, dim=1), target=y)\n",
         "loss = criterion(input=out, target=y)\n"),
        ("loss = F.binary_cross_entropy_with_logits(torch.sigmoid(out[:, 0]), y)\n",
         "loss = F.binary_cross_entropy_with_logits(out[:, 0], y)\n"),
        ("loss = nn.BCEWithLogitsLoss()(out.sigmoid(), y)\n",
         "loss = nn.BCEWithLogitsLoss()(out, y)\n"),
    ],
)  # fmt: skip
def test_inline_activation_is_dropped(before, after):
    assert fix(before) == after


@pytest.mark.parametrize(
    "body",
    [
        # not inline: a stored softmax, a Sequential head
        "probs = F.softmax(out, dim=1)\nloss = criterion(probs, y)\n",
        "model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))\n"
        "loss = criterion(model(x), y)\n",
        # more than input and dim
        "loss = criterion(F.softmax(out, dim=1, dtype=torch.float64), y)\n",
        # a comment inside the call would be lost
        "loss = criterion(F.softmax(  # probabilities\n    out, dim=1), y)\n",
        # a module called inline
        "loss = criterion(nn.Softmax(dim=1)(out), y)\n",
    ],
)
def test_no_fix(body):
    assert fix(body) == textwrap.dedent(body)
