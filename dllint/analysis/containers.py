"""What a container of modules holds: ``nn.Sequential``/``nn.ModuleList`` and the lists they
are built from.

Layers are often collected in a Python list before they become a module::

    layers = []
    for _ in range(depth):
        layers.append(nn.Linear(d, d))
    layers += [nn.Linear(d, n), nn.Softmax(dim=1)]
    model = nn.Sequential(*layers)

``held(expr)`` says what a container expression holds, ``of_module(call)`` what an
``nn.Sequential``/``nn.ModuleList``/``nn.ModuleDict`` construction holds once the
statements that change the object (``seq.add_module(...)``, ``seq.append(...)``,
``seq[-1] = ...``) have run. Both follow list literals, ``*`` unpacking, ``+``/``+=``,
``append``/``extend``/``insert``/``pop``, ``layers[i] = ...``, comprehensions,
``list(...)``, ``OrderedDict``s, ``self.layers`` lists built in a method,
``model.children()`` and slices of known lists.

The answer (``Elements``) keeps three things apart: ``members``, every element that may
be held (any append counts, in a branch or a loop too), ``ordered``, the exact elements
in order (only when nothing conditional changed the list) and ``last``, the last element
(only when the final change is unconditional). ``parts`` are models only some of whose
children are held (``list(resnet.children())[:-1]``). None means unknown: the list is
passed to a function that may change it, rebound in a way that cannot be followed, or
built from something else. Rules must not guess from unknown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import first_param
from dllint.analysis.tree import dotted, literal_value

if TYPE_CHECKING:
    from dllint.analysis.classes import Classes
    from dllint.analysis.names import Names
    from dllint.analysis.tree import Scope, TreeIndex
    from dllint.analysis.values import Values

SEQUENTIAL = "torch.nn.Sequential"
MODULE_LIST = "torch.nn.ModuleList"
MODULE_DICT = "torch.nn.ModuleDict"
CONTAINER_KINDS = {SEQUENTIAL, MODULE_LIST, MODULE_DICT}
ORDERED_DICTS = {"collections.OrderedDict", "typing.OrderedDict"}
MAX_DEPTH = 12
# torchvision classifiers whose forward ends with the named attribute (builder prefixes).
TORCHVISION_HEADS = (
    ("resnet", "fc"), ("resnext", "fc"), ("wide_resnet", "fc"), ("regnet", "fc"),
    ("shufflenet", "fc"), ("densenet", "classifier"), ("mobilenet", "classifier"),
    ("efficientnet", "classifier"), ("vgg", "classifier"), ("alexnet", "classifier"),
    ("mnasnet", "classifier"), ("convnext", "classifier"),
)  # fmt: skip

# Statements and expressions under which a change may not run before the use.
BRANCHES = (
    cst.If, cst.Else, cst.For, cst.While, cst.Try, cst.TryStar, cst.ExceptHandler,
    cst.ExceptStarHandler, cst.Finally, cst.MatchCase, cst.IfExp, cst.BooleanOperation,
)  # fmt: skip
LOOPS = (cst.For, cst.While)
# Uses of a list that read it and keep it as it is.
READING_BUILTINS = {
    "len", "list", "tuple", "print", "enumerate", "zip", "reversed", "sorted", "iter",
    "isinstance", "repr", "str", "id", "sum", "any", "all", "min", "max",
}  # fmt: skip
READING_METHODS = {"index", "count", "copy", "keys", "values", "items", "get"}
# Methods of a module object that change which children it holds.
MODULE_CHANGES = {"add_module", "register_module", "append", "extend", "insert", "pop",
                  "update", "setdefault", "clear", "__setitem__", "__delitem__"}  # fmt: skip


@dataclass(frozen=True)
class Elements:
    """What a container holds (see the module docstring). ``keys`` are the names of the
    ``ordered`` elements when the container is a mapping (``OrderedDict``, ``add_module``).
    ``pairs`` are elements ``(a, b)`` where ``b`` comes right after ``a`` wherever ``a`` is
    held, even when the whole order is not certain (``layers += [conv, nn.BatchNorm2d(c)]``
    in a loop)."""

    members: tuple[cst.BaseExpression, ...]
    ordered: tuple[cst.BaseExpression, ...] | None
    last: cst.BaseExpression | None
    parts: tuple[cst.CSTNode, ...] = ()
    keys: tuple[str, ...] | None = None
    mapping: bool = False
    pairs: tuple[tuple[cst.BaseExpression, cst.BaseExpression], ...] = ()

    @property
    def complete(self) -> bool:
        """Every element is known (no model of which only some children are held)."""
        return not self.parts


EMPTY = Elements((), (), None)
END = "end"  # what follows the last element: the container's own output


def in_order(ordered: tuple, parts=(), keys=None, mapping=False) -> Elements:
    """Exactly ``ordered``."""
    pairs = tuple(zip(ordered, ordered[1:], strict=False))
    return Elements(_unique(ordered), ordered, ordered[-1] if ordered else None, parts, keys,
                    mapping, pairs)  # fmt: skip


def single(node: cst.BaseExpression, key: str | None = None) -> Elements:
    return Elements((node,), (node,), node, keys=(key,) if key is not None else None)


def concat(first: Elements, second: Elements) -> Elements:
    """``first`` then ``second``."""
    ordered = None
    if first.ordered is not None and second.ordered is not None:
        ordered = first.ordered + second.ordered
    if second.parts:
        last = None
    elif second.ordered is not None:
        last = second.ordered[-1] if second.ordered else first.last
    else:  # a comprehension: possibly empty
        last = second.last if not first.members and not first.parts else None
    keys = None
    if ordered is not None and (first.keys is not None or not first.ordered):
        if second.keys is not None or not second.ordered:
            keys = (first.keys or ()) + (second.keys or ())
    pairs = first.pairs + second.pairs
    if first.last is not None and second.ordered:
        pairs += ((first.last, second.ordered[0]),)
    return Elements(
        _unique(first.members + second.members),
        ordered,
        last,
        _unique(first.parts + second.parts),
        keys,
        first.mapping or second.mapping,
        pairs,
    )


def merge(first: Elements, second: Elements) -> Elements:
    """Either ``first`` or ``second``."""
    same = (
        first.ordered is not None
        and second.ordered is not None
        and len(first.ordered) == len(second.ordered)
        and all(a is b for a, b in zip(first.ordered, second.ordered, strict=True))
    )
    # (a, b) holds in the merge when it holds on both sides, or ``a`` is held on one only
    mine = {id(n) for n in first.members}
    theirs = {id(n) for n in second.members}
    common = {(id(a), id(b)) for a, b in second.pairs}
    pairs = tuple(
        pair
        for pair in first.pairs
        if (id(pair[0]), id(pair[1])) in common or id(pair[0]) not in theirs
    ) + tuple(pair for pair in second.pairs if id(pair[0]) not in mine)
    return Elements(
        _unique(first.members + second.members),
        first.ordered if same else None,
        first.last if first.last is second.last else None,
        _unique(first.parts + second.parts),
        first.keys if same else None,
        first.mapping or second.mapping,
        tuple({(id(a), id(b)): (a, b) for a, b in pairs}.values()),
    )


def _unique(nodes: tuple) -> tuple:
    return tuple({id(n): n for n in nodes}.values())


@dataclass(frozen=True)
class _Holder:
    """Where a list or module object lives: the text that names it (``layers``,
    ``self.layers``), the scope whose statements change it and, for a name, the binding."""

    key: str
    scope: Scope
    self_name: str | None = None
    param: cst.Param | None = None  # a function parameter: the call sites' arguments


@dataclass(frozen=True)
class Position:
    """``member`` is element ``index`` (None: order not certain) of ``container``."""

    container: cst.Call
    index: int | None
    member: cst.BaseExpression


class _Unknown(Exception):
    """A use of the container that may change it in a way that cannot be followed."""


class Containers:
    """Container facts of one module; ask through ``facts.values.containers``."""

    def __init__(self, tree: TreeIndex, names: Names, classes: Classes, values: Values) -> None:
        self.tree = tree
        self.names = names
        self.classes = classes
        self.values = values
        self._modules: dict[int, Elements | None] = {}
        self._events: dict[tuple, list[cst.CSTNode]] = {}
        self._env: dict[tuple, Elements] = {}
        self._active: set[tuple] = set()
        self._depth = 0

    # -- public -----------------------------------------------------------------------
    def held(self, expr: cst.CSTNode) -> Elements | None:
        """What a container expression (a list, a name holding one, ``*layers``'s
        ``layers``, a Sequential) holds where it is evaluated; None when unknown."""
        return self._expr(expr)

    def is_container(self, call: cst.CSTNode) -> bool:
        return isinstance(call, cst.Call) and self.names.qualname(call.func) in CONTAINER_KINDS

    def of_module(self, call: cst.Call) -> Elements | None:
        """What an ``nn.Sequential``/``ModuleList``/``ModuleDict`` construction holds,
        after the statements that add to or replace its children."""
        key = id(call)
        if key not in self._modules:
            self._modules[key] = None  # a cycle is not evidence
            self._modules[key] = self._module(call)
        return self._modules[key]

    def replaced_head(self, call: cst.Call) -> cst.BaseExpression | None:
        """The module a torchvision classifier's head was replaced by, where its output is
        the model's: ``model = resnet18(); model.fc = nn.Sequential(...)`` (one
        unconditional assignment where the model is built, nothing else changing it)."""
        qualname = self.names.qualname(call.func) or ""
        if not qualname.startswith("torchvision.models."):
            return None
        builder = qualname.rsplit(".", 1)[1]
        attribute = next((a for prefix, a in TORCHVISION_HEADS if builder.startswith(prefix)), None)
        holder = self._module_holder(call) if attribute is not None else None
        if holder is None:
            return None
        found = []
        for node in self._attributes.get(attribute, ()):
            if dotted(node.value) != holder.key.replace("self.", f"{holder.self_name}.", 1):
                continue
            parent = self.tree.parent.get(node)
            if not isinstance(parent, cst.AssignTarget):
                if self._changes_object(node):
                    return None  # model.fc.add_module(...), model.fc[0] = ...
                continue
            assign = self.tree.parent.get(parent)
            if self.tree.scope_of(node) is not holder.scope or not isinstance(assign, cst.Assign):
                return None
            if len(assign.targets) != 1 or self._conditional(node, holder.scope, None):
                return None
            if self.tree.order[node] < self.tree.order[call]:
                continue  # an earlier model's head
            found.append(assign.value)
        return found[0] if len(found) == 1 else None

    def positions(self, node: cst.CSTNode) -> list[Position]:
        """Where the module built by ``node`` (a construction, or an element expression)
        may be held: container constructions with its position (None when the order is
        not certain) and the element expression that puts it there."""
        return self._index.get(id(node), [])

    def successor(self, container: cst.Call, member: cst.CSTNode):
        """What comes right after ``member`` in ``container``: an element, ``END`` (it is
        the last one) or None (unknown)."""
        held = self.of_module(container)
        if held is None or held.parts:
            return None
        if held.ordered is not None:
            found = [i for i, m in enumerate(held.ordered) if m is member]
            if len(found) != 1:
                return None
            i = found[0]
            return held.ordered[i + 1] if i + 1 < len(held.ordered) else END
        following = [b for a, b in held.pairs if a is member]
        if len(following) == 1:
            return following[0]
        if not following and member is held.last:
            return END
        return None

    @cached_property
    def _names(self) -> dict[str, list[cst.Name]]:
        """Every name node by its text, in textual order."""
        found: dict[str, list[cst.Name]] = defaultdict(list)
        for node in self.tree.nodes(cst.Name):
            found[node.value].append(node)
        return found

    @cached_property
    def _attributes(self) -> dict[str, list[cst.Attribute]]:
        """Every attribute node by its attribute name, in textual order."""
        found: dict[str, list[cst.Attribute]] = defaultdict(list)
        for node in self.tree.nodes(cst.Attribute):
            found[node.attr.value].append(node)
        return found

    @cached_property
    def _index(self) -> dict[int, list[Position]]:
        index: dict[int, list[Position]] = defaultdict(list)
        for call in self.tree.nodes(cst.Call):
            if not self.is_container(call):
                continue
            found = self.of_module(call)
            if found is None:
                continue
            order = found.ordered if found.ordered is not None else found.members
            for i, member in enumerate(order):
                position = Position(call, i if found.ordered is not None else None, member)
                built = self.built_by(member)
                for node in (member, built) if built is not None else (member,):
                    if position not in index[id(node)]:
                        index[id(node)].append(position)
        return index

    def built_by(self, member: cst.CSTNode) -> cst.Call | None:
        """The construction a name element holds (``conv`` in ``[conv, nn.ReLU()]``)."""
        if not isinstance(member, cst.Name):
            return None
        leaves = self.values.origins(member, through=self.values.module_passthrough)
        if len(leaves) == 1 and not leaves[0].path and isinstance(leaves[0].node, cst.Call):
            return leaves[0].node
        return None

    # -- constructions ------------------------------------------------------------------
    def _module(self, call: cst.Call) -> Elements | None:
        qualname = self.names.qualname(call.func)
        if qualname == SEQUENTIAL:
            built = self._sequential_arguments(call)
        elif qualname in (MODULE_LIST, MODULE_DICT):
            positional = [a for a in call.args if a.keyword is None]
            if not positional:
                built = EMPTY if not call.args else None
            elif len(positional) == 1 and not positional[0].star:
                built = self._expr(positional[0].value)
            else:
                built = None
        else:
            return None
        if built is None:
            return None
        holder = self._module_holder(call)
        if holder is None:
            return built
        return self._changed_module(call, holder, built)

    def _sequential_arguments(self, call: cst.Call) -> Elements | None:
        positional = [a for a in call.args if a.keyword is None]
        if len(positional) != len(call.args):
            return None
        if len(positional) == 1 and not positional[0].star:
            inner = self._expr(positional[0].value)
            if inner is not None and inner.mapping:
                return inner  # nn.Sequential(OrderedDict(...))
        result = EMPTY
        for arg in positional:
            if arg.star == "*":
                part = self._expr(arg.value)
                if part is None or part.mapping:
                    return None
            elif arg.star:
                return None
            else:
                part = single(arg.value)
            result = concat(result, part)
        return result

    def _module_holder(self, call: cst.Call) -> _Holder | None:
        """The name or ``self.`` attribute a construction is stored in (through
        ``.to(device)``-like wrappers)."""
        node: cst.CSTNode = call
        for _ in range(6):
            parent = self.tree.parent.get(node)
            if isinstance(parent, cst.Attribute) and parent.value is node:
                grand = self.tree.parent.get(parent)
                if isinstance(grand, cst.Call) and grand.func is parent:
                    if self.values.module_passthrough(grand) is node:
                        node = grand
                        continue
                return None
            if isinstance(parent, cst.Assign) and parent.value is node:
                if len(parent.targets) != 1:
                    return None
                return self._holder_of(parent.targets[0].target)
            if isinstance(parent, cst.AnnAssign) and parent.value is node:
                return self._holder_of(parent.target)
            return None
        return None

    def _holder_of(self, target: cst.CSTNode) -> _Holder | None:
        if isinstance(target, cst.Name):
            return _Holder(target.value, self.tree.scope_of(target))
        if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
            method = self.tree.function_of(target)
            if method is not None and target.value.value == first_param(method):
                if self.tree.class_of(method) is not None:
                    return _Holder(f"self.{target.attr.value}", method, target.value.value)
        return None

    def _changed_module(self, call: cst.Call, holder: _Holder, built: Elements) -> Elements | None:
        """``built`` after the changes made to the object stored in ``holder``; None when
        something outside the holder's scope may change it."""
        if not self._changes_only_in(holder, call):
            return None
        end = self.tree.last[call]
        events = [n for n in self._holder_events(holder) if self.tree.order[n] > end]
        # stop at the next rebinding of the holder: a new object from there on
        state = built
        try:
            for node in events:
                if self._assignment_target(node):
                    break
                state = self._module_event(node, state, holder)
        except _Unknown:
            return None
        return state

    def _changes_only_in(self, holder: _Holder, call: cst.Call) -> bool:
        """No statement outside the holder's scope changes the object's children."""
        if holder.self_name is None:
            name = holder.key
            for node in self._names.get(name, ()):
                if self.tree.scope_of(node) is holder.scope:
                    continue
                if self._changes_object(node):
                    binding = self.names.binding_at(name, node)
                    if binding is None or binding.scope is holder.scope:
                        return False
            return True
        attribute = holder.key.split(".", 1)[1]
        for node in self._attributes.get(attribute, ()):
            if self.tree.scope_of(node) is holder.scope:
                continue
            if self._changes_object(node):
                return False
        return True

    def _changes_object(self, node: cst.CSTNode) -> bool:
        parent = self.tree.parent.get(node)
        if isinstance(parent, cst.Attribute) and parent.value is node:
            grand = self.tree.parent.get(parent)
            if isinstance(grand, cst.Call) and grand.func is parent:
                return parent.attr.value in MODULE_CHANGES
            return isinstance(grand, cst.AssignTarget)
        if isinstance(parent, cst.Subscript) and parent.value is node:
            grand = self.tree.parent.get(parent)
            return isinstance(grand, (cst.AssignTarget, cst.Del))
        if isinstance(parent, cst.Arg) and not parent.star:
            call = self.tree.parent.get(parent)
            return (
                isinstance(call, cst.Call)
                and isinstance(call.func, cst.Name)
                and call.func.value in ("setattr", "delattr")
            )
        return False

    def _module_event(self, node, state: Elements, holder: _Holder) -> Elements:
        """One use of a module object: its change to the children, or none."""
        if not self._changes_object(node):
            return state
        conditional = self._conditional(node, holder.scope, None)
        parent = self.tree.parent.get(node)
        if isinstance(parent, cst.Attribute):
            grand = self.tree.parent.get(parent)
            if isinstance(grand, cst.AssignTarget):  # seq.head = nn.Softmax(1)
                assign = self.tree.parent.get(grand)
                value = assign.value if isinstance(assign, cst.Assign) else None
                if value is None or literal_value(value) is not None:
                    return state
                return self._put(state, parent.attr.value, value, conditional)
            return self._method_change(grand, parent.attr.value, state, conditional, module=True)
        if isinstance(parent, cst.Subscript):
            return self._subscript_change(parent, state, conditional)
        # setattr(seq, "name", value)
        call = self.tree.parent.get(parent)
        args = [a.value for a in call.args]
        name = literal_value(args[1]) if len(args) == 3 else None
        if call.func.value == "setattr" and isinstance(name, str):
            return self._put(state, name, args[2], conditional)
        raise _Unknown

    def _put(self, state: Elements, key: str, value, conditional: bool) -> Elements:
        """``add_module(key, value)``: a new child at the end, or a replaced one."""
        if state.keys is not None and state.ordered is not None and key in state.keys:
            position = state.keys.index(key)
            ordered = state.ordered[:position] + (value,) + state.ordered[position + 1 :]
            changed = in_order(ordered, state.parts, state.keys, state.mapping)
        else:
            changed = concat(state, single(value, key) if state.keys is not None or not
                             state.ordered else single(value))  # fmt: skip
        if not conditional:
            return changed
        return merge(state, changed)

    # -- expressions --------------------------------------------------------------------
    def _expr(self, expr: cst.CSTNode) -> Elements | None:
        if self._depth > MAX_DEPTH:
            return None
        self._depth += 1
        try:
            return self._expr_inner(expr)
        finally:
            self._depth -= 1

    def _expr_inner(self, expr: cst.CSTNode) -> Elements | None:
        if isinstance(expr, (cst.List, cst.Tuple)):
            result = EMPTY
            for element in expr.elements:
                if isinstance(element, cst.StarredElement):
                    part = self._expr(element.value)
                    if part is None:
                        return None
                else:
                    part = single(element.value)
                result = concat(result, part)
            return result
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
            simple = expr.for_in.inner_for_in is None and not expr.for_in.ifs
            return Elements((expr.elt,), None, expr.elt if simple else None)
        if isinstance(expr, cst.Dict):
            return self._pairs(
                [(e.key, e.value) for e in expr.elements if isinstance(e, cst.DictElement)],
                len(expr.elements),
            )
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, cst.Add):
                left, right = self._expr(expr.left), self._expr(expr.right)
                return concat(left, right) if left is not None and right is not None else None
            if isinstance(expr.operator, cst.Multiply):
                for side, other in ((expr.left, expr.right), (expr.right, expr.left)):
                    count = literal_value(other)
                    if isinstance(side, (cst.List, cst.Tuple)) and isinstance(count, int):
                        inner = self._expr(side)
                        if inner is None or count < 1:
                            return None if inner is None else EMPTY
                        return Elements(inner.members, None, inner.last, inner.parts,
                                        pairs=inner.pairs)  # fmt: skip
            return None
        if isinstance(expr, cst.Call):
            return self._call(expr)
        if isinstance(expr, cst.Subscript):
            return self._slice(expr)
        if isinstance(expr, (cst.Name, cst.Attribute)):
            return self._variable(expr)
        return None

    def _call(self, call: cst.Call) -> Elements | None:
        func = call.func
        positional = [a for a in call.args if a.keyword is None]
        if isinstance(func, cst.Name) and self.names.binding_at(func.value, func) is None:
            if func.value in ("list", "tuple"):
                if not call.args:
                    return EMPTY
                if len(call.args) == 1 and positional and not positional[0].star:
                    return self._expr(positional[0].value)
                return None
            if func.value == "OrderedDict":
                return self._dict_call(call)
        qualname = self.names.qualname(func)
        if qualname in CONTAINER_KINDS:
            return self.of_module(call)
        if qualname in ORDERED_DICTS:
            return self._dict_call(call)
        if isinstance(func, cst.Attribute) and func.attr.value == "children" and not call.args:
            return self._children(func.value)
        function = self.values.called_function(call)
        if function is None:
            return None
        found = None
        for value in self.values.returns(function):  # def make_layers(): ...; return layers
            part = self._expr(value)
            if part is None:
                return None
            found = part if found is None else merge(found, part)
        return found

    def _dict_call(self, call: cst.Call) -> Elements | None:
        if not call.args:
            return Elements((), (), None, keys=(), mapping=True)
        if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
            return None
        items = call.args[0].value
        if isinstance(items, cst.Dict):
            return self._expr(items)
        if not isinstance(items, (cst.List, cst.Tuple)):
            return None
        pairs = []
        for element in items.elements:
            pair = element.value
            if not isinstance(pair, cst.Tuple) or len(pair.elements) != 2:
                return None
            pairs.append((pair.elements[0].value, pair.elements[1].value))
        return self._pairs(pairs, len(items.elements))

    def _pairs(self, pairs, count: int) -> Elements | None:
        if len(pairs) != count:
            return None  # **other
        keys = [literal_value(key) for key, _ in pairs]
        values = tuple(value for _, value in pairs)
        named = all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys)
        return in_order(values, keys=tuple(keys) if named else None, mapping=True)

    def _children(self, model: cst.CSTNode) -> Elements | None:
        """``model.children()``: a known container's elements, or some children of a
        library model (a ``part``)."""
        leaves = self.values.origins(model, through=self.values.module_passthrough)
        if len(leaves) != 1 or leaves[0].path or not isinstance(leaves[0].node, cst.Call):
            return None
        node = leaves[0].node
        if self.is_container(node):
            found = self.of_module(node)
            return replace(found, mapping=False) if found is not None else None
        qualname = self.names.qualname(node.func) or ""
        if qualname.startswith(("torchvision.models.", "timm.")):
            return Elements((), None, None, parts=(node,))
        return None

    def _slice(self, subscript: cst.Subscript) -> Elements | None:
        if len(subscript.slice) != 1 or not isinstance(subscript.slice[0].slice, cst.Slice):
            return None
        part = subscript.slice[0].slice
        bounds = []
        for bound in (part.lower, part.upper):
            value = literal_value(bound) if bound is not None else None
            if bound is not None and (not isinstance(value, int) or isinstance(value, bool)):
                return None
            bounds.append(value)
        if part.step is not None:
            return None
        base = self._expr(subscript.value)
        if base is None:
            return None
        if base.ordered is not None and not base.parts:
            kept = base.ordered[bounds[0] : bounds[1]]
            keys = base.keys[bounds[0] : bounds[1]] if base.keys is not None else None
            return in_order(kept, keys=keys)
        if base.parts and not base.members and not bounds[0] and (bounds[1] or 0) < 0:
            return Elements((), None, None, parts=base.parts)  # the body, without the head
        return None

    # -- lists held by names ----------------------------------------------------------------
    def _variable(self, expr: cst.Name | cst.Attribute) -> Elements | None:
        holder, until = self._list_holder(expr)
        if holder is not None:
            env = self._env.get((holder.key, id(holder.scope)))
            if env is not None:
                return env
        leaves = self.values.origins(expr, through=self.values.module_passthrough)
        if len(leaves) == 1 and not leaves[0].path and self.is_container(leaves[0].node):
            return self.of_module(leaves[0].node)  # a Sequential or ModuleList object
        if holder is None:
            return None
        if until is None:  # a global list read in a function: called after any later change?
            reader = self.tree.order[self.tree.scope_of(expr)]
            if any(
                self.tree.order[node] > reader and self._list_event_changes(node)
                for node in self._holder_events(holder)
            ):
                return None
        key = (holder.key, id(holder.scope), until)
        if key in self._active:
            return None
        self._active.add(key)
        try:
            return self._simulate(holder, until)
        except _Unknown:
            return None
        finally:
            self._active.discard(key)

    def _list_holder(self, expr) -> tuple[_Holder | None, int | None]:
        """The holder of a list use, and the position the list is read at (None: after
        the whole scope, for a global read inside a function)."""
        at = self.tree.order[expr]
        if isinstance(expr, cst.Name):
            binding = self.names.binding_at(expr.value, expr)
            if binding is None or binding.kind not in ("assign", "augassign", "param"):
                return None, None
            scope = binding.scope
            if isinstance(scope, cst.ClassDef):
                return None, None
            param = binding.node if binding.kind == "param" else None
            if param is not None and not isinstance(scope, cst.FunctionDef):
                return None, None
            holder = _Holder(expr.value, scope, param=param)
            return holder, at if self.tree.scope_of(expr) is scope else None
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            method = self.tree.function_of(expr)
            if method is None or expr.value.value != first_param(method):
                return None, None
            if self.tree.class_of(method) is None:
                return None, None
            return _Holder(f"self.{expr.attr.value}", method, expr.value.value), at
        return None, None

    def _holder_events(self, holder: _Holder) -> list[cst.CSTNode]:
        """Every use of the holder in its scope (not in nested functions), in order."""
        key = (holder.key, id(holder.scope))
        if key in self._events:
            return self._events[key]
        found: list[cst.CSTNode] = []
        if holder.self_name is None:
            for node in self._names.get(holder.key, ()):
                if self.tree.scope_of(node) is not holder.scope:
                    continue
                parent = self.tree.parent.get(node)
                if isinstance(parent, cst.Attribute) and parent.attr is node:
                    continue
                if isinstance(parent, cst.Arg) and parent.keyword is node:
                    continue
                if isinstance(parent, (cst.Param, cst.FunctionDef, cst.ClassDef)):
                    continue
                found.append(node)
        else:
            attribute = holder.key.split(".", 1)[1]
            for node in self._attributes.get(attribute, ()):
                if (
                    isinstance(node.value, cst.Name)
                    and node.value.value == holder.self_name
                    and self.tree.scope_of(node) is holder.scope
                ):
                    found.append(node)
        self._events[key] = found
        return found

    def _simulate(self, holder: _Holder, until: int | None) -> Elements | None:
        """Run the statements that build the list, up to the read at ``until``."""
        state: Elements | None = None
        if holder.param is not None:  # def build(layers): ... nn.Sequential(*layers)
            for argument in self.values._arguments_for(holder.scope, holder.param):
                given = self._expr(argument)
                if given is None:
                    return None
                state = given if state is None else merge(state, given)
            if state is None:
                return None
        skip = -1
        use_loops = []
        previous = None  # the latest statement that added to the list, and what it added
        events = self._holder_events(holder)
        for node in events:
            at = self.tree.order[node]
            if until is not None and at >= until:
                if not use_loops:
                    use_loops = self._loops_around(until, holder.scope)
                if any(self.tree.contains(loop, node) for loop in use_loops):
                    if self._list_event_changes(node):
                        return None  # changed later in a loop that also reads it
                continue
            if at <= skip:
                continue
            conditional = self._conditional(node, holder.scope, until)
            parent = self.tree.parent.get(node)
            statement = self._assignment_target(node)
            if statement is not None:
                if statement.value is None:
                    continue
                value = self._with_state(holder, state, statement.value)
                skip = self.tree.last[statement]
                if value is None:
                    return None
                state = value if state is None or not conditional else merge(state, value)
                previous = None
                continue
            if isinstance(parent, cst.AugAssign) and parent.target is node:
                if not isinstance(parent.operator, cst.AddAssign) or state is None:
                    return None
                value = self._with_state(holder, state, parent.value)
                skip = self.tree.last[parent]
                if value is None:
                    return None
                changed = concat(state, value)
                state = merge(state, changed) if conditional else changed
                state, previous = self._link(previous, node, value, state)
                continue
            if state is None:
                continue  # a read before the list is built here (an earlier value)
            if isinstance(parent, cst.Attribute) and parent.value is node:
                grand = self.tree.parent.get(parent)
                if not isinstance(grand, cst.Call) or grand.func is not parent:
                    return None
                method = parent.attr.value
                if method in READING_METHODS:
                    continue
                before = state
                state = self._method_change(grand, method, state, conditional, module=False,
                                            holder=holder)  # fmt: skip
                skip = self.tree.last[grand]
                added = None
                if method == "append" and len(grand.args) == 1:
                    added = single(grand.args[0].value)
                elif method == "extend" and len(grand.args) == 1:
                    added = self._with_state(holder, before, grand.args[0].value)
                if added is None:
                    previous = None
                else:
                    state, previous = self._link(previous, node, added, state)
                continue
            if isinstance(parent, cst.Subscript) and parent.value is node:
                grand = self.tree.parent.get(parent)
                if isinstance(grand, (cst.AssignTarget, cst.Del)):
                    state = self._subscript_change(parent, state, conditional)
                    previous = None
                continue  # an element read
            if not self._reads(node):
                return None
        return state

    def _link(self, previous, node, added: Elements, state: Elements):
        """Two additions in a row in one block (``layers.append(conv)`` then
        ``layers.append(nn.BatchNorm2d(c))`` in a loop body): the second's first element
        comes right after the first's last, even where neither is certain to run."""
        statement = self.tree.statement_of(node)
        if previous is not None and added.ordered:
            before, earlier = previous
            pair = (earlier.last, added.ordered[0])
            if (
                earlier.last is not None
                and self._straight(before, statement)
                and not any(a is pair[0] and b is pair[1] for a, b in state.pairs)
            ):
                state = replace(state, pairs=state.pairs + (pair,))
        return state, ((statement, added) if added.last is not None else None)

    def _straight(self, first: cst.CSTNode, second: cst.CSTNode) -> bool:
        """``second`` runs right after ``first`` whenever ``first`` runs: later in the same
        block, with no ``continue``/``break``/``return``/``raise`` in between."""
        block = self.tree.parent.get(first)
        if block is None or self.tree.parent.get(second) is not block:
            return False
        body = getattr(block, "body", None)
        if not isinstance(body, (list, tuple)):
            return False
        start = next((i for i, s in enumerate(body) if s is first), None)
        end = next((i for i, s in enumerate(body) if s is second), None)
        if start is None or end is None or end <= start:
            return False
        return not any(
            self.tree.descendants(between, cst.Continue, cst.Break, cst.Return, cst.Raise)
            for between in body[start + 1 : end]
        )

    def _with_state(self, holder: _Holder, state: Elements | None, expr) -> Elements | None:
        """``expr`` evaluated where the holder holds ``state`` (``layers = layers + [...]``)."""
        key = (holder.key, id(holder.scope))
        if state is None:
            return self._expr(expr)
        saved = self._env.get(key)
        self._env[key] = state
        try:
            return self._expr(expr)
        finally:
            if saved is None:
                del self._env[key]
            else:
                self._env[key] = saved

    def _method_change(self, call, method, state, conditional, module, holder=None):
        args = [a for a in call.args]
        if any(a.star for a in args):
            raise _Unknown
        values = [a.value for a in args]
        if method == "append" and len(values) == 1:
            changed = concat(state, single(values[0]))
        elif method in ("add_module", "register_module") and module and len(values) == 2:
            name = literal_value(values[0])
            if not isinstance(name, str):
                raise _Unknown
            return self._put(state, name, values[1], conditional)
        elif method in ("extend", "update") and len(values) == 1:
            part = self._with_state(holder, state, values[0]) if holder else self._expr(values[0])
            if part is None:
                raise _Unknown
            changed = concat(state, part)
        elif method == "insert" and len(values) == 2:
            position = literal_value(values[0])
            if (
                isinstance(position, int)
                and not isinstance(position, bool)
                and state.ordered is not None
                and not conditional
            ):
                ordered = list(state.ordered)
                ordered.insert(position, values[1])
                return in_order(tuple(ordered), state.parts)
            return Elements(_unique(state.members + (values[1],)), None, None, state.parts)
        elif method == "pop" and not values:
            if conditional or not state.ordered:
                raise _Unknown
            kept = state.ordered[:-1]
            keys = state.keys[:-1] if state.keys is not None else None
            return in_order(kept, state.parts, keys)
        elif not module or method in MODULE_CHANGES:
            raise _Unknown
        else:
            return state  # model(x), model.to(device), model.parameters()...
        return merge(state, changed) if conditional else changed

    def _subscript_change(self, subscript: cst.Subscript, state, conditional) -> Elements:
        grand = self.tree.parent.get(subscript)
        if isinstance(grand, cst.Del) or len(subscript.slice) != 1:
            raise _Unknown
        index = subscript.slice[0].slice
        if not isinstance(index, cst.Index):
            raise _Unknown
        assign = self.tree.parent.get(grand)
        if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
            raise _Unknown
        value = assign.value
        position = literal_value(index.value)
        if isinstance(position, str):
            return self._put(state, position, value, conditional)
        if (
            isinstance(position, int)
            and not isinstance(position, bool)
            and state.ordered is not None
            and -len(state.ordered) <= position < len(state.ordered)
        ):
            ordered = list(state.ordered)
            ordered[position] = value
            changed = in_order(tuple(ordered), state.parts, state.keys, state.mapping)
            return merge(state, changed) if conditional else changed
        return Elements(_unique(state.members + (value,)), None, None, state.parts)

    # -- helpers ----------------------------------------------------------------------------
    def _assignment_target(self, node: cst.CSTNode):
        """The assignment whose whole target is ``node`` (``layers = ...``)."""
        parent = self.tree.parent.get(node)
        if isinstance(parent, cst.AssignTarget) and parent.target is node:
            statement = self.tree.parent.get(parent)
            if isinstance(statement, cst.Assign):
                if len(statement.targets) != 1:
                    raise _Unknown
                return statement
        if isinstance(parent, cst.AnnAssign) and parent.target is node:
            return parent
        if isinstance(parent, (cst.For, cst.CompFor, cst.NamedExpr)) and parent.target is node:
            raise _Unknown  # bound by a loop or a walrus
        if isinstance(parent, cst.AsName) or (
            isinstance(parent, cst.Element) and self._in_target(parent)
        ):
            raise _Unknown  # bound by unpacking or a with statement
        return None

    def _in_target(self, element: cst.CSTNode) -> bool:
        for ancestor in self.tree.ancestors(element):
            if isinstance(ancestor, (cst.AssignTarget, cst.For, cst.CompFor)):
                return True
            if not isinstance(ancestor, (cst.Tuple, cst.List, cst.Element, cst.StarredElement)):
                return False
        return False

    def _list_event_changes(self, node: cst.CSTNode) -> bool:
        parent = self.tree.parent.get(node)
        if isinstance(parent, (cst.AssignTarget, cst.AugAssign)):
            return True
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return parent.attr.value not in READING_METHODS
        if isinstance(parent, cst.Subscript) and parent.value is node:
            return isinstance(self.tree.parent.get(parent), (cst.AssignTarget, cst.Del))
        return False

    def _reads(self, node: cst.CSTNode) -> bool:
        """A use that leaves the list as it is: ``*layers``, ``len(layers)``, a loop over
        it, a torch call (``nn.ModuleList(layers)``), a comparison, a return."""
        parent = self.tree.parent.get(node)
        if isinstance(parent, cst.Arg):
            if parent.star:
                return True
            call = self.tree.parent.get(parent)
            if not isinstance(call, cst.Call):
                return False
            func = call.func
            if isinstance(func, cst.Name) and self.names.binding_at(func.value, func) is None:
                return func.value in READING_BUILTINS
            return (self.names.qualname(func) or "").startswith("torch.")
        if isinstance(parent, cst.StarredElement):
            return True
        if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is node:
            return True
        if isinstance(parent, (cst.ComparisonTarget, cst.Comparison, cst.Return, cst.If,
                               cst.UnaryOperation, cst.BooleanOperation)):  # fmt: skip
            return True
        if isinstance(parent, cst.BinaryOperation):
            return True  # layers + [...] makes a new list
        return False

    def _conditional(self, node: cst.CSTNode, scope, until: int | None) -> bool:
        """``node`` sits under a branch or loop that does not also hold the read."""
        for ancestor in self.tree.ancestors(node):
            if ancestor is scope:
                return False
            if isinstance(ancestor, BRANCHES):
                if until is None:
                    return True
                if not (self.tree.order[ancestor] <= until <= self.tree.last[ancestor]):
                    return True
        return False

    def _loops_around(self, at: int, scope) -> list[cst.CSTNode]:
        return [
            loop
            for loop in self.tree.descendants(scope, *LOOPS)
            if self.tree.order[loop] <= at <= self.tree.last[loop]
        ]


def containers_of(facts) -> Containers:
    """The module's ``Containers`` analysis, computed once per module."""
    return facts.values.containers
