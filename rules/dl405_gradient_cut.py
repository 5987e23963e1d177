"""DL405 gradient-cut: the loss that is backward-ed was computed from a value cut from
the model's graph (``.detach()``, ``.data``, ``.item()``, ``.numpy()``, a
``torch.tensor(...)`` re-wrap), so no gradient reaches the model.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.evaluation import evaluation_reason
from dllint.analysis.graph import CUT, graph_of
from dllint.finding import Finding
from dllint.rule import Rule

MAX_TEXT = 50


class GradientCut(Rule):
    code = "DL405"
    name = "gradient-cut"
    summary = "loss computed from a model output cut from the graph, so backward trains nothing"
    severity = "error"
    needs = (
        ("backward",),
        ("detach", ".data", "item", "numpy", "tolist", "tensor", "Tensor", "no_grad",
         "inference_mode", "float(", "from_numpy"),
    )  # fmt: skip

    def check(self) -> Iterator[Finding]:
        graph = graph_of(self.facts)
        reported: set[cst.CSTNode] = set()
        for call in self.facts.training.backward_calls:
            if evaluation_reason(self.facts, call) is not None:
                continue
            tensor = graph.backward_tensor(call)
            if tensor is None:
                continue
            status = graph.status(tensor)
            if status.word != CUT or status.cut is None:
                continue
            node = status.loss or self._builder(tensor)
            if node in reported:
                continue
            reported.add(node)
            yield self.finding(node, self.message(tensor, status.cut, call))

    def _builder(self, tensor: cst.CSTNode) -> cst.CSTNode:
        """The expression that builds the backward-ed value (its assignment's value)."""
        seen = 0
        while isinstance(tensor, cst.Name) and seen < 10:
            binding = self.facts.names.binding_at(tensor.value, tensor)
            if binding is None or binding.kind != "assign" or binding.path:
                break
            tensor = binding.value
            seen += 1
        return tensor

    def _text(self, node: cst.CSTNode) -> str:
        text = " ".join(self.facts.module.code_for_node(node).split())
        return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."

    def message(self, tensor: cst.CSTNode, cut: cst.CSTNode, backward: cst.Call) -> str:
        loss = self._text(tensor)
        how = self._text(cut)
        if graph_of(self.facts).cut_by_no_grad(cut):
            what = f"the model output `{how}`, computed under `torch.no_grad()`"
            fix = "compute it outside the no-grad block"
        else:
            what = f"`{how}`, which is cut from the model's autograd graph"
            fix = "compute the loss from the model output itself (no `.detach()`, `.data`, "
            fix += "`.item()`, `.numpy()` or `torch.tensor(...)` re-wrap)"
        return (
            f"`{loss}` is backward-ed but is computed from {what}, so no gradient from it "
            f"reaches the model's parameters and this step does not train them; {fix}."
        )
