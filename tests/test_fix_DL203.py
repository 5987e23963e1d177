"""DL203's fix appends ``training=<self>.training`` and keeps the call's layout."""

from __future__ import annotations

import textwrap

from dllint.autofix import fix_text
from dllint.engine import check_text
from dllint.registry import rule_by_code

RULES = [rule_by_code("DL203")]
HEADER = "import torch.nn.functional as F\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"


def fixed(body: str) -> str:
    before = HEADER + textwrap.indent(textwrap.dedent(body), "    ")
    after, _ = fix_text(before, "model.py", RULES)
    again, applied_again = fix_text(after, "model.py", RULES)
    assert (again, applied_again) == (after, 0), "the fix is not idempotent"
    assert not [f for f in check_text(after, "model.py", RULES) if f.code == "DL203"]
    assert after.startswith(HEADER)
    return textwrap.dedent(after[len(HEADER) :])


def test_one_line_calls_keep_comments():
    assert fixed(
        """
        def forward(self, x):
            x = F.dropout(x, 0.5)  # regularise
            return F.alpha_dropout(x, p=0.1)
        """
    ) == textwrap.dedent(
        """
        def forward(self, x):
            x = F.dropout(x, 0.5, training=self.training)  # regularise
            return F.alpha_dropout(x, p=0.1, training=self.training)
        """
    )


def test_multi_line_calls_stay_one_argument_per_line():
    assert fixed(
        """
        def forward(self, x):
            x = F.dropout(
                x,
                p=0.3,
            )
            x = F.dropout2d(
                x,
                p=0.3
            )
            return F.dropout(x,)
        """
    ) == textwrap.dedent(
        """
        def forward(self, x):
            x = F.dropout(
                x,
                p=0.3,
                training=self.training,
            )
            x = F.dropout2d(
                x,
                p=0.3,
                training=self.training
            )
            return F.dropout(x, training=self.training,)
        """
    )


def test_uses_the_methods_own_first_parameter():
    assert fixed(
        """
        def forward(this, x):
            return F.dropout(x)
        """
    ) == textwrap.dedent(
        """
        def forward(this, x):
            return F.dropout(x, training=this.training)
        """
    )


def test_no_fix_inside_a_lambda():
    text = HEADER + "    def forward(self, x):\n        f = lambda self: F.dropout(x)\n"
    text += "        return f(1)\n"
    findings = check_text(text, "model.py", RULES)
    assert [f.code for f in findings] == ["DL203"] and findings[0].edit is None
    assert fix_text(text, "model.py", RULES) == (text, 0)
