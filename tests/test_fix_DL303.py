"""DL303's fix: log of an inline softmax/sigmoid becomes the fused function."""

from __future__ import annotations

import pytest

from dllint.autofix import fix_text
from dllint.engine import check_text
from dllint.registry import rule_by_code

RULE = rule_by_code("DL303")
TORCH = "import torch\n"
WITH_F = "import torch\nimport torch.nn.functional as F\n"
WITH_FN = "import torch\nfrom torch.nn import functional as fn\n"


def fix(text: str) -> str:
    fixed, _ = fix_text(text, "t.py", [RULE])
    again, applied = fix_text(fixed, "t.py", [RULE])
    assert (again, applied) == (fixed, 0)  # idempotent
    assert not any(f.edit for f in check_text(fixed, "t.py", [RULE]))
    return fixed


@pytest.mark.parametrize(
    ("header", "before", "after"),
    [
        (WITH_F, "a = torch.log(F.softmax(x, dim=1))  # keep\n",
         "a = F.log_softmax(x, dim=1)  # keep\n"),
        (WITH_FN, "a = torch.log(fn.softmax(x, 1))\n", "a = fn.log_softmax(x, 1)\n"),
        (TORCH, "a = torch.log(torch.softmax(x, -1))\n", "a = torch.log_softmax(x, -1)\n"),
        (TORCH, "a = torch.log(torch.special.softmax(x, 1))\n",
         "a = torch.special.log_softmax(x, 1)\n"),
        (TORCH, "a = x.softmax(dim=-1).log()\n", "a = x.log_softmax(dim=-1)\n"),
        (TORCH, "a = torch.log(x.softmax(1))\n", "a = x.log_softmax(1)\n"),
        (WITH_F, "a = F.softmax(x, dim=1).log().mean()\n", "a = F.log_softmax(x, dim=1).mean()\n"),
        (TORCH, "a = -(torch.log(torch.softmax(x, 1)))\n", "a = -(torch.log_softmax(x, 1))\n"),
        (WITH_F, "a = torch.log(torch.sigmoid(x))\n", "a = F.logsigmoid(x)\n"),
        (WITH_FN, "a = torch.log(fn.sigmoid(x))\n", "a = fn.logsigmoid(x)\n"),
        (WITH_F, "a = (y + 1).sigmoid().log()\n", "a = F.logsigmoid(y + 1)\n"),
    ],
)  # fmt: skip
def test_fix(header, before, after):
    assert fix(header + before) == header + after


@pytest.mark.parametrize(
    ("header", "body"),
    [
        # sigmoid with no torch.nn.functional import: flagged, not fixed
        (TORCH, "a = torch.log(torch.sigmoid(x))\n"),
        # a bare-name import of softmax: log_softmax is not imported
        ("import torch\nfrom torch.nn.functional import softmax\n",
         "a = torch.log(softmax(x, dim=1))\n"),
        # stored probabilities: flagged, not fixed
        (WITH_F, "p = F.softmax(x, dim=1)\na = torch.log(p)\n"),
        # dtype would be dropped or reordered
        (WITH_F, "a = torch.log(F.softmax(x, dim=1, dtype=torch.float64))\n"),
        # the hand-written softmax
        (TORCH, "a = torch.exp(x) / torch.exp(x).sum(1, keepdim=True)\n"),
        # F shadowed where the log is
        (WITH_F, "def f(F, x):\n    return torch.log(torch.sigmoid(x))\n"),
    ],
)  # fmt: skip
def test_flagged_without_fix(header, body):
    text = header + body
    findings = check_text(text, "t.py", [RULE])
    assert [f.code for f in findings] == ["DL303"]
    assert findings[0].edit is None
    assert fix(text) == text
