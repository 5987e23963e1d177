"""Preprocessing fits and train/test splits (DL103).

A *preprocessor fit* is ``fit``/``fit_transform`` of an sklearn scaler, imputer,
decomposition or feature selector (followed by qualified name), with the data it
learns from. A *split* is ``train_test_split(X, ...)`` or ``<KFold-like>.split(X)``,
with the arrays it splits. Whole-data *statistics scaling* is an assignment like
``X = (X - X.mean()) / X.std()`` whose statistics are taken over the very value it
scales.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.names import Binding
from dllint.analysis.tree import argument, dotted

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

PREPROCESSORS = {
    "StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler", "QuantileTransformer",
    "PowerTransformer", "KBinsDiscretizer", "SimpleImputer", "KNNImputer", "IterativeImputer",
    "PCA", "TruncatedSVD", "SelectKBest", "SelectPercentile", "VarianceThreshold",
}  # fmt: skip
PREPROCESSOR_MODULES = (
    "sklearn.preprocessing.", "sklearn.impute.", "sklearn.decomposition.",
    "sklearn.feature_selection.", "sklearn.experimental.",
)  # fmt: skip
TRAIN_TEST_SPLIT = {
    "sklearn.model_selection.train_test_split",
    "sklearn.cross_validation.train_test_split",
}
SPLITTER_CLASSES = {
    "KFold", "StratifiedKFold", "GroupKFold", "RepeatedKFold", "RepeatedStratifiedKFold",
    "ShuffleSplit", "StratifiedShuffleSplit", "StratifiedGroupKFold", "GroupShuffleSplit",
}  # fmt: skip
STATISTICS = {"mean", "std", "max", "min", "var", "amax", "amin", "nanmean", "nanstd"}


@dataclass(frozen=True)
class Fit:
    call: cst.Call
    kind: str  # the preprocessor's class name
    data: cst.BaseExpression


@dataclass(frozen=True)
class Split:
    call: cst.Call
    arrays: tuple[cst.BaseExpression, ...]


class Splits:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.names = facts.names
        self.values = facts.values
        self.tree = facts.tree

    @cached_property
    def fits(self) -> list[Fit]:
        found = []
        for call in self.tree.nodes(cst.Call):
            func = call.func
            if not isinstance(func, cst.Attribute) or func.attr.value not in (
                "fit",
                "fit_transform",
            ):
                continue
            kind = self.preprocessor(func.value)
            data = argument(call, 0, "X")
            if kind is not None and data is not None:
                found.append(Fit(call, kind, data))
        return found

    @cached_property
    def splits(self) -> list[Split]:
        found = []
        for call in self.tree.nodes(cst.Call):
            qualname = self.names.qualname(call.func)
            arrays = tuple(a.value for a in call.args if a.keyword is None and not a.star)
            if qualname in TRAIN_TEST_SPLIT:
                found.append(Split(call, arrays))
            elif (
                isinstance(call.func, cst.Attribute)
                and call.func.attr.value == "split"
                and qualname is None
                and self._splitter(call.func.value)
                and arrays
            ):
                found.append(Split(call, arrays[:1]))
        return found

    def preprocessor(self, expr: cst.BaseExpression) -> str | None:
        """The class name when every value ``expr`` holds is one sklearn preprocessor."""
        kinds = set()
        for leaf in self.values.origins(expr):
            node = leaf.node
            if leaf.path or not isinstance(node, cst.Call):
                return None
            qualname = self.names.qualname(node.func) or ""
            name = qualname.rsplit(".", 1)[-1]
            if name not in PREPROCESSORS or not qualname.startswith(PREPROCESSOR_MODULES):
                return None
            kinds.add(name)
        return kinds.pop() if len(kinds) == 1 else None

    def _splitter(self, expr: cst.BaseExpression) -> bool:
        leaves = self.values.origins(expr)
        for leaf in leaves:
            node = leaf.node
            if leaf.path or not isinstance(node, cst.Call):
                return False
            qualname = self.names.qualname(node.func) or ""
            if not qualname.startswith("sklearn.model_selection."):
                return False
            if qualname.rsplit(".", 1)[-1] not in SPLITTER_CLASSES:
                return False
        return bool(leaves)

    def binding(self, expr: cst.CSTNode) -> Binding | None:
        if isinstance(expr, cst.Name):
            return self.names.binding_at(expr.value, expr)
        return None

    def assigned_binding(self, value: cst.CSTNode) -> tuple[cst.Name, Binding] | None:
        """The single name ``value`` is assigned to (``X = value``) and its binding."""
        parent = self.tree.parent.get(value)
        if not isinstance(parent, cst.Assign) or parent.value is not value:
            return None
        if len(parent.targets) != 1 or not isinstance(parent.targets[0].target, cst.Name):
            return None
        target = parent.targets[0].target
        scope = self.tree.module if self.tree.scope_of(parent) is self.tree.module else None
        for binding in self.names.bindings_of(target.value, scope or self.tree.scope_of(parent)):
            if binding.node is target:
                return target, binding
        return None

    def later_split_of(self, bindings: list[Binding], after: cst.CSTNode) -> Split | None:
        """A split, after ``after`` in the same scope, of a value bound by ``bindings``."""
        scope = self.tree.scope_of(after)
        wanted = {id(b) for b in bindings}
        for split in self.splits:
            if self.tree.order[split.call] <= self.tree.last[after]:
                continue
            if self.tree.scope_of(split.call) is not scope:
                continue
            for array in split.arrays:
                array = _strip_values(array)
                binding = self.binding(array)
                if binding is not None and id(binding) in wanted:
                    return split
        return None

    def statistic_scalings(self) -> list[tuple[cst.Assign, str]]:
        """Assignments ``Y = f(X, X.mean(), X.std()...)``: arithmetic on a name with
        statistics of that same name (the name returned)."""
        found = []
        for assign in self.tree.nodes(cst.Assign):
            value = assign.value
            if not isinstance(value, cst.BinaryOperation):
                continue
            names = self._statistic_names(value)
            operands = {
                n.value
                for n in self.tree.descendants(value, cst.Name)
                if self._plain_operand(n, value)
            }
            common = sorted(names & operands)
            if common:
                found.append((assign, common[0]))
        return found

    def _statistic_names(self, value: cst.CSTNode) -> set[str]:
        found = set()
        for call in self.tree.descendants(value, cst.Call):
            func = call.func
            qualname = self.names.qualname(func)
            if qualname is not None:
                if qualname.startswith(("numpy.", "torch.")) and qualname.rsplit(".", 1)[-1] in (
                    STATISTICS
                ):
                    first = argument(call, 0)
                    if isinstance(first, cst.Name):
                        found.add(first.value)
                continue
            if isinstance(func, cst.Attribute) and func.attr.value in STATISTICS:
                if isinstance(func.value, cst.Name):
                    found.add(func.value.value)
        return found

    def _plain_operand(self, name: cst.Name, top: cst.CSTNode) -> bool:
        """``name`` is an operand of the arithmetic itself (not inside a call)."""
        node: cst.CSTNode = name
        while node is not top:
            parent = self.tree.parent.get(node)
            if not isinstance(parent, cst.BinaryOperation):
                return False
            node = parent
        return True


def _strip_values(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``X.values`` / ``X.to_numpy()`` split the same data as ``X``."""
    if isinstance(expr, cst.Attribute) and expr.attr.value == "values":
        return expr.value
    if (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value == "to_numpy"
    ):
        return expr.func.value
    return expr


def splits_of(facts: ModuleFacts) -> Splits:
    """The module's ``Splits`` analysis, computed once per module."""
    cached = facts.__dict__.get("_splits")
    if cached is None:
        cached = facts.__dict__["_splits"] = Splits(facts)
    return cached


__all__ = ["Fit", "Split", "Splits", "dotted", "splits_of"]
