from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from dllint.analysis import ModuleFacts


class Snippet:
    """Parsed source plus helpers to find nodes by their text."""

    def __init__(self, source: str) -> None:
        self.source = textwrap.dedent(source)
        self.facts = ModuleFacts("snippet.py", self.source, cst.parse_module(self.source))

    def code(self, node: cst.CSTNode) -> str:
        return self.facts.module.code_for_node(node)

    def find(self, text: str, kind: type = cst.CSTNode, index: int = 0) -> cst.CSTNode:
        """The ``index``-th node of ``kind`` whose source is exactly ``text``."""
        tree = self.facts.tree
        matches = [
            node
            for node in sorted(tree.order, key=tree.order.__getitem__)
            if isinstance(node, kind) and self.code(node) == text
        ]
        assert len(matches) > index, f"{text!r} not found"
        return matches[index]

    def origins(self, text: str, kind: type = cst.BaseExpression, index: int = 0):
        node = self.find(text, kind, index)
        values = self.facts.values
        return [
            (self.code(v.node), v.path)
            for v in values.origins(node, through=values.module_passthrough)
        ]


@pytest.fixture
def snippet():
    return Snippet
