"""Data-preparation facts: random reorderings, and tables that hold categorical columns.

Shuffles: every call that puts a value in a random order (sklearn's ``shuffle``,
numpy's and ``random``'s ``shuffle``, ``permutation`` as a result or an index,
``torch.randperm`` as an index, pandas ``sample(frac=1)``, methods of a seeded or
unseeded generator), with the names it reorders *together* and what decides the
order drawn: an explicit seed, a global RNG re-seeded right before, or the running
state of an RNG (the next draw differs). Two calls on X-like and y-like partners
whose orders are not known to agree are DL101; in-place shuffles of temporaries
are DL106.

Categorical evidence: whether a value that reaches a scaler is a whole table that,
somewhere in the file, was built with ``pd.get_dummies``, got label-encoded,
mapped or category-cast columns, or was concatenated with a one-hot encoder's
output, with no column selection since (DL102; DL103 reuses the scaler fits).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.names import ITEM, ITER, Binding
from dllint.analysis.tree import Scope, argument, call_name, dotted, keyword, literal_value

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

# -- shuffles -----------------------------------------------------------------------------

SKLEARN_SHUFFLE = {"sklearn.utils.shuffle", "sklearn.utils._indexing.shuffle"}
INPLACE_SHUFFLE = {"numpy.random.shuffle": "numpy", "random.shuffle": "random"}
PERMUTATION = {"numpy.random.permutation": "numpy", "torch.randperm": "torch"}
GENERATORS = {
    "numpy.random.default_rng",
    "numpy.random.RandomState",
    "numpy.random.Generator",
    "random.Random",
}
# Calls that fix a global RNG: family -> qualified names (first argument is the seed).
SEEDERS = {
    "numpy.random.seed": ("numpy",),
    "random.seed": ("random",),
    "torch.manual_seed": ("torch",),
    "torch.random.manual_seed": ("torch",),
    "pytorch_lightning.seed_everything": ("numpy", "random", "torch"),
    "lightning.seed_everything": ("numpy", "random", "torch"),
    "lightning.pytorch.seed_everything": ("numpy", "random", "torch"),
    "transformers.set_seed": ("numpy", "random", "torch"),
    "accelerate.utils.set_seed": ("numpy", "random", "torch"),
}
STATE_GETTERS = {
    "numpy.random.get_state": "numpy",
    "random.getstate": "random",
    "torch.get_rng_state": "torch",
    "torch.random.get_rng_state": "torch",
}
STATE_SETTERS = {
    "numpy.random.set_state": "numpy",
    "random.setstate": "random",
    "torch.set_rng_state": "torch",
    "torch.random.set_rng_state": "torch",
}
# Methods and attributes that keep "the same data in the same order".
SAME_ORDER_METHODS = {
    "reset_index", "copy", "to_numpy", "astype", "float", "double", "long", "int",
    "to", "cuda", "cpu", "numpy", "tolist", "contiguous", "clone", "detach",
}  # fmt: skip
SAME_ORDER_ATTRIBUTES = {"values", "T", "data", "array"}
INDEX_SELECT = {"index_select", "take", "reindex"}

# Calls that take features and labels together (a pair used together is a pair).
TOGETHER_CALLS = {
    "fit", "partial_fit", "fit_transform", "fit_resample", "fit_generator",
    "train_on_batch", "test_on_batch", "evaluate", "score", "TensorDataset", "zip",
    "train_test_split", "cross_val_score", "cross_validate", "cross_val_predict",
    "DMatrix", "Pool", "from_tensor_slices",
}  # fmt: skip

X_WORDS = {
    "x", "xs", "feature", "features", "feat", "feats", "input", "inputs", "data",
    "image", "images", "img", "imgs", "sample", "samples", "text", "texts",
    "sentence", "sentences", "doc", "docs", "documents", "sequence", "sequences",
    "seqs", "signal", "signals", "example", "examples", "df", "points", "windows",
}  # fmt: skip
Y_WORDS = {
    "y", "ys", "label", "labels", "lbl", "lbls", "labs", "target", "targets",
    "class", "classes", "answers", "output", "outputs", "mask", "masks", "gt",
    "tags", "targs", "annotations", "captions", "scores", "ratings",
}  # fmt: skip


@dataclass(frozen=True)
class Shuffle:
    """One random reordering.

    ``kind`` is "inplace" (``np.random.shuffle(x)``), "result" (``x = shuffle(x)``,
    ``df.sample(frac=1)``, ``np.random.permutation(x)``) or "index" (a permutation
    used to index values). ``target`` is the argument reordered (inplace/result).
    ``values`` are the dotted names reordered together by this one call (``joint``
    when they are two or more different values, not one value and its new name). ``seed``
    says what decides the order: None for a running RNG state (the next draw
    differs), ``("unknown",)`` when it cannot be told, otherwise a key: two calls
    with equal keys draw the same order for values of equal length.
    """

    call: cst.Call
    kind: str
    target: cst.BaseExpression | None
    values: frozenset[str]
    scope: Scope
    family: str
    seed: tuple | None
    generator: cst.CSTNode | None = None
    joint: bool = False  # one call reorders two or more different values together

    @property
    def seed_known(self) -> bool:
        return self.seed is not None and self.seed != UNKNOWN


UNKNOWN = ("unknown",)


@dataclass(frozen=True)
class Categorical:
    """Evidence that a table holds categorical columns.

    ``reason`` completes "<frame> ..." (``was built with `pd.get_dummies```).
    ``columns`` names the columns concerned: a frozenset of literal names, the text
    of the variable that lists them, or None (unknown: dummy columns, a loop over
    every object column).
    """

    node: cst.CSTNode
    reason: str
    columns: frozenset[str] | str | None = None
    frame: str | None = None  # the user's name for the table, where it has one


@dataclass(frozen=True)
class ScalerFit:
    """A scaler fitted (``scaler.fit(X)``, ``StandardScaler().fit_transform(X)``) or a
    scaling function applied (``preprocessing.scale(X)``) to ``data``."""

    call: cst.Call
    scaler: str
    data: cst.BaseExpression


SCALERS = {
    f"sklearn.preprocessing.{name}"
    for name in ("StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler")
}
SCALE_FUNCTIONS = {
    f"sklearn.preprocessing.{name}"
    for name in ("scale", "normalize", "minmax_scale", "robust_scale", "maxabs_scale")
}
CODE_ENCODERS = {"sklearn.preprocessing.LabelEncoder", "sklearn.preprocessing.OrdinalEncoder"}
ONE_HOT_ENCODERS = {"sklearn.preprocessing.OneHotEncoder", "sklearn.preprocessing.LabelBinarizer"}
GET_DUMMIES = {"pandas.get_dummies"}
CONCATENATE = {
    "pandas.concat",
    "numpy.hstack",
    "numpy.concatenate",
    "numpy.column_stack",
    "scipy.sparse.hstack",
}
INDEX_CONCATENATE = {"numpy.c_", "numpy.r_"}
WRAPPERS = {"pandas.DataFrame", "numpy.array", "numpy.asarray", "numpy.asanyarray"}
SPLITTERS = {
    "sklearn.model_selection.train_test_split",
    "sklearn.cross_validation.train_test_split",
}
# Frame methods that keep every column.
KEEP_COLUMNS = {
    "copy", "fillna", "dropna", "reset_index", "to_numpy", "interpolate", "sort_values",
    "sort_index", "head", "tail", "sample", "query", "rename", "round", "clip",
    "drop_duplicates", "ffill", "bfill", "set_axis", "infer_objects", "toarray", "todense",
}  # fmt: skip
FIT_METHODS = ("fit", "fit_transform")
CATEGORY_TYPES = {"category", "bool", "boolean"}


class Data:
    """Shuffles and categorical evidence of one module."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.tree = facts.tree
        self.names = facts.names
        self.values = facts.values
        self._visiting: set[int] = set()  # bindings being followed (cycle guard)

    # == shuffles =========================================================================
    @cached_property
    def shuffles(self) -> list[Shuffle]:
        """Every random reordering in the module, in textual order."""
        found = []
        spellings = self._spellings({"shuffle", "permutation", "randperm", "sample"})
        for call in self.tree.nodes(cst.Call):
            if call_name(call) not in spellings:
                continue  # cheap filter before resolving names
            event = self._shuffle(call)
            if event is not None:
                found.append(event)
        return [self._with_seed(event, found) for event in found]

    def inplace_shuffles(self) -> list[Shuffle]:
        return [event for event in self.shuffles if event.kind == "inplace"]

    def same_order(self, first: Shuffle, second: Shuffle) -> bool:
        """True when the two calls may draw the same order: equal known seeds (on
        different generators), or either order cannot be told."""
        if first.seed == UNKNOWN or second.seed == UNKNOWN:
            return True
        if first.generator is not None and first.generator is second.generator:
            return False  # one generator, two draws
        return first.seed is not None and first.seed == second.seed

    def partners(self, first: Shuffle, second: Shuffle) -> tuple[str, str] | None:
        """Names of ``first`` and ``second`` that are an X/y pair: named as one
        (``X_train``/``y_train``) or used together later (fit, TensorDataset, zip...)."""
        for a in sorted(first.values):
            for b in sorted(second.values):
                if named_pair(a, b):
                    return a, b
        return self._used_together(first, second)

    def _spellings(self, names: set[str]) -> set[str]:
        """``names`` plus the local aliases imports give them (``shuffle as skshuffle``)."""
        found = set(names)
        for node in self.tree.nodes(cst.ImportFrom):
            if isinstance(node.names, cst.ImportStar):
                continue
            for alias in node.names:
                if (
                    isinstance(alias.name, cst.Name)
                    and alias.name.value in names
                    and alias.asname is not None
                    and isinstance(alias.asname.name, cst.Name)
                ):
                    found.add(alias.asname.name.value)
        return found

    def _shuffle(self, call: cst.Call) -> Shuffle | None:
        qualname = self.names.qualname(call.func)
        if qualname in SKLEARN_SHUFFLE:
            return self._sklearn_shuffle(call)
        if qualname in INPLACE_SHUFFLE:
            return self._inplace(call, argument(call, 0, "x"), INPLACE_SHUFFLE[qualname])
        if qualname in PERMUTATION:
            if qualname == "torch.randperm" and keyword(call, "generator") is not None:
                return self._permutation(call, "torch", seed=UNKNOWN)
            return self._permutation(call, PERMUTATION[qualname])
        func = call.func
        if not isinstance(func, cst.Attribute) or qualname is not None:
            return None
        method = func.attr.value
        if method in ("shuffle", "permutation"):
            generator = self._generator(func.value)
            if generator is None:
                return None
            seed = self._generator_seed(generator)
            if method == "shuffle":
                return self._inplace(call, argument(call, 0, "x"), "generator", seed, generator)
            return self._permutation(call, "generator", seed, generator)
        if method == "sample" and _is_one(keyword(call, "frac")):
            names = self._result_names(call, [func.value])
            seed = self._explicit_seed(call, "random_state")
            return self._event(call, "result", func.value, names, "numpy", seed)
        return None

    def _sklearn_shuffle(self, call: cst.Call) -> Shuffle | None:
        arrays = [a.value for a in call.args if a.keyword is None and not a.star]
        if not arrays:
            return None
        names = self._result_names(call, arrays)
        seed = self._explicit_seed(call, "random_state")
        target = arrays[0] if len(arrays) == 1 else None
        event = self._event(call, "result", target, names, "numpy", seed)
        return replace(event, joint=len(arrays) > 1)

    def _inplace(self, call, target, family, seed=None, generator=None) -> Shuffle | None:
        if target is None:
            return None
        names: set[str] = set()
        bases: list[str] = []
        name = dotted(target)
        if name is not None:
            names.add(name)
            if isinstance(target, cst.Name):
                binding = self.names.binding_at(target.value, target)
                if binding is not None:
                    for use in self._uses(binding):
                        if self.tree.order[use] > self.tree.last[call]:
                            names |= self._indexed_by(use, set())
                            bases.extend(self._indexed_bases(use, set()))
        event = self._event(call, "inplace", target, names, family, seed, generator)
        return replace(event, joint=len(set(bases)) > 1)

    def _permutation(self, call, family, seed=None, generator=None) -> Shuffle | None:
        indexed = self._indexed_by(call, set())
        if indexed:
            event = self._event(call, "index", None, indexed, family, seed, generator)
            return replace(event, joint=self._indexes_several(call))
        if family == "torch":
            return None  # randperm(n) not used as an index: no data reordered here
        target = argument(call, 0, "x")
        if target is None or _looks_like_count(target):
            return None
        name = dotted(target)
        if name is None or self._holds_count(target):
            return None
        names = self._result_names(call, [target])
        return self._event(call, "result", target, names, family, seed, generator)

    def _result_names(self, call: cst.Call, sources: list) -> set[str]:
        """What a call returning reordered copies reorders: the names the copies are
        assigned to (``y_perm = shuffle(y)`` leaves ``y`` as it was), else the
        sources (``fit(shuffle(X), ...)``)."""
        assigned = self._assigned_names(call)
        if assigned:
            return assigned
        return {name for source in sources if (name := dotted(source))}

    def _event(self, call, kind, target, names, family, seed, generator=None) -> Shuffle:
        return Shuffle(
            call,
            kind,
            target,
            frozenset(names),
            self.tree.scope_of(call),
            family,
            seed,
            generator,
        )

    # -- what a permutation indexes -------------------------------------------------------
    def _indexes_several(self, node: cst.CSTNode) -> bool:
        return len(set(self._indexed_bases(node, set()))) > 1

    def _indexed_bases(self, node: cst.CSTNode, seen: set) -> list[str]:
        """The dotted names directly indexed by ``node`` (without assignment targets)."""
        return [name for name, direct in self._index_uses(node, seen) if direct]

    def _indexed_by(self, node: cst.CSTNode, seen: set) -> set[str]:
        """Dotted names of the values ``node`` (a permutation) indexes, directly,
        through slices of it (``perm[:k]``) or through names bound to it, with the
        names the indexed results are assigned to."""
        return {name for name, _ in self._index_uses(node, seen)}

    def _index_uses(self, node: cst.CSTNode, seen: set) -> set[tuple[str, bool]]:
        """(name, True) for each value ``node`` indexes, (name, False) for the names
        the results are assigned to."""
        if id(node) in seen:
            return set()
        seen.add(id(node))
        current = self._climb_same_order(node, slices=True)
        parent = self.tree.parent.get(current)
        found: set[tuple[str, bool]] = set()
        subscript = self._subscript_indexed(current)
        if subscript is not None:
            base = subscript.value
            if isinstance(base, cst.Attribute) and base.attr.value in ("iloc", "loc"):
                base = base.value
            name = dotted(base)
            if name is not None:
                found.add((name, True))
                found |= {(n, False) for n in self._assigned_names(subscript)}
            return found
        if isinstance(parent, cst.Arg):
            call = self.tree.parent.get(parent)
            if isinstance(call, cst.Call) and call_name(call) in INDEX_SELECT:
                source = call.func.value if isinstance(call.func, cst.Attribute) else None
                if source is None or self.names.qualname(source) is not None:
                    source = argument(call, 0)
                name = dotted(source) if source is not None else None
                if name is not None and name not in _arg_names(parent):
                    found.add((name, True))
                    found |= {(n, False) for n in self._assigned_names(call)}
            return found
        for binding in self._bindings_of_value(current):
            for use in self._uses(binding):
                found |= self._index_uses(use, seen)
        return found

    def _subscript_indexed(self, node: cst.CSTNode) -> cst.Subscript | None:
        """The Subscript whose index is ``node`` (``X[node]``, ``X[node, :]``)."""
        parent = self.tree.parent.get(node)
        if not isinstance(parent, cst.Index):
            return None
        element = self.tree.parent.get(parent)
        subscript = self.tree.parent.get(element)
        if isinstance(subscript, cst.Subscript) and subscript.slice[0] is element:
            return subscript
        return None

    def _climb_same_order(self, node: cst.CSTNode, slices: bool = False) -> cst.CSTNode:
        """From ``node`` out through ``.to(device)``, ``.values``, ``.reset_index()``
        (and, for permutations, ``perm[:k]``) to the largest expression that holds
        the same values in the same order."""
        current = node
        while True:
            parent = self.tree.parent.get(current)
            if slices and isinstance(parent, cst.Subscript) and parent.value is current:
                current = parent
            elif isinstance(parent, cst.Attribute) and parent.value is current:
                outer = self.tree.parent.get(parent)
                if (
                    isinstance(outer, cst.Call)
                    and outer.func is parent
                    and parent.attr.value in SAME_ORDER_METHODS
                ):
                    current = outer
                elif parent.attr.value in SAME_ORDER_ATTRIBUTES:
                    current = parent
                else:
                    return current
            else:
                return current

    def _assigned_names(self, expr: cst.CSTNode) -> set[str]:
        """Dotted names the value of ``expr`` is assigned to (``X = expr.values``,
        ``X, y = expr, other`` and ``X, y = expr`` for a call returning both)."""
        current = self._climb_same_order(expr)
        parent = self.tree.parent.get(current)
        index = None
        if isinstance(parent, cst.Element):
            container = self.tree.parent.get(parent)
            if isinstance(container, (cst.Tuple, cst.List)):
                index = container.elements.index(parent)
                current, parent = container, self.tree.parent.get(container)
        if not isinstance(parent, cst.Assign) or parent.value is not current:
            return set()
        found = set()
        for target in parent.targets:
            node = target.target
            if index is not None:
                if not isinstance(node, (cst.Tuple, cst.List)) or index >= len(node.elements):
                    continue
                node = node.elements[index].value
            for element in _flatten(node):
                name = dotted(element)
                if name is not None:
                    found.add(name)
        return found

    def _bindings_of_value(self, node: cst.CSTNode) -> list[Binding]:
        """Bindings made by ``name = node``."""
        parent = self.tree.parent.get(node)
        if not isinstance(parent, cst.Assign) or parent.value is not node:
            return []
        found = []
        for target in parent.targets:
            if isinstance(target.target, cst.Name):
                scope = self._binding_scope(target.target)
                for binding in self.names.bindings_of(target.target.value, scope):
                    if binding.node is target.target:
                        found.append(binding)
        return found

    def _binding_scope(self, node: cst.CSTNode) -> cst.CSTNode:
        for ancestor in self.tree.ancestors(node):
            if isinstance(ancestor, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                return ancestor
        return self.tree.module

    def _dense_or_frame(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """``enc.transform(x).toarray()`` and ``pd.DataFrame(enc.transform(x))`` hold
        the encoder's output."""
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in ("toarray", "todense"):
                return func.value
            if self.names.qualname(func) in WRAPPERS and node.args:
                return node.args[0].value
        return None

    def _uses(self, binding: Binding) -> list[cst.Name]:
        """Name nodes that read ``binding``."""
        found = []
        for node in self._loads.get(binding.name, ()):
            if self.names.binding_at(binding.name, node) is binding:
                found.append(node)
        return found

    @cached_property
    def _loads(self) -> dict[str, list[cst.Name]]:
        loads: dict[str, list[cst.Name]] = defaultdict(list)
        for node in self.tree.nodes(cst.Name):
            if self._is_load(node):
                loads[node.value].append(node)
        return loads

    def _is_load(self, node: cst.Name) -> bool:
        parent = self.tree.parent.get(node)
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return False
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            return False
        if isinstance(
            parent, (cst.Param, cst.FunctionDef, cst.ClassDef, cst.ImportAlias, cst.AsName)
        ):
            return False
        for ancestor in self.tree.ancestors(node):
            if isinstance(ancestor, cst.AssignTarget):
                return False
            if isinstance(ancestor, (cst.For, cst.CompFor)) and self.tree.contains(
                ancestor.target, node
            ):
                return False
            if isinstance(ancestor, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
                break
        return True

    # -- seeds ----------------------------------------------------------------------------
    def _with_seed(self, event: Shuffle, events: list[Shuffle]) -> Shuffle:
        """Fill in a global RNG's seed when it was re-seeded right before ``event``."""
        if event.seed is not None or event.family == "generator":
            return event
        seed = self._reseeded(event, events)
        if seed is None:
            return event
        return replace(event, seed=seed)

    def _reseeded(self, event: Shuffle, events: list[Shuffle]) -> tuple | None:
        order = self.tree.order
        at = order[event.call]
        latest = None
        for point, families, key in self._seed_points:
            if event.family in families and order[point] < at:
                if self.tree.scope_of(point) is event.scope:
                    latest = (point, key)
        if latest is None:
            return None
        point, key = latest
        for other in events:
            if (
                other is not event
                and other.family == event.family
                and order[point] < order[other.call] < at
            ):
                return None  # another draw from the same RNG in between
        return key

    @cached_property
    def _seed_points(self) -> list[tuple[cst.Call, tuple[str, ...], tuple | None]]:
        """Calls that put a global RNG in a known state: seeding, restoring a saved
        state, saving one (the draw right after a save equals the one right after
        its restore), and same-module helpers that seed."""
        points = []
        for call in self.tree.nodes(cst.Call):
            qualname = self.names.qualname(call.func)
            if qualname in SEEDERS:
                seed = argument(call, 0, "seed")
                key = self._seed_key(seed) if seed is not None else None
                points.append((call, SEEDERS[qualname], key))
            elif qualname in STATE_SETTERS:
                state = argument(call, 0)
                if isinstance(state, cst.Name):
                    binding = self.names.binding_at(state.value, state)
                    points.append((call, (STATE_SETTERS[qualname],), ("state", id(binding))))
            elif qualname in STATE_GETTERS:
                for binding in self._bindings_of_value(call):
                    points.append((call, (STATE_GETTERS[qualname],), ("state", id(binding))))
            else:
                helper = self.values.called_function(call)
                families = self._seeding_helper(helper) if helper is not None else ()
                if families:
                    keys = tuple(self._seed_key(a.value) for a in call.args)
                    points.append((call, families, ("helper", id(helper), keys)))
        return points

    def _seeding_helper(self, function: cst.FunctionDef) -> tuple[str, ...]:
        families: set[str] = set()
        for inner in self.tree.descendants(function, cst.Call):
            families.update(SEEDERS.get(self.names.qualname(inner.func) or "", ()))
        return tuple(sorted(families))

    def _explicit_seed(self, call: cst.Call, name: str) -> tuple | None:
        arg = keyword(call, name)
        if arg is None or _is_none(arg.value):
            return None
        return self._seed_key(arg.value)

    def _seed_key(self, expr: cst.BaseExpression) -> tuple:
        """A key equal for two expressions that hold the same seed."""
        value = literal_value(expr)
        if value is not None:
            return ("literal", value)
        if isinstance(expr, cst.Name):
            leaves = self.values.origins(expr)
            if len(leaves) == 1 and not leaves[0].path:
                value = literal_value(leaves[0].node)
                if value is not None:
                    return ("literal", value)
            binding = self.names.binding_at(expr.value, expr)
            if binding is not None:
                return ("binding", id(binding))
        return ("text", self.facts.module.code_for_node(expr))

    def _generator(self, expr: cst.BaseExpression) -> cst.Call | None:
        """The generator construction (``np.random.default_rng(0)``) ``expr`` holds."""
        leaves = self.values.origins(expr)
        if len(leaves) != 1 or leaves[0].path:
            return None
        node = leaves[0].node
        if isinstance(node, cst.Call) and self.names.qualname(node.func) in GENERATORS:
            return node
        return None

    def _generator_seed(self, generator: cst.Call) -> tuple | None:
        seed = argument(generator, 0, "seed")
        if seed is None or _is_none(seed):
            return None
        return self._seed_key(seed)

    def _holds_count(self, expr: cst.BaseExpression) -> bool:
        """True when a name passed to ``permutation`` holds a count, not an array."""
        if not isinstance(expr, cst.Name):
            return False
        for leaf in self.values.origins(expr):
            node = leaf.node
            if isinstance(node, cst.Attribute) and node.attr.value == "shape":
                return True  # n = X.shape[0]
            if not leaf.path and _looks_like_count(node):
                return True
        return False

    # -- pairs used together ------------------------------------------------------------
    def _used_together(self, first: Shuffle, second: Shuffle) -> tuple[str, str] | None:
        scope = first.scope
        start = self.tree.order[first.call]
        a_names = self._derived(first.values, scope, start)
        b_names = self._derived(second.values, scope, start)
        # Returned together is not enough: `return pos_idx, neg_idx` pairs two samples
        # drawn independently on purpose (detectron2's sampling); a fit/loader is.
        for node in self.tree.descendants(scope, cst.Call):
            if self.tree.last[node] < self.tree.order[second.call]:
                continue
            if self.tree.scope_of(node) is not scope:
                continue
            if not self._takes_a_pair(node):
                continue
            roots = [self._root(a.value) for a in node.args]
            a = next((r for r in roots if r in a_names), None)
            b = next((r for r in roots if r in b_names and r != a), None)
            if a is not None and b is not None:
                return a_names[a], b_names[b]
        return None

    def _takes_a_pair(self, call: cst.Call) -> bool:
        name = call_name(call)
        if name is None:
            return False
        if name in TOGETHER_CALLS or name.endswith("Dataset"):
            return True
        return self.facts.classes.constructed(call) is not None

    def _derived(self, names: frozenset[str], scope: Scope, start: int) -> dict[str, str]:
        """``names`` plus names assigned later from them (``Xt = torch.tensor(X)``),
        each mapped to the shuffled name it comes from."""
        derived = {name: name for name in names}
        for assign in self.tree.descendants(scope, cst.Assign):
            if self.tree.order[assign] < start or self.tree.scope_of(assign) is not scope:
                continue
            root = self._root(assign.value)
            if root not in derived:
                continue
            for target in assign.targets:
                for element in _flatten(target.target):
                    name = dotted(element)
                    if name is not None and name not in derived:
                        derived[name] = derived[root]
        return derived

    def _root(self, expr: cst.BaseExpression) -> str | None:
        """The dotted name whose data ``expr`` carries (``torch.tensor(X[:n]).float()``
        -> ``X``), or None."""
        for _ in range(12):
            if isinstance(expr, cst.Attribute) and expr.attr.value in SAME_ORDER_ATTRIBUTES:
                expr = expr.value
                continue
            name = dotted(expr)
            if name is not None:
                return name
            if isinstance(expr, cst.Subscript):
                expr = expr.value
            elif isinstance(expr, cst.Call):
                func = expr.func
                if isinstance(func, cst.Attribute) and self.names.qualname(func) is None:
                    expr = func.value
                elif expr.args and not expr.args[0].star:
                    expr = expr.args[0].value
                else:
                    return None
            elif isinstance(expr, cst.Attribute):
                expr = expr.value
            else:
                return None
        return None

    # == categorical tables ===============================================================
    def scaler_fits(self) -> list[ScalerFit]:
        """Every scaler ``fit``/``fit_transform`` and scaling-function call, with its input."""
        found = []
        spellings = self._spellings(
            {q.rsplit(".", 1)[1] for q in SCALE_FUNCTIONS} | set(FIT_METHODS)
        )
        for call in self.tree.nodes(cst.Call):
            if call_name(call) not in spellings:
                continue  # cheap filter before resolving names
            func = call.func
            qualname = self.names.qualname(func)
            if qualname in SCALE_FUNCTIONS:
                data = argument(call, 0, "X")
                if data is not None:
                    found.append(ScalerFit(call, qualname.rsplit(".", 1)[1], data))
                continue
            if not isinstance(func, cst.Attribute) or func.attr.value not in (
                "fit",
                "fit_transform",
            ):
                continue
            scaler = self.scaler_of(func.value)
            data = argument(call, 0, "X")
            if scaler is not None and data is not None:
                found.append(ScalerFit(call, scaler, data))
        return found

    def scaler_of(self, expr: cst.BaseExpression) -> str | None:
        """``StandardScaler`` when every value ``expr`` can hold is that scaler."""
        leaves = self.values.origins(expr)
        kinds = set()
        for leaf in leaves:
            node = leaf.node
            if leaf.path or not isinstance(node, cst.Call):
                return None
            qualname = self.names.qualname(node.func)
            if qualname not in SCALERS:
                return None
            kinds.add(qualname.rsplit(".", 1)[1])
        return kinds.pop() if len(kinds) == 1 else None

    def categorical_evidence(self, expr: cst.BaseExpression) -> list[Categorical]:
        """Why ``expr`` is a whole table holding categorical columns (empty: no
        evidence in the file, or columns were selected since)."""
        unique: dict[int, Categorical] = {}
        for found in self._evidence(expr, (), 0):
            unique.setdefault(id(found.node), found)
        return list(unique.values())

    def _evidence(self, expr, path, depth) -> list[Categorical]:
        if depth > 30:
            return []
        if isinstance(expr, cst.Name):
            return self._name_evidence(expr, path, depth)
        if isinstance(expr, cst.Attribute):
            if expr.attr.value == "values" and not path:
                return self._evidence(expr.value, path, depth + 1)
            return []
        if isinstance(expr, cst.Subscript):
            return self._subscript_evidence(expr, path, depth)
        if isinstance(expr, cst.Call):
            return self._call_evidence(expr, path, depth)
        if isinstance(expr, (cst.Tuple, cst.List)) and path and path[0][0] == ITEM:
            index = path[0][1]
            elements = expr.elements
            if -len(elements) <= index < len(elements):
                return self._evidence(elements[index].value, path[1:], depth + 1)
        return []

    def _name_evidence(self, expr: cst.Name, path, depth) -> list[Categorical]:
        binding = self.names.binding_at(expr.value, expr)
        if binding is None or id(binding) in self._visiting:
            return []
        found: list[Categorical] = []
        if binding.kind == "assign" and binding.value is not None:
            self._visiting.add(id(binding))
            try:
                found = self._evidence(binding.value, binding.path + path, depth + 1)
            finally:
                self._visiting.discard(id(binding))
        if path:
            return found
        for statement, effect in self._mutations.get(id(binding), ()):
            if self.tree.order[statement] >= self.tree.order[expr]:
                break
            if isinstance(effect, Categorical):
                found = found + [effect]
            else:
                found = [e for e in found if not _dropped(e, effect)]
        return found

    def _subscript_evidence(self, expr: cst.Subscript, path, depth) -> list[Categorical]:
        elements = expr.slice
        if self.names.qualname(expr.value) in INDEX_CONCATENATE:
            parts = [e.slice.value for e in elements if isinstance(e.slice, cst.Index)]
            return self._concatenated(parts, depth, self._frame(expr))
        if len(elements) != 1:
            return []  # X[:, cols]: a column selection
        index = elements[0].slice
        if isinstance(index, cst.Index):
            value = literal_value(index.value)
            if isinstance(value, int) and not isinstance(value, bool):
                return self._evidence(expr.value, ((ITEM, value),) + path, depth + 1)
            return []  # df[cols], df["a"]: a column selection
        base = expr.value  # a row slice keeps every column
        if isinstance(base, cst.Attribute) and base.attr.value == "iloc":
            base = base.value
        elif isinstance(base, cst.Attribute) and base.attr.value == "loc":
            return []
        return self._evidence(base, path, depth + 1)

    def _call_evidence(self, call: cst.Call, path, depth) -> list[Categorical]:
        func = call.func
        qualname = self.names.qualname(func)
        first = argument(call, 0)
        if qualname in GET_DUMMIES:
            made = Categorical(call, "was built with `pd.get_dummies`", None, self._frame(call))
            before = self._evidence(first, (), depth + 1) if first is not None else []
            return [made] + before
        if qualname in CONCATENATE and first is not None:
            if isinstance(first, (cst.List, cst.Tuple)):
                parts = [e.value for e in first.elements]
                return self._concatenated(parts, depth, self._frame(call))
            return []
        if qualname in WRAPPERS and first is not None:
            return self._evidence(first, path, depth + 1)
        if qualname in SPLITTERS and path and path[0][0] == ITEM:
            arrays = [a.value for a in call.args if a.keyword is None and not a.star]
            index = path[0][1]
            if 0 <= index < 2 * len(arrays):
                return self._evidence(arrays[index // 2], path[1:], depth + 1)
            return []
        function = self.values.called_function(call)
        if function is not None:
            found: list[Categorical] = []
            for value in self.values.returns(function):
                found.extend(self._evidence(value, path, depth + 1))
            return found
        if qualname is not None or not isinstance(func, cst.Attribute) or path:
            return []
        method, receiver = func.attr.value, func.value
        if method in KEEP_COLUMNS:
            return self._evidence(receiver, (), depth + 1)
        if method == "astype":
            found = self._evidence(receiver, (), depth + 1)
            if first is not None and _category_type(first):
                reason = "was cast with `.astype(category)`"
                found = found + [Categorical(call, reason, None, self._frame(call))]
            return found
        if method == "drop":
            columns = self._dropped_columns(call)
            found = self._evidence(receiver, (), depth + 1)
            if columns is ROWS:
                return found
            return [e for e in found if not _dropped(e, columns)]
        if method in ("join", "merge") and first is not None:
            return self._evidence(receiver, (), depth + 1) + self._evidence(first, (), depth + 1)
        return []

    def _concatenated(self, parts, depth: int, frame: str | None) -> list[Categorical]:
        found: list[Categorical] = []
        for part in parts:
            encoder = self._one_hot_output(part)
            if encoder is not None:
                reason = f"was concatenated with `{encoder}` output"
                found.append(Categorical(part, reason, None, frame))
            else:
                found.extend(self._evidence(part, (), depth + 1))
        return found

    def _frame(self, expr: cst.CSTNode) -> str | None:
        """The name a table made at ``expr`` is assigned to (``df = pd.get_dummies(df)``)."""
        names = sorted(self._assigned_names(expr))
        return names[0] if names else None

    def _one_hot_output(self, expr: cst.BaseExpression) -> str | None:
        """``OneHotEncoder`` when ``expr`` is (a name for) an encoder's output."""
        for leaf in self.values.origins(expr, through=self._dense_or_frame):
            node = leaf.node
            if leaf.path or not isinstance(node, cst.Call):
                continue
            if isinstance(node.func, cst.Attribute) and node.func.attr.value in (
                "fit_transform",
                "transform",
            ):
                encoder = self._encoder(node.func.value, ONE_HOT_ENCODERS)
                if encoder is not None:
                    return encoder
        return None

    def _encoder(self, expr: cst.BaseExpression, kinds: set[str]) -> str | None:
        for leaf in self.values.origins(expr):
            node = leaf.node
            if not leaf.path and isinstance(node, cst.Call):
                qualname = self.names.qualname(node.func)
                if qualname in kinds:
                    return qualname.rsplit(".", 1)[1]
        return None

    # -- column mutations -----------------------------------------------------------------
    @cached_property
    def _mutations(self) -> dict[int, list[tuple[cst.CSTNode, object]]]:
        """For each binding of a frame: the statements that encode one of its columns
        (a ``Categorical``) or drop columns (the dropped columns), in textual order."""
        found: dict[int, list] = defaultdict(list)
        for assign in self.tree.nodes(cst.Assign):
            if len(assign.targets) != 1:
                continue
            target = assign.targets[0].target
            if not isinstance(target, cst.Subscript) or not isinstance(target.value, cst.Name):
                continue
            reason = self._encoded_column(assign.value)
            if reason is None:
                continue
            frame = target.value
            binding = self.names.binding_at(frame.value, frame)
            if binding is None or len(target.slice) != 1:
                continue
            index = target.slice[0].slice
            columns = self._columns(index.value) if isinstance(index, cst.Index) else None
            made = Categorical(assign, reason, columns, frame.value)
            found[id(binding)].append((assign, made))
        for call in self.tree.nodes(cst.Call):
            func = call.func
            if not isinstance(func, cst.Attribute) or not isinstance(func.value, cst.Name):
                continue
            if func.attr.value != "drop" or not _is_true(keyword(call, "inplace")):
                continue
            columns = self._dropped_columns(call)
            binding = self.names.binding_at(func.value.value, func.value)
            if columns is not ROWS and binding is not None:
                found[id(binding)].append((call, columns))
        for statement in self.tree.nodes(cst.Del):
            target = statement.target
            if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
                binding = self.names.binding_at(target.value.value, target.value)
                index = target.slice[0].slice if len(target.slice) == 1 else None
                if binding is not None and isinstance(index, cst.Index):
                    found[id(binding)].append((statement, self._columns(index.value)))
        for effects in found.values():
            effects.sort(key=lambda pair: self.tree.order[pair[0]])
        return found

    def _encoded_column(self, value: cst.BaseExpression) -> str | None:
        """Why the value assigned to a column is categorical codes, or None."""
        node = value
        for _ in range(12):
            if isinstance(node, cst.Subscript):
                node = node.value
                continue
            if isinstance(node, cst.Attribute):
                if node.attr.value == "codes":
                    return "got category codes in a column"
                node = node.value
                continue
            if not isinstance(node, cst.Call):
                return None
            func = node.func
            qualname = self.names.qualname(func)
            if qualname == "pandas.factorize":
                return "got `pd.factorize` codes in a column"
            if not isinstance(func, cst.Attribute):
                return None
            method = func.attr.value
            if method in ("fit_transform", "transform"):
                encoder = self._encoder(func.value, CODE_ENCODERS | ONE_HOT_ENCODERS)
                return f"got a column filled by `{encoder}`" if encoder else None
            if method in ("map", "replace") and self._integer_codes(argument(node, 0)):
                return f"got a column mapped to integer codes with `.{method}`"
            if method == "astype" and _category_type(argument(node, 0)):
                return "got a column cast with `.astype(category)`"
            node = func.value
        return None

    def _integer_codes(self, expr: cst.BaseExpression | None) -> bool:
        """A dict literal (or a name for one) mapping two or more category names to
        integer codes."""
        if expr is None:
            return False
        leaves = self.values.origins(expr)
        if len(leaves) != 1 or leaves[0].path or not isinstance(leaves[0].node, cst.Dict):
            return False
        elements = leaves[0].node.elements
        # {"Yes": 1, "No": 0}; a single {"?": 0} is cleaning a numeric column.
        return len(elements) >= 2 and all(
            isinstance(e, cst.DictElement)
            and isinstance(literal_value(e.key), str)
            and isinstance(literal_value(e.value), int)
            for e in elements
        )

    def _columns(self, expr: cst.BaseExpression, depth: int = 0) -> frozenset[str] | str | None:
        """Column names an index expression stands for (literal names when known)."""
        value = literal_value(expr)
        if isinstance(value, str):
            return frozenset({value})
        if isinstance(expr, (cst.List, cst.Tuple)):
            names = [literal_value(e.value) for e in expr.elements]
            if names and all(isinstance(n, str) for n in names):
                return frozenset(names)
            return None
        if isinstance(expr, cst.Name) and depth < 4:
            binding = self.names.binding_at(expr.value, expr)
            if binding is not None and binding.kind == "assign" and binding.value is not None:
                if binding.path == ((ITER,),):
                    return self._columns(binding.value, depth + 1)  # for c in cat_cols
                if not binding.path:
                    resolved = self._columns(binding.value, depth + 1)
                    if resolved is not None:
                        return resolved
            return expr.value
        name = dotted(expr)
        return name

    def _dropped_columns(self, call: cst.Call):
        """Columns a ``.drop(...)`` removes; ROWS when it removes rows."""
        named = keyword(call, "columns")
        if named is not None:
            return self._columns(named.value)
        labels = argument(call, 0, "labels")
        axis = keyword(call, "axis")
        if labels is None:
            return ROWS
        if axis is None and len([a for a in call.args if a.keyword is None]) >= 2:
            axis_value = literal_value(call.args[1].value)
        else:
            axis_value = literal_value(axis.value) if axis is not None else 0
        if axis_value in (1, "columns"):
            return self._columns(labels)
        return ROWS


ROWS = object()


def _dropped(evidence: Categorical, columns) -> bool:
    """True when dropping ``columns`` removes every column ``evidence`` is about."""
    if evidence.columns is None or columns is None:
        return False
    if isinstance(evidence.columns, frozenset) and isinstance(columns, frozenset):
        return evidence.columns <= columns
    return evidence.columns == columns


def named_pair(a: str, b: str) -> bool:
    """``X_train``/``y_train``, ``features``/``labels``, ``trainX``/``trainY``..."""
    a_words, b_words = _words(a.rsplit(".", 1)[-1]), _words(b.rsplit(".", 1)[-1])
    if a.rsplit(".", 1)[0] != b.rsplit(".", 1)[0] and ("." in a or "." in b):
        return False
    if len(a_words) != len(b_words):
        return False
    differ = [(x, y) for x, y in zip(a_words, b_words, strict=True) if x != y]
    if len(differ) != 1:
        return False
    x, y = differ[0]
    return _xy_words(x, y) or _xy_words(y, x)


def _xy_words(x: str, y: str) -> bool:
    if x in X_WORDS and y in Y_WORDS:
        return True
    # Xtr/ytr, xb/yb, trainx/trainy: one letter x/y leading or trailing, the rest equal.
    if x[:1] == "x" and y[:1] == "y" and x[1:] == y[1:]:
        return True
    return x[-1:] == "x" and y[-1:] == "y" and x[:-1] == y[:-1]


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [w.lower() for w in spaced.split("_") if w]


def _flatten(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(target, (cst.Tuple, cst.List)):
        found = []
        for element in target.elements:
            found.extend(_flatten(element.value))
        return found
    return [target]


def _arg_names(arg: cst.Arg) -> set[str]:
    name = dotted(arg.value)
    return {name} if name else set()


def _looks_like_count(expr: cst.CSTNode) -> bool:
    """``len(x)``, ``x.shape[0]``, ``x.size(0)``, ``n * 2``, an int literal."""
    if isinstance(literal_value(expr), int):
        return True
    if isinstance(expr, cst.Call):
        name = call_name(expr)
        return name in ("len", "size", "int", "range", "sum", "count")
    if isinstance(expr, cst.Subscript):
        return isinstance(expr.value, cst.Attribute) and expr.value.attr.value == "shape"
    if isinstance(expr, cst.BinaryOperation):
        return _looks_like_count(expr.left) or _looks_like_count(expr.right)
    return False


def _is_one(arg: cst.Arg | None) -> bool:
    return (
        arg is not None
        and literal_value(arg.value) in (1, 1.0)
        and not isinstance(literal_value(arg.value), bool)
    )


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _is_true(arg: cst.Arg | None) -> bool:
    return arg is not None and literal_value(arg.value) is True


def _category_type(expr: cst.BaseExpression | None) -> bool:
    if expr is None:
        return False
    if isinstance(expr, cst.Name) and expr.value == "bool":
        return True
    value = literal_value(expr)
    return isinstance(value, str) and value in CATEGORY_TYPES
