"""DL306 broadcast-prone-shapes: ``(N, 1)`` meets ``(N,)`` and silently becomes ``(N, N)``.

An elementwise loss, or hand-written arithmetic that is then reduced, compares two
tensors the file itself shapes differently: one a column (a one-unit head, an
``unsqueeze(1)``), the other 1-D (a pandas Series' ``.values``, ``torch.randn(n)``,
batches of a ``TensorDataset`` over such a tensor). Broadcasting makes every pair.
Unknown shapes are left to ``dllint trace``, which watches a real training step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import libcst as cst

from dllint.analysis.losses import ELEMENTWISE, LossCall
from dllint.analysis.shapes import COLUMN, FLAT, Shape, Shapes
from dllint.analysis.tree import literal_value
from dllint.finding import Finding
from dllint.rule import Rule

RAISING = frozenset({"bce", "bce_with_logits"})  # these losses refuse unequal sizes
ARITHMETIC = (cst.Subtract, cst.Add, cst.Multiply)
# What may sit between the arithmetic and its reduction: ``(d) ** 2``, ``abs(d)``, ...
WRAPPING_METHODS = frozenset({"abs", "pow", "square", "sqrt", "abs_", "pow_"})
WRAPPING_FUNCTIONS = frozenset(
    {"torch.abs", "torch.pow", "torch.square", "torch.sqrt", "numpy.abs", "numpy.square"}
)
REDUCING_METHODS = frozenset({"mean", "sum", "nanmean", "nansum"})
REDUCING_FUNCTIONS = frozenset(
    {"torch.mean", "torch.sum", "torch.nanmean", "torch.nansum", "numpy.mean", "numpy.sum"}
)
MAX_HOPS = 6


class BroadcastProneShapes(Rule):
    code = "DL306"
    name = "broadcast-prone-shapes"
    summary = "an (N, 1) tensor compared with an (N,) tensor broadcasts to (N, N)"
    severity = "error"
    needs = (
        ("torch",),
        # an elementwise loss, or the nn.Linear(k, 1) head that makes a model output
        ("MSELoss", "L1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "mse_loss",
         "l1_loss", "huber_loss", "binary_cross_entropy", "Linear"),
    )  # fmt: skip

    _names: dict[str, list[cst.Name]] | None = None

    def check(self) -> Iterator[Finding]:
        shapes = Shapes(self.facts)
        for loss in self.facts.losses.calls():
            if loss.kind not in ELEMENTWISE or loss.input is None or loss.target is None:
                continue
            pair = _mismatch(shapes.of(loss.input), shapes.of(loss.target))
            if pair is not None:
                yield self.finding(loss.call, self._loss_message(loss, *pair))
        for operation in self.facts.tree.nodes(cst.BinaryOperation):
            if not isinstance(operation.operator, ARITHMETIC):
                continue
            if self._deliberate(operation) or not self._feeds_reduction(operation, 0):
                continue
            pair = _mismatch(shapes.of(operation.left), shapes.of(operation.right))
            if pair is not None and any(side.from_model for side in pair):
                if any(_constant(side) for side in pair):
                    continue
                yield self.finding(operation, self._arithmetic_message(operation, *pair))

    # -- arithmetic -------------------------------------------------------------------
    def _deliberate(self, operation: cst.BinaryOperation) -> bool:
        """``s.unsqueeze(1) - s`` or ``a[:, None] * b``: an outer operation written out on
        purpose (pairwise ranking losses, distance matrices)."""
        return any(_expanded_inline(side) for side in (operation.left, operation.right))

    def _feeds_reduction(self, node: cst.CSTNode, hops: int) -> bool:
        """The value of ``node`` reaches ``.mean()``/``.sum()``/``torch.mean(...)``,
        possibly through ``** 2``, ``abs``, ``.pow(2)``, more arithmetic and assignments."""
        if hops > MAX_HOPS:
            return False
        parent = self.facts.tree.parent.get(node)
        if isinstance(parent, cst.BinaryOperation):
            if isinstance(parent.operator, cst.Power) and parent.left is node:
                return self._feeds_reduction(parent, hops + 1)
            if isinstance(parent.operator, (cst.Multiply, cst.Divide, cst.Add, cst.Subtract)):
                return self._feeds_reduction(parent, hops + 1)  # 0.5 * d ** 2, d + eps
            return False
        if isinstance(parent, cst.Attribute) and parent.value is node:
            call = self.facts.tree.parent.get(parent)
            if not isinstance(call, cst.Call) or call.func is not parent:
                return False
            method = parent.attr.value
            if method in REDUCING_METHODS:
                return True
            return method in WRAPPING_METHODS and self._feeds_reduction(call, hops + 1)
        if isinstance(parent, cst.Arg) and parent.value is node:
            call = self.facts.tree.parent.get(parent)
            if not isinstance(call, cst.Call) or not call.args or call.args[0] is not parent:
                return False
            qualname = self.facts.qualname(call.func)
            if qualname in REDUCING_FUNCTIONS:
                return True
            if qualname in WRAPPING_FUNCTIONS or _is_builtin_abs(call, self.facts):
                return self._feeds_reduction(call, hops + 1)
            return False
        if isinstance(parent, cst.Assign) and parent.value is node and len(parent.targets) == 1:
            target = parent.targets[0].target
            if isinstance(target, cst.Name):
                return any(self._feeds_reduction(use, hops + 1) for use in self._uses(target))
        return False

    def _uses(self, target: cst.Name) -> list[cst.Name]:
        """The names that read the value bound at ``target``."""
        names = self.facts.names
        if self._names is None:
            self._names = defaultdict(list)
            for name in self.facts.tree.nodes(cst.Name):
                self._names[name.value].append(name)
        found = []
        for use in self._names.get(target.value, ()):
            if use is target:
                continue
            binding = names.binding_at(use.value, use)
            if binding is not None and binding.node is target:
                found.append(use)
        return found

    # -- messages ---------------------------------------------------------------------
    def _loss_message(self, loss: LossCall, first: Shape, second: Shape) -> str:
        code = self._code
        if loss.functional or loss.call.func is loss.callee:
            who = f"`{code(loss.call.func)}`"
        else:
            who = f"`{code(loss.call.func)}` ({code(loss.callee.func)})"
        compared = (
            f"{who} compares {self._described(loss.input, first)}, "
            f"with {self._described(loss.target, second)}"
        )
        fix = self._fix(loss.input, loss.target, first)
        if loss.kind in RAISING:
            return (
                f"{compared}; binary cross-entropy refuses different sizes, so training stops "
                f"with a ValueError at the first batch; use {fix}. "
                "Run `dllint trace` to confirm."
            )
        return (
            f"{compared}; they broadcast to (N, N), so the loss is finite but meaningless; "
            f"use {fix}. Run `dllint trace` to confirm."
        )

    def _arithmetic_message(self, operation, left: Shape, right: Shape) -> str:
        return (
            f"`{self._code(operation)}` combines {self._described(operation.left, left)}, "
            f"with {self._described(operation.right, right)}; they broadcast to (N, N), so the "
            "reduction runs over every (i, j) pair and the result is finite but meaningless; use "
            f"{self._fix(operation.left, operation.right, left)}. "
            "Run `dllint trace` to confirm."
        )

    def _described(self, expr: cst.CSTNode, shape: Shape) -> str:
        text = self._code(expr)
        evidence = self._code(shape.evidence)
        if evidence == text:
            return f"`{text}`, shaped {shape.text}"
        return f"`{text}`, shaped {shape.text} by `{evidence}`"

    def _fix(self, first: cst.CSTNode, second: cst.CSTNode, first_shape: Shape) -> str:
        column, flat = (first, second) if first_shape.kind == COLUMN else (second, first)
        return f"`{self._operand(column)}.squeeze(1)` or `{self._operand(flat)}.unsqueeze(1)`"

    def _operand(self, expr: cst.CSTNode) -> str:
        simple = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)
        if isinstance(expr, simple) and not expr.lpar:
            return self._code(expr)
        if getattr(expr, "lpar", None):
            expr = expr.with_changes(lpar=[], rpar=[])
        return f"({self._code(expr)})"

    def _code(self, node: cst.CSTNode) -> str:
        if isinstance(node, cst.BinaryOperation):
            node = node.with_changes(lpar=[], rpar=[])
        text = " ".join(cst.Module([]).code_for_node(node).split())
        return text if len(text) <= 60 else text[:57] + "..."


def _mismatch(first: Shape | None, second: Shape | None) -> tuple[Shape, Shape] | None:
    """The pair, in order, when one is a column and the other 1-D."""
    if first is None or second is None:
        return None
    if {first.kind, second.kind} == {COLUMN, FLAT}:
        return first, second
    return None


def _expanded_inline(expr: cst.CSTNode) -> bool:
    """The operand itself is ``x.unsqueeze(1)``, ``x[:, None]`` or ``x.view(-1, 1)``."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        method = expr.func.attr.value
        if method in ("unsqueeze", "expand_dims"):
            return True
        if method in ("view", "reshape"):
            sizes = [a.value for a in expr.args]
            if len(sizes) == 1 and isinstance(sizes[0], (cst.Tuple, cst.List)):
                sizes = [e.value for e in sizes[0].elements]
            return len(sizes) == 2 and literal_value(sizes[-1]) == 1
        if expr.func.attr.value not in ("float", "double", "to", "cuda", "detach"):
            return False
        expr = expr.func.value
    if isinstance(expr, cst.Subscript):
        return any(
            isinstance(element.slice, cst.Index)
            and isinstance(element.slice.value, cst.Name)
            and element.slice.value.value == "None"
            for element in expr.slice
        )
    return False


def _constant(shape: Shape) -> bool:
    """``torch.tensor([1.0, 2.0, 0.5])``: per-class or per-feature weights, not a batch."""
    return isinstance(shape.evidence, (cst.List, cst.ListComp))


def _is_builtin_abs(call: cst.Call, facts) -> bool:
    func = call.func
    return (
        isinstance(func, cst.Name)
        and func.value == "abs"
        and facts.names.binding_at("abs", func) is None
    )
