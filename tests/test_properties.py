"""Property-based tests with a fixed budget (derandomized, so CI time is bounded).

1. hypothesmith writes valid Python, prefixed with torch imports and training
   snippets: checking it never raises and never reports DL002, the JSON report
   parses, and every position lies inside the file.
2. Semantics-preserving edits of every fixture (blank and comment lines inserted
   between statements, a variable renamed, a call re-wrapped one argument a line)
   move each finding with its code and never add or drop one.
"""

from __future__ import annotations

import builtins
import io
import json
import re
import tokenize
from pathlib import Path

import hypothesmith
import libcst as cst
import libcst.helpers
import libcst.metadata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dllint.analysis.data import X_WORDS, Y_WORDS
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


# -- renaming a variable ----------------------------------------------------------------

# Words the rules read in names (X/y pairs, held-out data, optimizers, evaluation
# functions...): a name holding one keeps its spelling, so a rename never changes
# what a convention-reading rule may conclude.
ROLE_WORDS = re.compile(
    r"x|y|data|target|label|feature|input|train|val|test|eval|model|net|opt|loss|crit|"
    r"sched|loader|batch|epoch|fake|real|shuffle|scale|fit|pred|prob|logit|score|sample|"
    r"step|grad|infer|predict|valid|hold|dev|seed|order|idx|index|perm|mask|split",
    re.IGNORECASE,
)


class _Names(cst.CSTVisitor):
    """Names that may be renamed: bound in the file, never imported, never used as an
    attribute or keyword name, and holding no role word."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.blocked: set[str] = set(dir(builtins)) | {"self", "cls", "super"}

    def visit_Name(self, node: cst.Name) -> None:
        self.seen.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.blocked.add(node.attr.value)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.blocked.add(node.keyword.value)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.module is not None:
            self.blocked.update(cst.helpers.get_full_name_for_node(node.module).split("."))

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        for part in cst.helpers.get_full_name_for_node(node.name).split("."):
            self.blocked.add(part)
        if node.asname is not None and isinstance(node.asname.name, cst.Name):
            self.blocked.add(node.asname.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        # methods are called by attribute (and ``forward`` by nn.Module itself)
        for statement in node.body.body:
            if isinstance(statement, cst.FunctionDef):
                self.blocked.add(statement.name.value)

    def candidates(self) -> list[str]:
        return sorted(
            name
            for name in self.seen - self.blocked
            if not name.startswith("__")
            and not ROLE_WORDS.search(name)
            and not set(re.split(r"[_\d]+", name.lower())) & (X_WORDS | Y_WORDS)
        )


class _Rename(cst.CSTTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.new) if updated.value == self.old else updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute):
        return updated.with_changes(attr=original.attr)  # only the object is a variable

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


def _renamable(path: Path) -> list[str]:
    names = _Names()
    cst.parse_module(path.read_text("utf-8")).visit(names)
    return names.candidates()


@settings(max_examples=40, **BUDGET)
@given(st.sampled_from(FIXTURES), st.data())
def test_renaming_a_variable_keeps_every_finding(fixture, data):
    text = fixture.read_text("utf-8")
    names = _renamable(fixture)
    if not names:
        return
    old = data.draw(st.sampled_from(names))
    new = f"{old}_renamed"
    renamed = cst.parse_module(text).visit(_Rename(old, new)).code
    assert _found(renamed, str(fixture)) == _found(text, str(fixture)), (old, new)


# -- re-wrapping a call across lines ----------------------------------------------------


def _newline() -> cst.ParenthesizedWhitespace:
    return cst.ParenthesizedWhitespace(
        first_line=cst.TrailingWhitespace(),
        indent=True,
        last_line=cst.SimpleWhitespace("    "),
    )


class _Calls(cst.CSTVisitor):
    """One-line calls with arguments (a call may be re-wrapped one argument a line)."""

    METADATA_DEPENDENCIES = (cst.metadata.PositionProvider,)

    def __init__(self) -> None:
        self.found: list[tuple[int, int]] = []  # (line, index among all calls)
        self.count = 0

    def visit_Call(self, node: cst.Call) -> None:
        position = self.get_metadata(cst.metadata.PositionProvider, node)
        if node.args and position.start.line == position.end.line:
            self.found.append((position.start.line, self.count))
        self.count += 1


class _Rewrap(cst.CSTTransformer):
    def __init__(self, target: int) -> None:
        self.target, self.count = target, 0

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        index, self.count = self.count, self.count + 1
        if index != self.target:
            return updated
        args = [
            arg.with_changes(comma=cst.Comma(whitespace_after=_newline()))
            if isinstance(arg.comma, cst.Comma)
            else arg
            for arg in updated.args
        ]
        return updated.with_changes(whitespace_before_args=_newline(), args=args)


@settings(max_examples=40, **BUDGET)
@given(st.sampled_from([p for p in FIXTURES if "noqa" not in p.read_text("utf-8")]), st.data())
def test_rewrapping_a_call_across_lines_keeps_every_finding(fixture, data):
    text = fixture.read_text("utf-8")
    wrapper = cst.metadata.MetadataWrapper(cst.parse_module(text))
    calls = _Calls()
    wrapper.visit(calls)
    if not calls.found:
        return
    line, target = data.draw(st.sampled_from(calls.found))
    # leave_Call runs children first: count calls in that same (post-)order
    order = _PostOrder()
    wrapper.module.visit(order)
    rewrapped = wrapper.module.visit(_Rewrap(order.post_index[target])).code
    added = rewrapped.count("\n") - text.count("\n")
    before = sorted(_found(text, str(fixture)))
    after = sorted(_found(rewrapped, str(fixture)))
    assert [code for _, code in sorted(before, key=lambda f: f[1])] == [
        code for _, code in sorted(after, key=lambda f: f[1])
    ]
    for code in {code for _, code in before}:
        old = sorted(n for n, c in before if c == code)
        new = sorted(n for n, c in after if c == code)
        for was, now in zip(old, new, strict=True):
            if was < line:
                assert now == was, (code, was, now)
            elif was > line:
                assert now == was + added, (code, was, now)
            else:
                assert line <= now <= line + added, (code, was, now)


class _PostOrder(cst.CSTVisitor):
    """Maps a call's pre-order index (visit order) to its post-order index (leave
    order), which is how the transformer counts."""

    def __init__(self) -> None:
        self.pre = 0
        self.stack: list[int] = []
        self.post = 0
        self.post_index: dict[int, int] = {}

    def visit_Call(self, node: cst.Call) -> None:
        self.stack.append(self.pre)
        self.pre += 1

    def leave_Call(self, node: cst.Call) -> None:
        self.post_index[self.stack.pop()] = self.post
        self.post += 1
