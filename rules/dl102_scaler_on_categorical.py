"""DL102 scaler-on-categorical: a scaler fit on a whole table holding categorical columns."""

from __future__ import annotations

from collections.abc import Iterator

from dllint.analysis.data import Categorical, ScalerFit
from dllint.finding import Finding
from dllint.rule import Rule


class ScalerOnCategorical(Rule):
    code = "DL102"
    name = "scaler-on-categorical"
    summary = (
        "scaler fit on a whole table that holds one-hot, binary or encoded categorical columns"
    )
    severity = "warning"
    needs = (("sklearn",), ("Scaler", "scale", "normalize"))

    def check(self) -> Iterator[Finding]:
        data = self.facts.data
        for fit in data.scaler_fits():
            evidence = data.categorical_evidence(fit.data)
            if evidence:
                yield self.finding(fit.call, self._message(fit, evidence[0]))

    def _message(self, fit: ScalerFit, evidence: Categorical) -> str:
        data = self.facts.module.code_for_node(fit.data)
        place = self.facts.place(evidence.node)
        applied = (
            f"`{fit.scaler}` is fit on"
            if fit.scaler[0].isupper()
            else (f"`{fit.scaler}()` is applied to")
        )
        frame = evidence.frame
        if frame is None or frame == data:
            origin = f"which {evidence.reason} ({place})"
        else:
            origin = f"taken from `{frame}`, which {evidence.reason} ({place})"
        return (
            f"{applied} every column of `{data}`, {origin}: the 0/1 flags and category "
            f"codes become arbitrary floats that distort distances and weights; scale only "
            f"the numeric columns (a `ColumnTransformer` with the scaler on the numeric "
            f'columns and `remainder="passthrough"`)'
        )
