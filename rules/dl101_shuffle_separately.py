"""DL101 shuffle-separately: features and labels shuffled by two independent random calls."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.data import Shuffle
from dllint.finding import Finding
from dllint.rule import Rule


class ShuffleSeparately(Rule):
    code = "DL101"
    name = "shuffle-separately"
    summary = "features and labels shuffled by two independent random calls"
    severity = "error"
    needs = ("shuffle", "permutation", "randperm", "frac")  # df.sample(frac=1)

    def check(self) -> Iterator[Finding]:
        data = self.facts.data
        shuffles = [s for s in data.shuffles if s.values]
        # A value shuffled together with its partner, or already matched with one,
        # is nobody else's partner: `masks` (paired with `images`) is not the
        # partner of a later `sentences`.
        matched = {id(s) for s in shuffles if s.joint}
        for index, second in enumerate(shuffles):
            if id(second) in matched:
                continue
            for first in reversed(shuffles[:index]):
                if id(first) in matched or not self._apart(first, second):
                    continue
                pair = data.partners(first, second)
                if pair is None:
                    continue
                matched.update((id(first), id(second)))
                if not data.same_order(first, second):
                    yield self.finding(second.call, self._message(pair))
                break

    def _apart(self, first: Shuffle, second: Shuffle) -> bool:
        """Two calls on different values in one scope that both run on one path."""
        return (
            first.scope is second.scope
            and not (first.values & second.values)
            and not self._exclusive(first.call, second.call)
        )

    def _exclusive(self, first: cst.CSTNode, second: cst.CSTNode) -> bool:
        """True when the two calls sit in different branches of one ``if``."""
        tree = self.facts.tree
        for ancestor in tree.ancestors(first):
            if isinstance(ancestor, cst.If) and tree.contains(ancestor, second):
                in_body = tree.contains(ancestor.body, first)
                other_in_body = tree.contains(ancestor.body, second)
                return in_body != other_in_body
        return False

    def _message(self, pair: tuple[str, str]) -> str:
        x, y = pair
        return (
            f"`{x}` and `{y}` are shuffled by two independent random calls, so their rows "
            f"no longer line up and the model trains on mismatched pairs; shuffle them "
            f"together (`{x}, {y} = shuffle({x}, {y})`) or index both with one permutation"
        )
