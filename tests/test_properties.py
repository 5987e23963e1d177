"""Property-based tests with a fixed budget (derandomized, so CI time is bounded).

1. hypothesmith writes valid Python, prefixed with torch imports and training
   snippets: checking it never raises and never reports DL002, the JSON report
   parses, and every position lies inside the file.
2. Semantics-preserving edits of every fixture (blank and comment lines inserted
   between statements) move each finding with its code and never add or drop one.
"""

from __future__ import annotations

import io
import json
import tokenize
from pathlib import Path

import hypothesmith
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dllint.engine import check_text
from dllint.registry import all_rules
from dllint.report import FORMATTERS

RULES = all_rules()
FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*/*.py"))
PREFIXES = [
    "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n",
    "import torch\nfrom torch import nn\nmodel = nn.Linear(4, 2)\n"
    "opt = torch.optim.SGD(model.parameters(), lr=0.1)\ncrit = nn.CrossEntropyLoss()\n"
    "for x, y in loader:\n    loss = crit(model(x), y)\n    loss.backward()\n    opt.step()\n",
    "from torch.nn import functional as fn\nimport torch.nn as nn\n"
    "class Net(nn.Module):\n    def forward(self, x):\n        return fn.softmax(fn.dropout(x))\n",
]
BUDGET = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def _inside(text: str, finding) -> bool:
    lines = text.split("\n")
    if (
        not 1 <= finding.line <= len(lines)
        or not 1 <= finding.column <= len(lines[finding.line - 1]) + 1
    ):
        return False
    end_line, end_column = finding.end_line, finding.end_column
    if not finding.line <= end_line <= len(lines):
        return False
    return 1 <= end_column <= len(lines[end_line - 1]) + 1


@settings(max_examples=40, **BUDGET)
@given(st.sampled_from(PREFIXES), hypothesmith.from_grammar(), st.booleans())
def test_any_valid_program_is_checked_without_error(prefix, program, prefix_first):
    text = prefix + program if prefix_first else program.rstrip("\n") + "\n" + prefix
    try:
        compile(text, "<fuzz>", "exec", dont_inherit=True, flags=0x400)  # PyCF_ONLY_AST
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        text = prefix + program  # a `from __future__` import must come first
    findings = check_text(text, "fuzz.py", RULES)
    assert not [f for f in findings if f.code == "DL002"], findings
    json.loads(FORMATTERS["json"](findings))
    for finding in findings:
        if finding.code != "DL001":
            assert _inside(text, finding), (finding, text)


def _statement_starts(text: str) -> list[int]:
    """Lines where a logical line starts (a comment or blank line may go before it)."""
    starts, at_start = [], True
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.NEWLINE, tokenize.NL):
                at_start = True
            elif token.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT):
                continue
            elif at_start and token.type != tokenize.ENDMARKER:
                starts.append(token.start[0])
                at_start = False
    except (tokenize.TokenError, SyntaxError):
        return []
    return sorted(set(starts))


def _found(text: str, path: str) -> set[tuple[int, str]]:
    return {(f.line, f.code) for f in check_text(text, path, RULES)}


@settings(max_examples=60, **BUDGET)
@given(st.sampled_from(FIXTURES), st.data())
def test_inserted_blank_and_comment_lines_move_findings_with_the_code(fixture, data):
    text = fixture.read_text("utf-8")
    starts = _statement_starts(text)
    if not starts:
        return
    chosen = data.draw(st.lists(st.sampled_from(starts), min_size=1, max_size=4, unique=True))
    kinds = data.draw(
        st.lists(
            st.sampled_from(["", "# note", "    # indented note"]),
            min_size=len(chosen),
            max_size=len(chosen),
        )
    )
    lines = text.split("\n")
    inserted = dict(zip(chosen, kinds, strict=True))
    edited = []
    for number, line in enumerate(lines, start=1):
        if number in inserted:
            edited.append(inserted[number])
        edited.append(line)
    before = _found(text, str(fixture))

    def moved(line: int) -> int:
        return line + sum(1 for at in chosen if at <= line)

    after = _found("\n".join(edited), str(fixture))
    assert after == {(moved(line), code) for line, code in before}
