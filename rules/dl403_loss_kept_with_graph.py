"""DL403 loss-kept-with-graph: a running total or list keeps every iteration's loss
tensor, and with it the whole autograd graph of that iteration, alive.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.evaluation import evaluation_reason
from dllint.analysis.graph import graph_of
from dllint.analysis.tree import dotted
from dllint.finding import Finding
from dllint.fixes import Fix
from dllint.rule import Rule

LIST_METHODS = frozenset(
    {"append", "extend", "clear", "pop", "insert", "copy", "reverse", "sort", "remove"}
)
# Calls whose result is the same text or Python number for a float as for a 0-dim tensor.
NUMBER_SINKS = frozenset({"print", "str", "repr", "float", "int", "round", "format"})
# Reductions of a list that give a float for floats but a tensor for tensors.
LIST_REDUCTIONS = frozenset({"sum", "min", "max"})
MAX_EXPAND = 40


class LossKeptWithGraph(Rule):
    code = "DL403"
    name = "loss-kept-with-graph"
    summary = "running total or list keeps the loss tensor and its autograd graph alive"
    severity = "warning"
    needs = (("backward",), ("+", "append"))
    fixable = True

    def check(self) -> Iterator[Finding]:
        facts = self.facts
        if not facts.training.backward_calls:
            return
        graph = graph_of(facts)
        for statement, accumulator, value, form in self._accumulations():
            if evaluation_reason(facts, statement) is not None:
                continue
            if graph._grad_disabled(statement):
                continue
            backwarded = self._backwarded_in_loop(value, statement)
            known = graph.graph_loss(value)
            if known is False or (known is None and not backwarded):
                continue
            loop = self._carrying_loop(statement, accumulator)
            if loop is None or not self._trains(loop):
                continue
            if self._feeds_backward(accumulator, statement):
                continue
            yield self.finding(
                statement,
                self.message(accumulator, value, form),
                self._fix(statement, accumulator, value, form, backwarded),
            )

    # -- what accumulates ---------------------------------------------------------------
    def _accumulations(self):
        """(statement node, accumulator, accumulated value, form) for ``X += v``,
        ``X = X + v`` and ``X.append(v)``."""
        tree = self.facts.tree
        code = self.facts.module.code_for_node
        for node in tree.nodes(cst.AugAssign):
            if isinstance(node.operator, cst.AddAssign):
                yield node, node.target, node.value, "augassign"
        for node in tree.nodes(cst.Assign):
            value = node.value
            if len(node.targets) != 1 or not isinstance(value, cst.BinaryOperation):
                continue
            if not isinstance(value.operator, cst.Add):
                continue
            target = node.targets[0].target
            if not _could_match(target, value):
                continue  # most `a = b + c` (codegen is slow on huge files)
            text = code(target)
            if code(value.left) == text:
                yield node, target, value.right, "assign"
            elif code(value.right) == text:
                yield node, target, value.left, "assign"
        for call in tree.nodes(cst.Call):
            func = call.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value == "append"
                and len(call.args) == 1
                and call.args[0].keyword is None
                and not call.args[0].star
                and isinstance(tree.parent.get(call), cst.Expr)
            ):
                yield call, func.value, call.args[0].value, "append"

    # -- where -----------------------------------------------------------------------------
    def _carrying_loop(self, statement: cst.CSTNode, accumulator: cst.CSTNode):
        """The innermost loop around ``statement`` whose iterations all add to the same
        accumulator (it is not re-bound or cleared inside that loop)."""
        for loop in self.facts.loops.enclosing(statement):
            if not self._reset_in(loop, accumulator, statement):
                return loop
        return None

    def _reset_in(self, loop, accumulator, statement) -> bool:
        tree = self.facts.tree
        code = self.facts.module.code_for_node
        text = code(accumulator)
        for node in tree.descendants(loop, cst.Assign, cst.AnnAssign, cst.Call, cst.Del):
            if node is statement:
                continue
            if isinstance(node, cst.Assign):
                if any(code(t.target) == text for t in node.targets) and not _mentions(
                    node.value, text
                ):
                    return True
            elif isinstance(node, cst.AnnAssign):
                if node.value is not None and code(node.target) == text:
                    return True
            elif isinstance(node, cst.Del):
                if text in code(node.target):
                    return True
            elif isinstance(node.func, cst.Attribute) and node.func.attr.value == "clear":
                if code(node.func.value) == text:
                    return True
        return False

    def _trains(self, loop) -> bool:
        training = self.facts.training
        return any(training.is_backward(c) for c in training.reach_nodes(loop, cst.Call))

    def _backwarded_in_loop(self, value: cst.CSTNode, statement: cst.CSTNode) -> bool:
        """``value`` is a name whose same binding is backward-ed in the innermost loop
        holding ``statement`` (a loss, whatever made it, holds a graph)."""
        if not isinstance(value, cst.Name):
            return False
        facts = self.facts
        loops = facts.loops.enclosing(statement)
        if not loops:
            return False
        names = facts.names
        binding = names.binding_at(value.value, value)
        if binding is None:
            return False
        graph = graph_of(facts)
        for call in facts.training.backward_calls:
            if not facts.tree.contains(loops[0], call):
                continue
            tensor = graph.backward_tensor(call)
            if isinstance(tensor, cst.Name) and tensor.value == value.value:
                if names.binding_at(tensor.value, tensor) is binding:
                    return True
        return False

    def _feeds_backward(self, accumulator: cst.CSTNode, statement: cst.CSTNode) -> bool:
        """The accumulator (or something computed from it) is backward-ed in the same
        function: gradient accumulation over a summed loss needs the graph."""
        facts = self.facts
        tree = facts.tree
        scope = tree.scope_of(statement)
        root = _root_text(accumulator, facts.module.code_for_node)
        if root is None:
            return True  # cannot tell: stay quiet
        graph = graph_of(facts)
        pending: list[cst.CSTNode] = [
            graph.backward_tensor(call) or call
            for call in (
                facts.training.backward_calls
                if scope is tree.module
                else self._backward_calls_by_scope().get(scope, ())
            )
        ]
        seen: set[str] = set()
        expanded = 0
        while pending and expanded < MAX_EXPAND:
            expr = pending.pop()
            expanded += 1
            for node in tree.descendants(expr, cst.Name, cst.Attribute):
                text = dotted(node)
                if text is None:
                    continue
                if text == root or text.startswith(root + "."):
                    return True
                if isinstance(node, cst.Name) and text not in seen:
                    seen.add(text)
                    for binding in facts.names.bindings_of(text, scope):
                        if binding.value is not None and binding.kind in ("assign", "augassign"):
                            pending.append(binding.value)
        return False

    def _backward_calls_by_scope(self) -> dict:
        """Scope -> the ``backward()`` calls directly in it (grouped once, not per
        candidate)."""
        if self._by_scope is None:
            tree = self.facts.tree
            self._by_scope = {}
            for call in self.facts.training.backward_calls:
                self._by_scope.setdefault(tree.scope_of(call), []).append(call)
        return self._by_scope

    _by_scope: dict | None = None

    # -- message and fix -------------------------------------------------------------------
    def message(self, accumulator, value, form) -> str:
        code = self.facts.module.code_for_node
        acc, val = code(accumulator), " ".join(code(value).split())
        what = f"`{acc}` collects `{val}`" if form == "append" else f"`{acc}` adds up `{val}`"
        detach = f"{val}.item()" if isinstance(value, (cst.Name, cst.Call)) else f"({val}).item()"
        return (
            f"{what} with its autograd graph every iteration, so every iteration's graph "
            f"(the activations saved for its backward pass) stays in memory as long as "
            f"`{_root_text(accumulator, code) or acc}` lives, and memory grows each step; "
            f"accumulate `{detach}` (or `.detach()`) instead."
        )

    def _fix(self, statement, accumulator, value, form, backwarded) -> Fix | None:
        if form == "assign" or not isinstance(value, (cst.Name, cst.Call)):
            return None
        graph = graph_of(self.facts)
        exact = graph.scalar_loss(value) or (
            backwarded and self._backwarded_plainly(value, statement)
        )
        if isinstance(value, cst.Name) and not (
            exact or graph.graph_loss(value) and _bound_to_loss(self.facts, value)
        ):
            return None
        if isinstance(value, cst.Call) and self.facts.losses.loss_call(value) is None:
            return None
        method = "item" if exact and not self._used_as_tensor(accumulator, form) else "detach"
        new = cst.Call(func=cst.Attribute(value=value, attr=cst.Name(method)))
        return Fix(f"accumulate `.{method}()` of the loss", ((value, new),))

    def _backwarded_plainly(self, value: cst.Name, statement) -> bool:
        """Some ``value.backward()`` with no gradient argument (so ``value`` is a scalar)."""
        facts = self.facts
        binding = facts.names.binding_at(value.value, value)
        for call in facts.training.backward_calls:
            func = call.func
            if (
                not call.args
                and isinstance(func, cst.Attribute)
                and isinstance(func.value, cst.Name)
                and func.value.value == value.value
                and facts.names.binding_at(value.value, func.value) is binding
            ):
                return True
        return False

    def _used_as_tensor(self, accumulator, form) -> bool:
        """Some read of the accumulator might need tensors: ``.item()`` is offered only
        when every read is certainly numeric (printed, formatted, compared, ``len``,
        ``sum`` or ``float`` of it, through arithmetic); anything else (returned,
        stored, ``.item()``-ed, ``max(...)``-ed into a tensor) keeps ``.detach()``.

        A local name's reads are looked for in its outermost function only; globals and
        attributes (``self.total``) in the whole module. Answers are remembered per
        name and function, so a module of many training functions stays linear."""
        text = dotted(accumulator)
        if text is None:
            return True
        reads = self._reads()
        everywhere = reads.get(text, {})
        root = _outermost_function(accumulator, self.facts.tree)
        if isinstance(accumulator, cst.Name) and root is not None and None not in everywhere:
            key, nodes = (text, id(root), form), everywhere.get(root, [])
        else:  # a global, an attribute: any function may read it
            key = (text, None, form)
            nodes = [node for group in everywhere.values() for node in group]
        if key not in self._answers:
            tree = self.facts.tree
            self._answers[key] = any(not self._numeric_use(n, form, tree) for n in nodes)
        return self._answers[key]

    def _reads(self) -> dict[str, dict]:
        """Dotted text -> outermost function (None: module level, or named by a
        ``global``/``nonlocal``) -> its name and attribute nodes; built once."""
        if self._read_index is None:
            tree = self.facts.tree
            index: dict[str, dict] = {}
            for node in tree.nodes(cst.Name, cst.Attribute):
                text = dotted(node)
                if text is None:
                    continue
                root = _outermost_function(node, tree)
                if isinstance(tree.parent.get(node), cst.NameItem):
                    root = None  # ``global total``: the name is shared
                index.setdefault(text, {}).setdefault(root, []).append(node)
            self._read_index = index
            self._answers = {}
        return self._read_index

    _read_index: dict[str, dict] | None = None
    _answers: dict[tuple, bool]

    def _numeric_use(self, node: cst.CSTNode, form: str, tree) -> bool:
        """This occurrence of the accumulator is a write, or a read whose value ends up
        printed, formatted, compared or turned into a Python number."""
        parent = tree.parent.get(node)
        if _written(node, parent, tree):
            return True
        if form == "append":  # the list itself: its own methods, len(), sum()...
            if isinstance(parent, cst.Attribute) and parent.value is node:
                method = parent.attr.value
                return method in LIST_METHODS and method not in ("pop", "copy")
            if not isinstance(parent, cst.Arg):
                return False
            call = tree.parent.get(parent)
            if not isinstance(call, cst.Call) or call.args[0] is not parent:
                return False
            qualname = self.facts.qualname(call.func) or ""
            if qualname.startswith(("numpy.", "statistics.", "math.")):
                return True  # a numpy or Python number either way
            name = call.func.value if isinstance(call.func, cst.Name) else None
            if name in NUMBER_SINKS or name == "len":
                return True
            if name not in LIST_REDUCTIONS:
                return False
            node = call  # sum(losses), max(losses): a number only where used as one
        return self._ends_as_number(node, tree)

    def _ends_as_number(self, node: cst.CSTNode, tree) -> bool:
        """Through arithmetic, ``node``'s value is printed, formatted, compared or
        converted, and nothing else."""
        while True:
            parent = tree.parent.get(node)
            if isinstance(parent, (cst.BinaryOperation, cst.UnaryOperation)):
                if isinstance(parent, cst.BinaryOperation) and isinstance(
                    parent.operator, cst.Modulo
                ):
                    return isinstance(parent.left, (cst.SimpleString, cst.ConcatenatedString))
                node = parent
                continue
            if isinstance(parent, (cst.Comparison, cst.ComparisonTarget)):
                return True
            if isinstance(parent, cst.FormattedStringExpression):
                return True
            if isinstance(parent, cst.Arg):
                call = tree.parent.get(parent)
                if not isinstance(call, cst.Call):
                    return False
                func = call.func
                if isinstance(func, cst.Name) and func.value in NUMBER_SINKS:
                    return True
                return (
                    isinstance(func, cst.Attribute)
                    and func.attr.value == "format"
                    and isinstance(func.value, (cst.SimpleString, cst.ConcatenatedString))
                )
            return False


def _outermost_function(node: cst.CSTNode, tree) -> cst.CSTNode | None:
    outermost = None
    for ancestor in tree.ancestors(node):
        if isinstance(ancestor, (cst.FunctionDef, cst.Lambda)):
            outermost = ancestor
    return outermost


def _written(node: cst.CSTNode, parent, tree) -> bool:
    """``node`` is no read of the accumulator: it is assigned, deleted or declared
    here, or only spells the same name (an attribute's, a keyword's, a parameter's)."""
    if isinstance(parent, cst.Attribute) and parent.attr is node:
        return True
    if isinstance(parent, cst.Arg) and parent.keyword is node:
        return True
    if isinstance(parent, (cst.Param, cst.FunctionDef, cst.ClassDef, cst.ImportAlias)):
        return True
    while isinstance(parent, (cst.Element, cst.Tuple, cst.List, cst.StarredElement)):
        node, parent = parent, tree.parent.get(parent)
    if isinstance(parent, (cst.AssignTarget, cst.Del, cst.NameItem)):
        return True
    if isinstance(parent, (cst.AugAssign, cst.AnnAssign)) and parent.target is node:
        return True
    return isinstance(parent, (cst.For, cst.CompFor)) and parent.target is node


def _bound_to_loss(facts, name: cst.Name) -> bool:
    binding = facts.names.binding_at(name.value, name)
    return (
        binding is not None
        and binding.kind == "assign"
        and not binding.path
        and isinstance(binding.value, cst.Call)
        and facts.losses.loss_call(binding.value) is not None
    )


def _mentions(expr: cst.CSTNode, text: str) -> bool:
    """``expr`` reads ``text`` (``total = total + x`` keeps adding to ``total``)."""
    if dotted(expr) == text:
        return True
    return any(_mentions(child, text) for child in expr.children)


def _root_text(node: cst.CSTNode, code) -> str | None:
    """``total``, ``self.total``, ``history`` (of ``history["loss"]``)."""
    while isinstance(node, cst.Subscript):
        node = node.value
    return dotted(node)


def _could_match(target: cst.BaseExpression, value: cst.BinaryOperation) -> bool:
    """Cheap test before comparing code: ``X = X + v`` needs an operand of the
    target's own node type."""
    return type(value.left) is type(target) or type(value.right) is type(target)
