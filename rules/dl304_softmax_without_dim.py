"""DL304 softmax-without-dim: ``F.softmax(x)`` / ``nn.Softmax()`` left to pick its own dim.

Without ``dim`` PyTorch normalises over dim 0 for 0-D, 1-D and 3-D input and over dim 1
otherwise (with a deprecation warning), which for a batch of sequences is the batch
axis, not the classes.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.syntax import call_arguments_known
from dllint.analysis.tree import argument
from dllint.finding import Finding
from dllint.rule import Rule

FUNCTIONS = {
    "torch.nn.functional.softmax",
    "torch.nn.functional.log_softmax",
    "torch.nn.functional.softmin",
}
MODULES = {
    f"{prefix}.{name}"
    for prefix in ("torch.nn", "torch.nn.modules", "torch.nn.modules.activation")
    for name in ("Softmax", "LogSoftmax", "Softmin")
}


class SoftmaxWithoutDim(Rule):
    code = "DL304"
    name = "softmax-without-dim"
    summary = "softmax, log_softmax or softmin without an explicit dim"
    severity = "warning"
    needs = ("softmax", "Softmax", "softmin", "Softmin")

    def check(self) -> Iterator[Finding]:
        for call in self.facts.calls():
            qualname = self.facts.qualname(call.func)
            if qualname in FUNCTIONS:
                position = 1
            elif qualname in MODULES:
                position = 0
            else:
                continue
            if not call_arguments_known(call):
                continue  # ``*args``/``**kwargs`` may carry the dim
            if argument(call, position, "dim") is not None:
                continue
            if position == 1 and argument(call, 0, "input") is None:
                continue  # no input either: not a call we understand
            yield self.finding(call, self.message(call))

    def message(self, call: cst.Call) -> str:
        text = self.facts.module.code_for_node(call)
        if len(text) > 60 or "\n" in text:
            text = self.facts.module.code_for_node(call.func) + "(...)"
        return (
            f"`{text}` has no `dim`, so PyTorch picks one from the input's rank (dim 0 for "
            f"0-D, 1-D and 3-D input, dim 1 otherwise), which for a (batch, seq, classes) "
            f"tensor normalises across the batch; pass `dim=-1` or the class axis."
        )
