"""The editor's re-parse (``dllint.incremental``) gives the module a whole parse
gives: the same code and the same tree, edit after edit, whatever sits between
the statements."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest

from dllint.incremental import StatementCache, chunks

FIXTURES = Path(__file__).parent / "fixtures"

AWKWARD = '''\
#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Docstring."""
import torch; import math


@torch.no_grad()
@staticmethod
def f(x):
    return x
    # a comment indented in f's body, after its last statement

# a comment before g

def g(): pass  # trailing
x = (1,
     2); y = 3
if x:
    pass
else:
    pass
class C:
    a = 1
s = """a
b"""
# the end, without a newline'''


def same_as_whole_parse(cache: StatementCache, text: str) -> None:
    whole = cst.parse_module(text)
    module = cache.parse(text, ast.parse(text))
    assert module.code == text
    assert module.deep_equals(whole)


def test_awkward_module_parses_as_a_whole_and_chunks_join_to_it():
    assert "".join(chunks(AWKWARD, ast.parse(AWKWARD))) == AWKWARD
    assert len(chunks(AWKWARD, ast.parse(AWKWARD))) > 5
    same_as_whole_parse(StatementCache(), AWKWARD)


def test_edits_reuse_unchanged_statements_and_stay_exact():
    cache = StatementCache()
    text = AWKWARD
    same_as_whole_parse(cache, text)
    before = cache.parse(text, ast.parse(text))
    edited = text.replace("return x\n", "return x + 1\n")
    after = cache.parse(edited, ast.parse(edited))
    assert after.code == edited and after.deep_equals(cst.parse_module(edited))
    # the class statement did not change: its parse is reused
    assert [s for s in before.body if isinstance(s, cst.ClassDef)][0] is [
        s for s in after.body if isinstance(s, cst.ClassDef)
    ][0]
    for edit in ("x = 1\n", "\n\n# new\n", "def h():\n    pass\n"):
        text = text + "\n" + edit
        same_as_whole_parse(cache, text)


def test_a_statement_twice_gets_its_own_nodes():
    text = "import torch\npass\npass\nx = 1\npass\n"
    module = StatementCache().parse(text, ast.parse(text))
    ids = [id(statement) for statement in module.body]
    assert len(set(ids)) == len(ids)
    assert module.code == text


@pytest.mark.parametrize("path", sorted(FIXTURES.rglob("*.py")), ids=lambda p: p.name)
def test_every_fixture(path):
    same_as_whole_parse(StatementCache(), path.read_text("utf-8"))
