"""The fix machinery: edits applied together, formatting kept, files written back as stored."""

from __future__ import annotations

import libcst as cst

from dllint.analysis.tree import TreeIndex
from dllint.fixes import Fix, SourceStyle, apply, unified_diff


def _calls(module: cst.Module) -> list[cst.Call]:
    return TreeIndex(module).nodes(cst.Call)


def test_apply_replaces_nodes_and_keeps_comments():
    module = cst.parse_module("x = f(a)  # keep me\ny = f(b)\n")
    first, second = _calls(module)
    fixes = [
        Fix("rename", ((first.func, cst.Name("g")),)),
        Fix("rename", ((second.func, cst.Name("h")),)),
    ]
    code, applied = apply(module, fixes)
    assert code == "x = g(a)  # keep me\ny = h(b)\n"
    assert applied == 2


def test_overlapping_fixes_apply_one_at_a_time():
    module = cst.parse_module("x = f(f(a))\n")
    outer, inner = _calls(module)
    fixes = [
        Fix("outer", ((outer, cst.parse_expression("g(a)")),)),
        Fix("inner", ((inner.func, cst.Name("h")),)),
    ]
    code, applied = apply(module, fixes)
    assert (code, applied) == ("x = g(a)\n", 1)


def test_source_style_round_trips_crlf_bom_and_latin1():
    crlf = b"\xef\xbb\xbfa = 1\r\nb = 2\r\n"
    style = SourceStyle.of(crlf)
    assert style.encode("a = 1\nb = 2\n") == crlf
    latin = "# -*- coding: latin-1 -*-\ns = 'é'\n".encode("latin-1")
    assert SourceStyle.of(latin).encode(latin.decode("latin-1")) == latin


def test_unified_diff_names_the_file():
    diff = unified_diff("t.py", "a\n", "b\n")
    assert diff.startswith("--- a/t.py\n+++ b/t.py\n") and "-a\n+b\n" in diff
