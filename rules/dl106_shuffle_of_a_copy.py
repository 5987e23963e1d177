"""DL106 shuffle-of-a-copy: ``random.shuffle(order[:n])`` shuffles a copy and drops it.

``random.shuffle`` and numpy's ``shuffle`` work in place and return None. Given a
temporary (a list slice, ``list(x)``, ``sorted(x)``, ``x.copy()``, a comprehension),
they shuffle that temporary, which is thrown away: the data keeps its original order.
Numpy array slices are views, so shuffling one does shuffle the array: not flagged.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.syntax import builtin_call, call_arguments_known, syntax_of
from dllint.analysis.test_suites import api_test_module
from dllint.analysis.tree import argument
from dllint.finding import Finding
from dllint.rule import Rule

SHUFFLES = {"random.shuffle", "numpy.random.shuffle"}
COPIES = {"copy.copy", "copy.deepcopy"}
MAX_TEXT = 50


class ShuffleOfACopy(Rule):
    code = "DL106"
    name = "shuffle-of-a-copy"
    summary = "in-place shuffle applied to a temporary copy that is thrown away"
    severity = "error"
    needs = ("shuffle",)

    def check(self) -> Iterator[Finding]:
        if api_test_module(self.facts):
            return  # a test of the package's own API, not training code
        for call in self.facts.calls():
            if not self.is_shuffle(call) or not call_arguments_known(call):
                continue
            target = argument(call, 0, "x")
            if target is None:
                continue
            made = self.temporary(target)
            if made is not None:
                yield self.finding(call, self.message(call, target, made))

    def is_shuffle(self, call: cst.Call) -> bool:
        """``random.shuffle``, ``np.random.shuffle`` or ``shuffle`` of a known generator."""
        if self.facts.qualname(call.func) in SHUFFLES:
            return True
        func = call.func
        return (
            isinstance(func, cst.Attribute)
            and func.attr.value == "shuffle"
            and syntax_of(self.facts).generator_kind(func.value) is not None
        )

    def temporary(self, target: cst.BaseExpression) -> cst.BaseExpression | None:
        """What the temporary copies (the sliced or copied value), when ``target`` is one.

        Returns ``target`` itself for a value with no source (a comprehension).
        """
        syntax = syntax_of(self.facts)
        if isinstance(target, cst.Subscript):
            sliced = len(target.slice) == 1 and isinstance(target.slice[0].slice, cst.Slice)
            if sliced and syntax.is_list(target.value):
                return target.value
            return None
        if isinstance(target, (cst.ListComp, cst.List)):
            return target
        if not isinstance(target, cst.Call) or not call_arguments_known(target):
            return None
        if builtin_call(self.facts, target, ("list", "sorted")) and target.args:
            return target.args[0].value
        if self.facts.qualname(target.func) in COPIES and target.args:
            return target.args[0].value
        func = target.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "copy"
            and not target.args
            and syntax.is_list(func.value)
        ):
            return func.value
        return None

    def message(self, call: cst.Call, target: cst.BaseExpression, source) -> str:
        code = self.facts.module.code_for_node
        shuffle = code(call.func)
        made = code(target)
        short = len(made) <= MAX_TEXT and "\n" not in made
        made_text = f"`{made}`" if short else "its argument"
        if isinstance(target, cst.Subscript):
            base = code(source)
            hint = (
                f"shuffle `{base}` itself and slice it afterwards, or assign the shuffled "
                f"slice back (`{made} = random.sample({made}, len({made}))`)"
                if short
                else f"shuffle `{base}` itself and slice it afterwards"
            )
            return (
                f"`{shuffle}` shuffles the new list that the slice {made_text} makes and "
                f"throws it away, so `{base}` is never shuffled; {hint}."
            )
        if source is target:
            return (
                f"`{shuffle}` shuffles the new list {made_text} and throws it away, so "
                f"nothing is shuffled; bind the list to a name first, shuffle it, then use it."
            )
        original = code(source)
        original_text = f"`{original}`" if len(original) <= MAX_TEXT else "the original"
        return (
            f"`{shuffle}` shuffles the copy made by {made_text} and throws it away, so "
            f"{original_text} keeps its order; bind the copy first (`items = {made}`), "
            f"shuffle `items` and use it."
            if short
            else f"`{shuffle}` shuffles a temporary copy and throws it away, so "
            f"{original_text} keeps its order; bind the copy to a name, shuffle it and use it."
        )
