"""DL101 shuffle-separately: features and labels shuffled by two independent random calls."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.data import SKLEARN_SHUFFLE, Shuffle, named_pair
from dllint.analysis.test_suites import api_test_module
from dllint.analysis.tree import call_name, dotted
from dllint.finding import Finding
from dllint.fixes import Fix
from dllint.rule import Rule


class ShuffleSeparately(Rule):
    code = "DL101"
    name = "shuffle-separately"
    summary = "features and labels shuffled by two independent random calls"
    severity = "error"
    needs = ("shuffle", "permutation", "randperm", "frac")  # df.sample(frac=1)
    fixable = True  # two adjacent `X = shuffle(X)` / `y = shuffle(y)` statements

    def check(self) -> Iterator[Finding]:
        if api_test_module(self.facts):
            return  # a test of the package's own API, not training code
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
                if pair is None or self._not_rows(first, pair):
                    continue
                matched.update((id(first), id(second)))
                if not data.same_order(first, second):
                    fix = self._joint_fix(first, second)
                    yield self.finding(second.call, self._message(pair), fix)
                break

    def _apart(self, first: Shuffle, second: Shuffle) -> bool:
        """Two calls on different values in one scope that both run on one path."""
        return (
            first.scope is second.scope
            and not (first.values & second.values)
            and not self._exclusive(first.call, second.call)
        )

    def _not_rows(self, first: Shuffle, pair: tuple[str, str]) -> bool:
        """The two values are not rows of one table: the code indexes one array with
        them on different axes (``vals[ys, xs]``: random coordinates), or, for values
        not named as an X/y pair, takes the ``min``/``max`` of their lengths (``outs``/
        ``ins`` of two graphs, paired at random): features and labels have one length
        and are not coordinates."""
        a, b = pair
        tree = self.facts.tree
        named = named_pair(a, b) or named_pair(b, a)
        for node in tree.descendants(first.scope, cst.Subscript, cst.Call):
            if isinstance(node, cst.Subscript):
                axes = [_names_in(tree, element.slice) for element in node.slice]
                if any(
                    a in one and b in other for one in axes for other in axes if one is not other
                ):
                    return True
            elif not named and call_name(node) in ("min", "max"):
                lengths = {
                    dotted(arg.value.args[0].value)
                    for arg in node.args
                    if isinstance(arg.value, cst.Call)
                    and call_name(arg.value) == "len"
                    and arg.value.args
                }
                if {a, b} <= lengths:
                    return True
        return False

    def _exclusive(self, first: cst.CSTNode, second: cst.CSTNode) -> bool:
        """True when the two calls sit in different branches of one ``if``."""
        tree = self.facts.tree
        for ancestor in tree.ancestors(first):
            if isinstance(ancestor, cst.If) and tree.contains(ancestor, second):
                in_body = tree.contains(ancestor.body, first)
                other_in_body = tree.contains(ancestor.body, second)
                return in_body != other_in_body
        return False

    # -- fix: `X = shuffle(X)` / `y = shuffle(y)` -> `X, y = shuffle(X, y)` --------------
    def _joint_fix(self, first: Shuffle, second: Shuffle) -> Fix | None:
        """One joint sklearn shuffle for two adjacent single-name reassignments with the
        same function and the same keyword arguments; None where that is not certain."""
        one, two = self._self_shuffle(first), self._self_shuffle(second)
        if one is None or two is None:
            return None
        (line1, assign1, call1), (line2, assign2, call2) = one, two
        code = self.facts.module.code_for_node
        if code(call1.func) != code(call2.func):
            return None
        keywords1 = [(a.keyword.value, code(a.value)) for a in call1.args if a.keyword]
        keywords2 = [(a.keyword.value, code(a.value)) for a in call2.args if a.keyword]
        if sorted(keywords1) != sorted(keywords2):
            return None
        target1, target2 = assign1.targets[0].target, assign2.targets[0].target
        if target1.value == target2.value or not self._adjacent(line1, line2):
            return None
        # Assign's value: shuffle(X, y, <first call's keywords>), positional args first.
        x_arg = call1.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        y_arg = call2.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        args = [x_arg, y_arg, *(a for a in call1.args if a.keyword)]
        args = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in args]
        call = call1.with_changes(args=args)
        targets = cst.Tuple(
            [cst.Element(cst.Name(target1.value)), cst.Element(cst.Name(target2.value))],
            lpar=[],
            rpar=[],
        )
        joint = assign1.with_changes(
            targets=[assign1.targets[0].with_changes(target=targets)], value=call
        )
        # Keep the second line's comments: its own comment lines go above the joint
        # statement; its trailing comment joins the first's (or becomes a line above).
        leading = [*line1.leading_lines, *line2.leading_lines]
        trailing = line1.trailing_whitespace
        comment2 = line2.trailing_whitespace.comment
        if comment2 is not None:
            if trailing.comment is None:
                trailing = line2.trailing_whitespace
            else:
                leading.append(cst.EmptyLine(comment=comment2))
        new_line = line1.with_changes(
            body=[joint], leading_lines=leading, trailing_whitespace=trailing
        )
        x, y = target1.value, target2.value
        return Fix(
            f"shuffle `{x}` and `{y}` together: `{x}, {y} = {code(call1.func)}({x}, {y})`",
            ((line1, new_line), (line2, cst.RemoveFromParent())),
        )

    def _self_shuffle(self, event: Shuffle):
        """(line, assign, call) when ``event`` is a whole statement ``X = shuffle(X)`` of
        sklearn's shuffle, alone on its line; else None."""
        call = event.call
        if self.facts.qualname(call.func) not in SKLEARN_SHUFFLE:
            return None
        tree = self.facts.tree
        assign = tree.parent.get(call)
        line = tree.parent.get(assign)
        if not isinstance(assign, cst.Assign) or not isinstance(line, cst.SimpleStatementLine):
            return None
        if len(line.body) != 1 or len(assign.targets) != 1:
            return None
        target = assign.targets[0].target
        positional = [a for a in call.args if a.keyword is None]
        if len(positional) != 1 or positional[0].star or any(a.star for a in call.args):
            return None
        if not isinstance(target, cst.Name) or not isinstance(positional[0].value, cst.Name):
            return None
        if target.value != positional[0].value.value or call.args[0] is not positional[0]:
            return None
        return line, assign, call

    def _adjacent(self, first: cst.CSTNode, second: cst.CSTNode) -> bool:
        """True when ``second`` is the statement right after ``first`` in one block."""
        tree = self.facts.tree
        block = tree.parent.get(first)
        if block is None or tree.parent.get(second) is not block:
            return False
        body = list(getattr(block, "body", ()))
        return (
            first in body
            and body.index(first) + 1 < len(body)
            and (body[body.index(first) + 1] is second)
        )

    def _message(self, pair: tuple[str, str]) -> str:
        x, y = pair
        return (
            f"`{x}` and `{y}` are shuffled by two independent random calls, so their rows "
            f"no longer line up and the model trains on mismatched pairs; shuffle them "
            f"together (`{x}, {y} = shuffle({x}, {y})`) or index both with one permutation."
        )


def _names_in(tree, node: cst.CSTNode) -> set[str | None]:
    """The names an index expression mentions (``ys`` in ``ys[:n]``, ``self.ys``)."""
    return {dotted(name) for name in tree.descendants(node, cst.Name, cst.Attribute)}
