"""DL303 unstable-log-of-softmax: ``log`` of softmax/sigmoid probabilities, and
hand-written ``exp(x) / exp(x).sum()`` softmax.

Probabilities underflow to exactly 0 for confident predictions, so their ``log`` is
``-inf`` and the gradient NaN; ``exp`` overflows to ``inf`` for large scores. The fused
``F.log_softmax``/``F.logsigmoid``/``F.softmax`` subtract the maximum first. Only the
log applied straight to the activation (``torch.log(F.softmax(x, dim=1))``,
``x.softmax(1).log()``) or to a name whose only use is that log is reported: a guard
(``torch.log(p + eps)``, ``p.clamp(min=eps)``) is a deliberate choice, and stored
probabilities used elsewhere too are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.activations import (
    LOG_FUNCTIONS,
    SIGMOID,
    SOFTMAX,
    ActivationCall,
    activation_call,
)
from dllint.analysis.softmax import (
    functional_alias,
    handwritten_softmax,
    only_use,
)
from dllint.analysis.test_suites import api_test_module
from dllint.finding import Finding
from dllint.fixes import Fix
from dllint.rule import Rule

FUSED = {SOFTMAX: "log_softmax", SIGMOID: "logsigmoid"}
SOFTMAX_FUNCTIONS = ("torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax")


class UnstableLogOfSoftmax(Rule):
    code = "DL303"
    name = "unstable-log-of-softmax"
    summary = "log of softmax/sigmoid output, or a hand-written exp/sum softmax"
    severity = "warning"
    fixable = True
    # log of softmax/sigmoid, or exp ... sum (a hand-written softmax), as groups:
    # (log and activation) or (exp and sum)
    needs = (
        ("log", "exp"),
        ("log", "sum"),
        ("softmax", "sigmoid", "expit", "exp"),
        ("softmax", "sigmoid", "expit", "sum"),
    )

    def check(self) -> Iterator[Finding]:
        facts = self.facts
        if api_test_module(facts):
            return  # a test's reference formula, compared with the fused op on purpose
        for call in facts.calls():
            operand = self.log_operand(call)
            if operand is None:
                continue
            activation = activation_call(facts, operand)
            stored = None
            if activation is None and isinstance(operand, cst.Name):
                stored = only_use(facts, operand)
                activation = activation_call(facts, stored)
            if activation is None or activation.kind not in FUSED:
                continue
            fix = self.fix(call, operand, activation) if stored is None else None
            yield self.finding(call, self.message(call, operand, activation, stored), fix)
        for division, x, dim in handwritten_softmax(facts):
            alias = functional_alias(facts, division)
            softmax = f"{alias}.softmax" if alias else "torch.softmax"
            dim_code = self.code_of(dim) if dim is not None else "..."
            yield self.finding(
                division,
                f"`{self.code_of(division)}` is a hand-written softmax: `exp` overflows to "
                f"inf for scores above about 88 (11 in float16) and the division then gives "
                f"NaN; use `{softmax}({self.code_of(x)}, dim={dim_code})` (or `log_softmax` "
                f"if its log is taken), which subtracts the maximum first.",
            )

    # -- the log --------------------------------------------------------------------
    def log_operand(self, call: cst.Call) -> cst.BaseExpression | None:
        """``X`` of ``torch.log(X)`` or ``X.log()``."""
        func = call.func
        if self.facts.qualname(func) in LOG_FUNCTIONS:
            positional = [a for a in call.args if a.keyword is None]
            if positional and not positional[0].star:
                return positional[0].value
            return None
        if isinstance(func, cst.Attribute) and func.attr.value == "log" and not call.args:
            if self.facts.qualname(func) is None:
                return func.value
        return None

    def message(self, call, operand, activation: ActivationCall, stored) -> str:
        kind = activation.kind
        fused = FUSED[kind]
        source = "softmax probabilities" if kind == SOFTMAX else "sigmoid probabilities"
        where = ""
        if stored is not None:
            place = self.facts.place(stored)
            where = f" (`{self.code_of(operand)}` is `{self.code_of(stored)}`, {place})"
        return (
            f"`{self.code_of(call)}` takes the log of {source}{where}, which underflow to 0 "
            f"for confident predictions: the log becomes -inf and the gradients NaN; use "
            f"`{fused}`, which computes the same values stably."
        )

    # -- the fix --------------------------------------------------------------------
    def fix(self, call: cst.Call, operand, activation: ActivationCall) -> Fix | None:
        """``torch.log(F.softmax(x, dim=1))`` -> ``F.log_softmax(x, dim=1)``;
        ``x.softmax(1).log()`` -> ``x.log_softmax(1)``; sigmoid -> ``F.logsigmoid(x)``
        where the file imports ``torch.nn.functional`` under some name."""
        facts = self.facts
        if not activation.simple or len(call.args) > 1:
            return None
        outer = facts.module.code_for_node(call)
        if "#" in outer and "#" not in facts.module.code_for_node(operand):
            return None  # a comment would be lost
        inner = activation.call
        if activation.kind == SOFTMAX:
            if activation.form == "method":
                new = inner.with_changes(func=inner.func.with_changes(attr=cst.Name("log_softmax")))
            elif (
                isinstance(inner.func, cst.Attribute)
                and facts.qualname(inner.func) in SOFTMAX_FUNCTIONS
            ):
                new = inner.with_changes(func=inner.func.with_changes(attr=cst.Name("log_softmax")))
            else:
                return None
            replacement = f"`{fused_code(facts, new)}`"
        else:
            alias = functional_alias(facts, call)
            if alias is None:
                return None
            value = (
                activation.input.with_changes(lpar=(), rpar=())
                if _bare_ok(activation.input)
                else activation.input
            )
            new = cst.Call(
                func=cst.Attribute(value=cst.Name(alias), attr=cst.Name("logsigmoid")),
                args=[cst.Arg(value=value)],
            )
            replacement = f"`{alias}.logsigmoid(...)`"
        new = new.with_changes(lpar=call.lpar, rpar=call.rpar)
        return Fix(f"replace with {replacement}", ((call, new),))

    def code_of(self, node) -> str:
        text = " ".join(self.facts.module.code_for_node(node).split())
        return text if len(text) <= 50 else text[:47] + "..."


def fused_code(facts, node: cst.Call) -> str:
    text = cst.Module([]).code_for_node(node.func)
    return f"{text}(...)"


def _bare_ok(node: cst.BaseExpression) -> bool:
    """Parentheses around ``x`` in ``(a + b).sigmoid()`` are not needed as an argument
    (a tuple's, a generator's or a walrus's are kept)."""
    return bool(getattr(node, "lpar", ())) and not isinstance(
        node, (cst.Tuple, cst.GeneratorExp, cst.Yield, cst.NamedExpr)
    )
