"""DL503's fix adds the missing parentheses and nothing else."""

from __future__ import annotations

import textwrap

from dllint.autofix import fix_text
from dllint.engine import check_text
from dllint.registry import rule_by_code

RULES = [rule_by_code("DL503")]


def fixed(before: str) -> str:
    before = textwrap.dedent(before)
    after, applied = fix_text(before, "train.py", RULES)
    again, applied_again = fix_text(after, "train.py", RULES)
    assert (again, applied_again) == (after, 0), "the fix is not idempotent"
    assert not [f for f in check_text(after, "train.py", RULES) if f.code == "DL503"]
    return after


def test_adds_parentheses_and_keeps_the_comment():
    before = """
        import torch
        def validate(model, optimizer, loss):
            model.eval  # switch mode
            optimizer.zero_grad
            (loss.backward)
            optimizer.step   # update
    """
    assert fixed(before) == textwrap.dedent(
        """
        import torch
        def validate(model, optimizer, loss):
            model.eval()  # switch mode
            optimizer.zero_grad()
            (loss.backward)()
            optimizer.step()   # update
        """
    )


def test_semicolon_statements_and_nested_receivers():
    before = """
        import torch
        for batch in loader:
            trainer.model.train; x = 1
            scaler.scale(loss).backward
    """
    assert fixed(before) == textwrap.dedent(
        """
        import torch
        for batch in loader:
            trainer.model.train(); x = 1
            scaler.scale(loss).backward()
        """
    )


def test_nothing_to_fix_leaves_text_alone():
    text = "import torch\nfn = model.train\nmodel.eval()\n"
    assert fix_text(text, "t.py", RULES) == (text, 0)
