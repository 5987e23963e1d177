"""Value flow: what an expression holds, followed back to where it was made.

``origins(expr)`` follows names to their latest assignment, tuple unpacking,
``self.`` attributes, parameters (to the arguments at same-module call sites),
same-module function returns, calls of in-module ``nn.Module`` instances (their
``forward``), ``self(x)`` inside a module's methods and ``nn.Sequential``
contents (calling a Sequential is calling its last element). What cannot be
followed is returned as a leaf: rules decide what a leaf means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import Classes, ClassInfo, first_param
from dllint.analysis.frameworks import hook_arguments
from dllint.analysis.names import CALL, ITEM, Names
from dllint.analysis.tree import TreeIndex, literal_value

if TYPE_CHECKING:
    from dllint.analysis.containers import Containers

SEQUENTIAL = "torch.nn.Sequential"
MAX_DEPTH = 30
MAX_NESTED = 12  # origins() questions asked while answering another
MAX_STEPS = 4000  # expressions visited for one outermost origins() question


@dataclass(frozen=True)
class Value:
    """An expression and the selectors applied to its result.

    ``path`` holds steps like ``("item", 1)`` (element 1), ``("iter",)`` (one element
    of an iteration) and ``("call",)`` (the result of calling it).
    """

    node: cst.CSTNode
    path: tuple = ()


Through = Callable[[cst.CSTNode], cst.CSTNode | None]


class Values:
    def __init__(self, tree: TreeIndex, names: Names, classes: Classes) -> None:
        self.tree = tree
        self.names = names
        self.classes = classes
        self._active: set[tuple] = set()
        self._steps = 0
        self._answers: dict[tuple, tuple[Value, ...]] = {}

    # -- public -----------------------------------------------------------------------
    def origins(self, expr: cst.CSTNode, through: Through | None = None) -> list[Value]:
        """The leaves ``expr`` comes from. ``through(node)`` may return an inner
        expression to keep following (a rule's notion of "the same value", such as
        ``x.to(device)``), or None."""
        # Following a value can ask for other values' origins (an attribute's owner,
        # a called instance); a question already being answered up the stack, or a
        # chain of them too deep, stops here as a leaf instead of recursing forever.
        active = self._active
        key = (id(expr), through)
        if key in active or len(active) >= MAX_NESTED:
            return [Value(expr)]
        outermost = not active
        if outermost:
            # An outermost answer is complete (no question up the stack cut it short):
            # kept, so the many rules asking about one model or loss follow it once.
            known = self._answers.get(key)
            if known is not None:
                return list(known)
            self._steps = 0
        active.add(key)
        leaves: list[Value] = []
        try:
            self._follow(expr, (), through, leaves, set(), 0)
        finally:
            active.discard(key)
        unique = []
        seen = set()
        for leaf in leaves:
            leaf_key = (id(leaf.node), leaf.path)
            if leaf_key not in seen:
                seen.add(leaf_key)
                unique.append(leaf)
        if outermost:
            self._answers[key] = tuple(unique)
        return unique

    @cached_property
    def containers(self) -> Containers:
        """What ``nn.Sequential``/``ModuleList`` constructions and layer lists hold."""
        from dllint.analysis.containers import Containers

        return Containers(self.tree, self.names, self.classes, self)

    def returns(self, function: cst.FunctionDef) -> list[cst.BaseExpression]:
        """The expressions ``function`` returns (not those of nested functions)."""
        found = []
        for ret in self.tree.descendants(function, cst.Return):
            if ret.value is not None and self._owner(ret) is function:
                found.append(ret.value)
        return found

    def call_sites(self, function: cst.FunctionDef) -> list[cst.Call]:
        return self._call_sites.get(function, [])

    def called_function(self, call: cst.Call) -> cst.FunctionDef | None:
        """The same-module function or method (``self.m()``) a call runs, if any."""
        func = call.func
        if isinstance(func, cst.Name):
            binding = self.names.binding_at(func.value, func)
            if binding is not None and binding.kind == "def":
                return binding.node
            return None
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            owner = self.classes.enclosing(call)
            method = self.tree.function_of(call)
            if owner is not None and method is not None:
                if func.value.value == first_param(method):
                    return owner.method(func.attr.value)
            info = self._constructed_into(func.value)
            if info is not None:  # ``model = Model(); model.add_loss_op(loss)``
                return info.method(func.attr.value)
        return None

    def _constructed_into(self, name: cst.Name) -> ClassInfo | None:
        """The in-module class whose constructor call ``name`` was last assigned
        (``model = Model(...)``, also ``Model(...).to(device)``). Syntax only: the
        call sites are what ``origins`` itself follows, so no value flow here."""
        binding = self.names.binding_at(name.value, name)
        if binding is None or binding.kind != "assign" or binding.path:
            return None
        value = binding.value
        while (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and value.func.attr.value in ("to", "cuda", "cpu", "double", "float", "half")
        ):
            value = value.func.value
        return self.classes.constructed(value) if isinstance(value, cst.Call) else None

    def instance_class(self, expr: cst.CSTNode) -> ClassInfo | None:
        """The in-module class ``expr`` is an instance of, when every origin agrees."""
        found = {
            id(info): info
            for leaf in self.origins(expr, through=self.module_passthrough)
            if not leaf.path and (info := self.classes.constructed(leaf.node)) is not None
        }
        return next(iter(found.values())) if len(found) == 1 else None

    def module_passthrough(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """``model.to(device)``, ``DataParallel(model)``... hold the same module."""
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in MODULE_WRAPPERS:
                return func.value
            if node.args and self.names.qualname(func) in MODULE_WRAPPER_FUNCTIONS:
                return node.args[0].value
        return None

    # -- following --------------------------------------------------------------------
    def _follow(self, expr, path, through, leaves, seen, depth) -> None:
        key = (id(expr), path)
        # A recursive function called with ``x[0]`` grows the path at every turn, so
        # ``seen`` never repeats: the step budget keeps the fan-out from exploding.
        self._steps += 1
        if depth > MAX_DEPTH or key in seen or self._steps > MAX_STEPS:
            leaves.append(Value(expr, path))
            return
        seen = seen | {key}
        if through is not None:
            inner = through(expr)
            if inner is not None:
                self._follow(inner, path, through, leaves, seen, depth + 1)
                return

        def step(e, p):
            return self._follow(e, p, through, leaves, seen, depth + 1)

        if isinstance(expr, cst.Name):
            if self._follow_name(expr, path, step):
                return
        elif isinstance(expr, cst.Attribute):
            values = self._attribute_values(expr)
            if values:
                for value in values:
                    step(value, path)
                return
        elif isinstance(expr, (cst.Tuple, cst.List)) and path and path[0][0] == ITEM:
            elements = expr.elements
            index = path[0][1]
            if all(not isinstance(e, cst.StarredElement) for e in elements) and -len(
                elements
            ) <= index < len(elements):
                step(elements[index].value, path[1:])
                return
        elif isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
            index = expr.slice[0].slice
            if isinstance(index, cst.Index) and isinstance(literal_value(index.value), int):
                if not isinstance(literal_value(index.value), bool):
                    step(expr.value, ((ITEM, literal_value(index.value)),) + path)
                    return
        elif isinstance(expr, cst.Call):
            if self._follow_call(expr, path, step):
                return
        elif isinstance(expr, cst.NamedExpr):
            step(expr.value, path)
            return
        if path and path[0][0] == CALL:
            if self._follow_module_call(expr, path, step):
                return
        leaves.append(Value(expr, path))

    def _follow_name(self, expr: cst.Name, path, step) -> bool:
        """Follow every binding that may reach ``expr`` (both arms of an ``if``);
        one that cannot be followed leaves ``expr`` itself as an unknown leaf."""
        bindings = self.names.reaching_bindings(expr.value, expr)
        followed = [self._follow_binding(binding, path, step) for binding in bindings]
        if not any(followed):
            return False  # the caller leaves ``expr`` as the leaf
        if not all(followed):
            step(expr, path)  # already being followed: becomes a leaf beside the others
        return True

    def _follow_binding(self, binding, path, step) -> bool:
        if binding.kind == "assign" and binding.value is not None:
            step(binding.value, binding.path + path)
            return True
        if binding.kind == "param" and isinstance(binding.scope, cst.FunctionDef):
            arguments = self._arguments_for(binding.scope, binding.node) or hook_arguments(
                self, binding.scope, binding.node
            )  # a framework's hook: the arguments the framework passes
            if arguments:
                for argument in arguments:
                    step(argument, path)
                return True
        return False

    def _attribute_values(self, expr: cst.Attribute) -> list[cst.BaseExpression]:
        """Values assigned to ``self.x`` (inside the class) or ``obj.x`` (an instance)."""
        base = expr.value
        if isinstance(base, cst.Name):
            method = self.tree.function_of(expr)
            owner = self.classes.enclosing(expr)
            if method is not None and owner is not None and base.value == first_param(method):
                return owner.attribute_values(expr.attr.value)
        owner = self.instance_class(base)
        if owner is not None:
            return owner.attribute_values(expr.attr.value)
        return []

    def _follow_call(self, call: cst.Call, path, step) -> bool:
        function = self.called_function(call)
        if function is not None:
            returns = self.returns(function)
            for value in returns:
                step(value, path)
            return bool(returns)
        func = call.func
        # self(x) inside a module's own methods is its forward.
        if isinstance(func, cst.Name):
            method = self.tree.function_of(call)
            owner = self.classes.enclosing(call)
            if method is not None and owner is not None and func.value == first_param(method):
                return self._forward_returns(owner, path, step)
        if self.classes.constructed(call) is not None:
            return False
        # Calling an instance: follow the callee, then call what it holds.
        handled = False
        for leaf in self.origins(func, through=self.module_passthrough):
            if leaf.path:
                continue
            handled = self._follow_module_call(leaf.node, ((CALL,),) + path, step) or handled
        return handled

    def _follow_module_call(self, node, path, step) -> bool:
        """``node`` holds a module (or model) that is called; ``path`` starts with CALL."""
        rest = path[1:]
        info = self.classes.constructed(node)
        if info is not None:
            return self._forward_returns(info, rest, step)
        if isinstance(node, cst.Call) and self.names.qualname(node.func) == SEQUENTIAL:
            held = self.containers.of_module(node)  # calling a Sequential calls its last layer
            if held is not None and held.last is not None:
                step(held.last, path)
                return True
        if isinstance(node, cst.Call):  # a torchvision classifier ends in its replaced head
            head = self.containers.replaced_head(node)
            if head is not None:
                step(head, path)
                return True
        return False

    def _forward_returns(self, info: ClassInfo, path, step) -> bool:
        forward = info.method("forward") or info.method("__call__")
        if forward is None:
            return False
        returns = self.returns(forward)
        for value in returns:
            step(value, path)
        return bool(returns)

    def _arguments_for(self, function: cst.FunctionDef, param: cst.Param) -> list:
        params = [*function.params.posonly_params, *function.params.params]
        is_method = self.tree.class_of(function) is not None and first_param(function)
        names = [p.name.value for p in params]
        if is_method and names:
            if names[0] == param.name.value:
                return []
            names = names[1:]
        found = []
        for call in self.call_sites(function):
            value = None
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value == param.name.value:
                    value = arg.value
            if value is None and param.name.value in names:
                position = names.index(param.name.value)
                positional = [a for a in call.args if a.keyword is None]
                if any(a.star for a in positional[: position + 1]):
                    continue
                if position < len(positional):
                    value = positional[position].value
            if value is None and param.default is not None:
                value = param.default
            if value is not None:
                found.append(value)
        return found

    def _owner(self, node: cst.CSTNode) -> cst.CSTNode | None:
        for ancestor in self.tree.ancestors(node):
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda)):
                return ancestor
        return None

    @cached_property
    def _call_sites(self) -> dict[cst.FunctionDef, list[cst.Call]]:
        sites: dict[cst.FunctionDef, list[cst.Call]] = defaultdict(list)
        for call in self.tree.nodes(cst.Call):
            function = self.called_function(call)
            if function is None and (info := self.classes.constructed(call)) is not None:
                function = info.method("__init__")  # Cls(a, b) runs Cls.__init__(self, a, b)
            if function is not None:
                sites[function].append(call)
        return sites


def sequential_layers(call: cst.Call) -> list[cst.BaseExpression]:
    """The modules of ``nn.Sequential(a, b, c)`` or ``nn.Sequential(OrderedDict([...]))``."""
    positional = [a for a in call.args if a.keyword is None]
    if any(a.star for a in positional):
        return []
    layers = [a.value for a in positional]
    if len(layers) == 1 and isinstance(layers[0], cst.Call):
        inner = layers[0]
        if isinstance(inner.func, cst.Name) and inner.func.value == "OrderedDict" and inner.args:
            items = inner.args[0].value
            if isinstance(items, (cst.List, cst.Tuple)):
                pairs = []
                for element in items.elements:
                    if isinstance(element.value, cst.Tuple) and len(element.value.elements) == 2:
                        pairs.append(element.value.elements[1].value)
                    else:
                        return []
                return pairs
    return layers


MODULE_WRAPPERS = {"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "train", "eval"}
MODULE_WRAPPER_FUNCTIONS = {
    "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel",
    "torch.nn.parallel.DistributedDataParallel",
    "torch.compile",
}
