"""DL103 fit-before-split: preprocessing learned from data that includes the test rows."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.data import _words
from dllint.analysis.splits import Fit, Split, _strip_values, splits_of
from dllint.analysis.test_suites import api_test_module
from dllint.analysis.transforms import eval_word
from dllint.finding import Finding
from dllint.rule import Rule


class FitBeforeSplit(Rule):
    code = "DL103"
    name = "fit-before-split"
    summary = "preprocessing fit on the full data before the train/test split, or fit on test data"
    severity = "warning"
    # the preprocessors and the splits it knows are sklearn's
    needs = (("sklearn",), ("split", "fit"))

    def check(self) -> Iterator[Finding]:
        if api_test_module(self.facts):
            return  # a test of the package's own API, not training code
        splits = splits_of(self.facts)
        code = self.facts.module.code_for_node
        for fit in splits.fits:
            split = self._split_after_fit(fit)
            if split is not None:
                yield self.finding(fit.call, self._before_split(fit, split))
            elif self._on_test_data(fit):
                data = code(fit.data)
                yield self.finding(
                    fit.call,
                    f"`{code(fit.call)}` fits a `{fit.kind}` on the held-out `{data}` while "
                    f"another `{fit.kind}` is fit on training data, so `{data}` is "
                    f"preprocessed with its own statistics instead of the training ones; the "
                    f"effect on scores is usually small, but fit on the training data and "
                    f"only `.transform({data})`",
                )
        for assign, name in splits.statistic_scalings():
            target = splits.assigned_binding(assign.value)
            if target is None:
                continue
            split = splits.later_split_of([target[1]], assign)
            if split is None:
                continue
            place = self.facts.place(split.call)
            yield self.finding(
                assign.value,
                f"`{target[0].value}` is scaled with statistics of all of `{name}` before "
                f"it is split ({place}), so the test rows leak into the training "
                f"inputs; the measured effect is usually small, but compute the statistics "
                f"on the training split only and apply them to both",
            )

    def _split_after_fit(self, fit: Fit) -> Split | None:
        """A later split of the data the fit learned from, where the fitted
        preprocessing reaches the training data: the ``fit_transform`` result is split,
        or the fitted object transforms something after the split."""
        splits = splits_of(self.facts)
        data = splits.binding(_strip_values(fit.data))
        if data is None:
            return None
        if fit.call.func.attr.value == "fit_transform":
            result = splits.assigned_binding(fit.call)
            if result is None:
                return None
            # The result, and what later fit_transforms make of it (imputer -> PCA).
            bindings = [result[1]]
            for other in splits.fits:
                if other.call.func.attr.value != "fit_transform":
                    continue
                source = splits.binding(_strip_values(other.data))
                made = splits.assigned_binding(other.call)
                if made is not None and any(source is b for b in bindings):
                    bindings.append(made[1])
            return splits.later_split_of(bindings, fit.call)
        split = splits.later_split_of([data], fit.call)
        if split is None:
            return None
        receiver = fit.call.func.value
        if not isinstance(receiver, cst.Name):
            return None
        fitted = splits.binding(receiver)
        for call in self.facts.tree.nodes(cst.Call):
            func = call.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value == "transform"
                and isinstance(func.value, cst.Name)
                and self.facts.tree.order[call] > self.facts.tree.last[split.call]
                and splits.binding(func.value) is fitted
            ):
                return split
        return None

    def _on_test_data(self, fit: Fit) -> bool:
        """A fit on data named as held out, with a fit of the same kind on train data."""
        if not _held_out_name(fit.data):
            return False
        splits = splits_of(self.facts)
        return any(
            other.kind == fit.kind and _train_name(other.data)
            for other in splits.fits
            if other is not fit
        )

    def _before_split(self, fit: Fit, split: Split) -> str:
        code = self.facts.module.code_for_node
        place = self.facts.place(split.call)
        data = code(fit.data)
        return (
            f"`{code(fit.call)}` learns its `{fit.kind}` statistics from all of `{data}`, "
            f"which is split into train and test only later ({place}), so the test rows "
            f"leak into the preprocessing of the training data; the effect on scores is "
            f"usually small but optimistic: split first and fit on the training part (or "
            f"put the `{fit.kind}` in a Pipeline)"
        )


def _name_words(expr: cst.BaseExpression) -> list[str]:
    expr = _strip_values(expr)
    if isinstance(expr, cst.Name):
        return _words(expr.value)
    if isinstance(expr, cst.Attribute):
        return _words(expr.attr.value)
    return []


def _held_out_name(expr: cst.BaseExpression) -> bool:
    words = _name_words(expr)
    return any(eval_word(w) for w in words) and "train" not in words


def _train_name(expr: cst.BaseExpression) -> bool:
    words = _name_words(expr)
    return "train" in words or "tr" in words
