"""Shapes: the rank of a tensor expression, when the file itself decides it.

A tiny abstract domain, enough to see ``(N, 1)`` meet ``(N,)``:

- ``"column"``: known 2-D with a trailing axis of 1, ``(N, 1)``: the output of a model
  whose last layer has one unit (``nn.Linear(k, 1)``), ``x.unsqueeze(1)``, ``x[:, None]``,
  ``x.view(-1, 1)``, a ``keepdim=True`` reduction of a 2-D value, ``df[["col"]].values``;
- ``"flat"``: known 1-D, ``(N,)``: ``df["col"].values``, ``torch.randn(n)``,
  ``torch.randint(0, 2, (n,))``, ``torch.tensor([1.0, 2.0])``, ``x[:, 0]`` or a reduction
  over dim 1 of a 2-D value, ``out.squeeze(1)`` of a column, ``x.view(-1)``, and the
  batches a ``DataLoader(TensorDataset(X, y))`` yields for such a ``y``;
- ``"matrix"``: known 2-D with a trailing axis that is not known to be 1;
- ``"scalar"``: a number or a full reduction (``y.mean()``).

Anything else is unknown (None). Values are followed through ``facts.values.origins``
and through operations that keep the shape (``.float()``, ``.to(device)``,
``torch.tensor(...)``, ``np.asarray(...)``, elementwise activations). A shape carries
its ``evidence``, the expression that decided it, for messages, and ``from_model``, whether
it is a model output (rules that look at hand-written arithmetic want one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from dllint.analysis.names import CALL, ITEM, ITER
from dllint.analysis.tree import argument, dotted, keyword, literal_value
from dllint.analysis.values import SEQUENTIAL, Value, sequential_layers

COLUMN = "column"
FLAT = "flat"
MATRIX = "matrix"
SCALAR = "scalar"
TEXT = {COLUMN: "(N, 1)", FLAT: "(N,)", MATRIX: "(N, k)", SCALAR: "()"}
MAX_DEPTH = 24


@dataclass(frozen=True)
class Shape:
    """What is known of an expression's shape, and the expression that decided it."""

    kind: str  # COLUMN, FLAT, MATRIX or SCALAR
    evidence: cst.CSTNode = field(repr=False, compare=False)
    from_model: bool = False

    @property
    def text(self) -> str:
        """The shape as a user reads it: ``(N, 1)``, ``(N,)``."""
        return TEXT[self.kind]


# Methods and functions whose result has the shape of their receiver / first argument.
PRESERVING_METHODS = frozenset(
    {
        "float", "double", "half", "bfloat16", "long", "int", "bool", "to", "cuda", "cpu",
        "detach", "clone", "contiguous", "numpy", "type", "type_as", "astype",
        "requires_grad_", "pin_memory", "sigmoid", "relu", "tanh", "exp", "log", "log1p",
        "abs", "neg", "clamp", "clip", "round", "floor", "ceil", "sqrt", "square",
    }
)  # fmt: skip
PRESERVING_FUNCTIONS = frozenset(
    {
        "torch.tensor", "torch.as_tensor", "torch.from_numpy", "torch.sigmoid",
        "torch.tanh", "torch.relu", "torch.exp", "torch.log", "torch.log1p", "torch.abs",
        "torch.clamp", "torch.clip", "torch.square", "torch.sqrt",
        "torch.nn.functional.relu", "torch.nn.functional.sigmoid",
        "torch.nn.functional.softplus", "torch.nn.functional.tanh",
        "numpy.array", "numpy.asarray", "numpy.float32", "numpy.log", "numpy.log1p",
        "numpy.exp", "numpy.abs", "numpy.clip", "numpy.sqrt", "numpy.square",
    }
)  # fmt: skip
LEGACY_TENSORS = frozenset(
    {"torch.Tensor", "torch.FloatTensor", "torch.DoubleTensor", "torch.LongTensor"}
)
# Modules that keep the shape of their input (an activation after the head).
PRESERVING_MODULES = frozenset(
    f"torch.nn.{name}"
    for name in (
        "Sigmoid", "Tanh", "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU",
        "SiLU", "Mish", "Softplus", "Hardtanh", "Hardsigmoid", "Identity", "Dropout",
        "AlphaDropout",
    )
)  # fmt: skip
LINEAR = {"torch.nn.Linear": 1, "torch.nn.LazyLinear": 0}  # where out_features sits
# Layers whose output has a sequence, channel or spatial axis: a Linear after them
# gives (N, T, 1), not (N, 1).
RAISING_LAYERS = frozenset(
    f"torch.nn.{name}"
    for name in (
        "Embedding", "LSTM", "GRU", "RNN", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
        "ConvTranspose2d", "ConvTranspose3d", "Transformer", "TransformerEncoder",
        "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer",
        "MultiheadAttention", "Unflatten", "MaxPool1d", "MaxPool2d", "AvgPool1d",
        "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "BatchNorm2d", "Upsample",
    )
)  # fmt: skip
KEEPING_LAYERS = frozenset(
    {*LINEAR, "torch.nn.LayerNorm", "torch.nn.BatchNorm1d"}
)  # fmt: skip
# Factories whose positional arguments (or one tuple) are the sizes.
SIZED_FACTORIES = frozenset(
    {
        "torch.randn", "torch.rand", "torch.zeros", "torch.ones", "torch.empty",
        "numpy.random.randn", "numpy.random.rand",
    }
)  # fmt: skip
SHAPE_FIRST_FACTORIES = frozenset(
    {"torch.full", "numpy.zeros", "numpy.ones", "numpy.empty", "numpy.full"}
)
SIZE_THIRD_FACTORIES = frozenset(
    {"numpy.random.randint", "numpy.random.normal", "numpy.random.uniform"}
)
RANGES = frozenset(
    {
        "torch.arange", "torch.linspace", "torch.logspace", "torch.randperm",
        "numpy.arange", "numpy.linspace", "numpy.logspace", "numpy.random.permutation",
    }
)  # fmt: skip
# Text tables numpy reads: a 2-D array, rows first (``np.loadtxt("data.csv", delimiter=",")``).
TEXT_TABLES = frozenset({"numpy.loadtxt", "numpy.genfromtxt"})
TABLE_SHAPERS = frozenset({"usecols", "unpack", "ndmin"})
LIKE = frozenset(
    {
        "torch.zeros_like", "torch.ones_like", "torch.rand_like", "torch.randn_like",
        "torch.empty_like", "torch.full_like", "numpy.zeros_like", "numpy.ones_like",
        "numpy.empty_like", "numpy.full_like",
    }
)  # fmt: skip
REDUCTIONS = frozenset(
    {
        "sum", "mean", "std", "var", "prod", "amax", "amin", "argmax", "argmin",
        "logsumexp", "nansum", "nanmean", "count_nonzero", "all", "any",
    }
)  # fmt: skip
TUPLE_REDUCTIONS = frozenset({"max", "min", "median", "mode"})  # (values, indices) with a dim
DATALOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})
TENSOR_DATASETS = frozenset(
    {"torch.utils.data.TensorDataset", "torch.utils.data.dataset.TensorDataset"}
)
SUBSETS = frozenset(
    {
        "torch.utils.data.random_split", "torch.utils.data.dataset.random_split",
        "torch.utils.data.Subset", "torch.utils.data.dataset.Subset",
    }
)  # fmt: skip
TRAIN_TEST_SPLIT = "sklearn.model_selection.train_test_split"
FRAME_MAKERS = frozenset(
    {
        "read_csv", "read_parquet", "read_excel", "read_json", "read_feather", "read_pickle",
        "read_sql", "read_table", "read_stata", "DataFrame", "concat", "merge", "get_dummies",
    }
)  # fmt: skip
# Methods that keep a Series a Series and a frame a frame (rows may go, columns stay).
PANDAS_METHODS = frozenset(
    {
        "dropna", "fillna", "copy", "reset_index", "sort_values", "sort_index",
        "drop_duplicates", "drop", "astype", "sample", "head", "tail", "query", "assign",
        "rename", "set_index", "interpolate", "ffill", "bfill", "replace", "select_dtypes",
        "map", "clip", "abs", "round", "shift", "diff", "pct_change",
    }
)  # fmt: skip


class Shapes:
    """Abstract shapes of the expressions of one module (see the module docstring)."""

    def __init__(self, facts) -> None:
        self.facts = facts
        self.values = facts.values
        self._cache: dict[cst.CSTNode, Shape | None] = {}
        self._depth = 0
        self._reshaped = _reshaped_in_place(facts)

    # -- public -----------------------------------------------------------------------
    def of(self, expr: cst.CSTNode) -> Shape | None:
        """The shape of ``expr`` when every value it may hold agrees on one, else None."""
        if expr in self._cache:
            return self._cache[expr]
        if self._depth > MAX_DEPTH:
            return None
        self._cache[expr] = None  # a value defined through itself is unknown
        self._depth += 1
        try:
            shapes = [self._leaf(leaf) for leaf in self._origins(expr)]
        finally:
            self._depth -= 1
        result = _agree(shapes)
        self._cache[expr] = result
        return result

    def kind(self, expr: cst.CSTNode) -> str | None:
        shape = self.of(expr)
        return shape.kind if shape is not None else None

    def int_value(self, expr: cst.CSTNode | None) -> int | None:
        """The int an expression holds: a literal, a name bound to one, or an
        ``__init__`` parameter that every construction of the class gives the same."""
        if expr is None:
            return None
        found = set()
        for leaf in self.values.origins(expr):
            if leaf.path:
                return None
            value = literal_value(leaf.node)
            if isinstance(value, int) and not isinstance(value, bool):
                found.add(value)
                continue
            constructed = self._init_argument_ints(leaf.node)
            if not constructed:
                return None
            found |= constructed
        return found.pop() if len(found) == 1 else None

    # -- following --------------------------------------------------------------------
    def _origins(self, expr: cst.CSTNode, path: tuple = ()) -> list[Value]:
        leaves = self.values.origins(expr, through=self._through)
        return [Value(leaf.node, leaf.path + path) for leaf in leaves]

    def _through(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """An inner expression with the same shape (``y.float()`` -> ``y``)."""
        if self._reshaped and isinstance(node, (cst.Name, cst.Attribute)):
            if dotted(node) in self._reshaped:
                return UNKNOWN  # y.unsqueeze_(1) somewhere: its shape depends on when
        inner = self.values.module_passthrough(node)
        if inner is not None or not isinstance(node, cst.Call):
            return inner
        func = node.func
        qualname = self.facts.qualname(func)
        if qualname is None and isinstance(func, cst.Attribute):
            return func.value if func.attr.value in PRESERVING_METHODS else None
        first = argument(node, 0)
        if first is None:
            return None
        if qualname in PRESERVING_FUNCTIONS or (qualname or "").startswith("tqdm"):
            return first
        if len(node.args) == 1 and qualname is None and self._preserving_module(func):
            return first  # self.act(x) where self.act = nn.Sigmoid()
        return None

    def _preserving_module(self, func: cst.CSTNode) -> bool:
        leaves = self.values.origins(func, through=self.values.module_passthrough)
        return bool(leaves) and all(
            not leaf.path
            and isinstance(leaf.node, cst.Call)
            and self.facts.qualname(leaf.node.func) in PRESERVING_MODULES
            for leaf in leaves
        )

    def _leaf(self, leaf: Value) -> Shape | None:
        node, path = leaf.node, leaf.path
        if not path:
            return self._expression(node)
        head = path[0]
        if head == (CALL,):
            return self._layer_output(node) if len(path) == 1 else None
        if head == (ITER,):
            return self._batch(node, path[1:])
        if head[0] == ITEM:
            return self._item(node, head[1], path[1:])
        return None

    # -- plain expressions ------------------------------------------------------------
    def _expression(self, node: cst.CSTNode) -> Shape | None:
        if isinstance(literal_value(node), (int, float)) and not isinstance(node, cst.Name):
            return Shape(SCALAR, node)
        if isinstance(node, cst.UnaryOperation):
            return self.of(node.expression)
        if isinstance(node, cst.BinaryOperation):
            return self._arithmetic(node)
        if isinstance(node, cst.Call):
            return self._call(node)
        if isinstance(node, cst.Attribute):
            return self._attribute(node)
        if isinstance(node, cst.Subscript):
            return self._subscript(node)
        if isinstance(node, (cst.List, cst.ListComp)):
            return _list_literal(node)
        return None

    def _arithmetic(self, node: cst.BinaryOperation) -> Shape | None:
        """``(y - mean) / std`` keeps the shape of ``y`` when the other side is a number."""
        if isinstance(node.operator, cst.MatrixMultiply):
            return None
        left, right = self.of(node.left), self.of(node.right)
        if left is None or right is None:
            return None
        if right.kind == SCALAR:
            return left
        if left.kind == SCALAR:
            return right
        return left if left.kind == right.kind else None

    def _call(self, call: cst.Call) -> Shape | None:
        func = call.func
        qualname = self.facts.qualname(func)
        if qualname is not None:
            return self._function(call, qualname)
        layer = self._called_layer(call)
        if layer is not None:
            return layer
        if isinstance(func, cst.Attribute):
            return self._method(call, func.attr.value, func.value)
        if isinstance(func, cst.Name) and func.value in ("float", "int"):
            binding = self.facts.names.binding_at(func.value, func)
            return Shape(SCALAR, call) if binding is None else None
        return None

    def _function(self, call: cst.Call, qualname: str) -> Shape | None:
        first = argument(call, 0)
        if qualname in SIZED_FACTORIES:
            return _sized(call, _size_arguments(call), self)
        if qualname in SHAPE_FIRST_FACTORIES:
            size = argument(call, 0, "size") if qualname.startswith("torch") else None
            size = size or argument(call, 0, "shape")
            return _sized(call, [size] if size is not None else [], self)
        if qualname == "torch.randint":
            size = keyword(call, "size")
            positional = [a.value for a in call.args if a.keyword is None]
            sizes = size.value if size is not None else (positional[-1] if positional else None)
            if isinstance(sizes, (cst.Tuple, cst.List)):
                return _sized(call, [sizes], self)
            return None
        if qualname in SIZE_THIRD_FACTORIES:
            size = argument(call, 2, "size")
            return _sized(call, [size], self) if size is not None else None
        if qualname in RANGES:
            return Shape(FLAT, call)
        if qualname in TEXT_TABLES:
            # rows by columns; one column or an unpacked table would be 1-D or transposed
            if any(a.keyword is not None and a.keyword.value in TABLE_SHAPERS for a in call.args):
                return None
            return Shape(MATRIX, call)
        if qualname in LIKE and first is not None:
            return self.of(first)
        if qualname in LEGACY_TENSORS and first is not None:
            inner = self.of(first)
            return inner if inner is not None and inner.kind != SCALAR else None
        if first is None:
            return None
        name = qualname.rsplit(".", 1)[-1]
        if qualname.startswith(("torch.", "numpy.")):
            return self._tensor_op(call, name, first, offset=1)
        return None

    def _method(self, call: cst.Call, name: str, base: cst.BaseExpression) -> Shape | None:
        if name == "to_numpy":
            return self._pandas_values(call, base)
        if name == "item":
            return Shape(SCALAR, call)
        if name == "values":  # x.values() of a sparse tensor or a dict: not a Series
            return None
        return self._tensor_op(call, name, base, offset=0)

    def _tensor_op(self, call, name, base, offset) -> Shape | None:
        """``x.op(args)`` (offset 0) or ``torch.op(x, args)`` (offset 1)."""
        if name in ("unsqueeze", "expand_dims"):
            return self._unsqueeze(call, base, _dim(call, offset))
        if name == "squeeze":
            dim = _dim(call, offset)
            return self._squeeze(call, base, dim) if dim is not None else None
        if name in ("view", "reshape"):
            return self._reshape(call, base, _reshape_dims(call, offset))
        if name in ("flatten", "ravel"):
            start = argument(call, offset, "start_dim")
            if start is None or literal_value(start) == 0:
                return self._derived(FLAT, call, base)
            return None
        if name in REDUCTIONS:
            return self._reduce(call, base, _dim(call, offset), _keepdim(call))
        if name in TUPLE_REDUCTIONS and _dim(call, offset) is None and not _has_dim(call, offset):
            return Shape(SCALAR, call)
        if name in TUPLE_REDUCTIONS and keyword(call, "axis") is not None:
            return self._reduce(call, base, _dim(call, offset), _keepdim(call))  # numpy
        return None

    def _derived(self, kind: str, node: cst.CSTNode, base: cst.CSTNode) -> Shape:
        """A shape the operation decides alone; it is a model output when ``base`` is."""
        inner = self.of(base)
        return Shape(kind, node, inner is not None and inner.from_model)

    def _unsqueeze(self, call, base, dim) -> Shape | None:
        """``x.unsqueeze(1)`` makes a column of a 1-D ``x`` (or of one the file never shapes)."""
        if dim not in (1, -1):
            return None
        inner = self.of(base)
        if inner is None or inner.kind == FLAT:
            return Shape(COLUMN, call, inner is not None and inner.from_model)
        return None

    def _squeeze(self, call, base, dim) -> Shape | None:
        """``out.squeeze(1)`` is 1-D only when ``out`` is known to be a column."""
        inner = self.of(base)
        if dim in (1, -1) and inner is not None and inner.kind == COLUMN:
            return Shape(FLAT, call, inner.from_model)
        return None

    def _reshape(self, call, base, dims) -> Shape | None:
        if dims is None:
            return None
        values = [literal_value(d) for d in dims]
        if len(dims) == 1 and values[0] == -1:
            return self._derived(FLAT, call, base)
        if len(dims) == 2 and values[0] != 1:
            return self._derived(COLUMN if values[1] == 1 else MATRIX, call, base)
        return None

    def _reduce(self, call, base, dim, keepdim) -> Shape | None:
        """A reduction: over everything it is a scalar; over dim 1 of a 2-D value, 1-D."""
        if dim is None:
            if _has_dim(call, 0 if isinstance(call.func, cst.Attribute) else 1):
                return None
            return None if keepdim else Shape(SCALAR, call)
        inner = self.of(base)
        if inner is None:
            return None
        if inner.kind in (COLUMN, MATRIX) and dim in (1, -1):
            return Shape(COLUMN if keepdim else FLAT, call, inner.from_model)
        if inner.kind == FLAT and dim in (0, -1) and not keepdim:
            return Shape(SCALAR, call)
        return None

    def _attribute(self, node: cst.Attribute) -> Shape | None:
        name = node.attr.value
        if name == "values":
            found = self._pandas_values(node, node.value)
            if found is not None:
                return found
        if name in ("values", "indices") and isinstance(node.value, cst.Call):
            # x.max(dim=1).values
            return self._item(node.value, 0 if name == "values" else 1, ())
        return None

    def _subscript(self, node: cst.Subscript) -> Shape | None:
        columns = self._pandas_columns(node)
        if columns is not None:
            return Shape((FLAT, COLUMN, MATRIX)[columns], node)
        parts = [element.slice for element in node.slice]
        if len(parts) == 1:
            inner = self.of(node.value)
            if inner is None:
                return None
            if isinstance(parts[0], cst.Slice) and inner.kind in (FLAT, COLUMN, MATRIX):
                return inner  # y[:800]
            if isinstance(parts[0], cst.Index) and inner.kind in (FLAT, COLUMN):
                # y[perm] with a 1-D index (not y[i], a number, nor a 2-D mask): same rank
                index = self.of(parts[0].value)
                return inner if index is not None and index.kind == FLAT else None
            return None
        if len(parts) != 2:
            return None
        first, second = parts
        if not _is_full_slice(first) and not _is_ellipsis(first):
            return None
        inner = self.of(node.value)
        if isinstance(second, cst.Index) and _is_newaxis(second.value, self.facts):
            if inner is not None and inner.kind == FLAT:
                return Shape(COLUMN, node, inner.from_model)  # y[:, None] of a 1-D y
            if inner is None and not _is_ellipsis(first):
                return Shape(COLUMN, node)
            return None
        if inner is None or inner.kind not in (COLUMN, MATRIX) or _is_ellipsis(first):
            return None
        if isinstance(second, cst.Index) and isinstance(literal_value(second.value), int):
            return Shape(FLAT, node, inner.from_model)  # x[:, 0]
        if isinstance(second, cst.Slice) and _single_slice(second):
            return Shape(COLUMN, node, inner.from_model)  # x[:, -1:]
        return None

    # -- pandas -----------------------------------------------------------------------
    def _pandas_values(self, node, base) -> Shape | None:
        """``df["y"].values`` is 1-D, ``df[["y"]].values`` a column, ``df.values`` 2-D."""
        columns = self._pandas_columns(base)
        if columns is None:
            return None
        if columns == 0:
            return Shape(FLAT, node)
        return Shape(COLUMN if columns == 1 else MATRIX, node)

    def _pandas_columns(self, expr) -> int | None:
        """What a pandas value made in this file is: 0 a Series, 1 a one-column frame,
        2 another frame; None when it is not known to be pandas."""
        if self._depth > MAX_DEPTH:
            return None
        self._depth += 1
        try:
            leaves = self.values.origins(expr)
            found = {self._pandas_leaf(leaf) for leaf in leaves}
        finally:
            self._depth -= 1
        return found.pop() if len(found) == 1 and None not in found else None

    def _pandas_leaf(self, leaf: Value) -> int | None:
        node, path = leaf.node, leaf.path
        if path:
            if len(path) == 1 and path[0][0] == ITEM and isinstance(node, cst.Call):
                if self.facts.qualname(node.func) == TRAIN_TEST_SPLIT:
                    arrays = [a.value for a in node.args if a.keyword is None and not a.star]
                    index = path[0][1] // 2
                    if 0 <= index < len(arrays):
                        return self._pandas_columns(arrays[index])
            return None
        if isinstance(node, cst.Call):
            qualname = self.facts.qualname(node.func) or ""
            if qualname.startswith("pandas."):
                name = qualname.rsplit(".", 1)[-1]
                if name == "Series":
                    return 0
                return 2 if name in FRAME_MAKERS else None
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in PANDAS_METHODS:
                return self._pandas_columns(func.value)
            return None
        if isinstance(node, cst.Subscript):
            return self._pandas_subscript(node)
        if isinstance(node, cst.BinaryOperation):
            # (price - price.mean()) / price.std(): a Series stays a Series
            left, right = self._pandas_columns(node.left), self._pandas_columns(node.right)
            if left is None or right is None or left == right:
                return right if left is None else left
            return None
        return None

    def _pandas_subscript(self, node: cst.Subscript) -> int | None:
        """Column selection (``df["y"]``, ``df[["y"]]``, ``df.loc[:, "y"]``,
        ``df.iloc[:, -1]``) or row selection (``df[mask]``, ``df.iloc[:800]``)."""
        parts = [element.slice for element in node.slice]
        base = node.value
        accessor = base.attr.value if isinstance(base, cst.Attribute) else None
        if accessor in ("loc", "iloc"):
            frame = base.value
            if len(parts) == 2 and _is_full_slice(parts[0]) and isinstance(parts[1], cst.Index):
                columns = _column_key(parts[1].value, accessor)
                return columns if columns is not None and self._is_frame(frame) else None
            if len(parts) == 1 and isinstance(parts[0], cst.Slice):
                return self._pandas_columns(frame)  # rows
            return None
        if len(parts) != 1:
            return None
        part = parts[0]
        if isinstance(part, cst.Slice):
            return self._pandas_columns(base)  # rows
        if isinstance(part, cst.Index):
            columns = _column_key(part.value, "loc")
            if columns is not None:
                return columns if self._is_frame(base) else None
            if _is_mask(part.value):
                return self._pandas_columns(base)  # rows
        return None

    def _is_frame(self, expr) -> bool:
        """Every value ``expr`` may hold is a pandas DataFrame made in this file."""
        return self._pandas_columns(expr) in (1, 2)

    # -- model outputs, batches, items ------------------------------------------------
    def _called_layer(self, call: cst.Call) -> Shape | None:
        """``self.fc(x)`` where ``self.fc = nn.Linear(64, 1)``: what the layer gives."""
        func = call.func
        if not isinstance(func, (cst.Name, cst.Attribute)):
            return None
        leaves = self.values.origins(func, through=self.values.module_passthrough)
        if not leaves or any(leaf.path or not isinstance(leaf.node, cst.Call) for leaf in leaves):
            return None
        return _agree([self._layer_output(leaf.node, argument(call, 0)) for leaf in leaves])

    def _layer_output(self, node: cst.CSTNode, given=None) -> Shape | None:
        """What calling a layer gives: ``nn.Linear(k, 1)`` a column (one output unit),
        unless its input (``given``, or what comes before it in a Sequential) is known to
        have a sequence or spatial axis."""
        if not isinstance(node, cst.Call):
            return None
        qualname = self.facts.qualname(node.func)
        if qualname in LINEAR:
            units = self.int_value(argument(node, LINEAR[qualname], "out_features"))
            if units is None or self._raised_before(node):
                return None
            if given is not None and self._high_rank(given, 0):
                return None
            return Shape(COLUMN if units == 1 else MATRIX, node, True)
        if qualname in PRESERVING_MODULES:
            previous = self._previous_layer(node)
            return self._layer_output(previous) if previous is not None else None
        return None

    def _high_rank(self, expr: cst.CSTNode, depth: int) -> bool:
        """``expr`` is known to have three axes or more: an RNN/Conv/Embedding output, or
        ``torch.randn(n, t, d)``, possibly through Linear layers and activations."""
        if depth > 8:
            return False
        for leaf in self._origins(expr):
            node = leaf.node
            if not isinstance(node, cst.Call):
                continue
            if leaf.path and leaf.path[0] == (CALL,) and self._raised_before(node):
                return True
            qualname = self.facts.qualname(node.func)
            if qualname in SIZED_FACTORIES:
                sizes = _size_arguments(node)
                if len(sizes) == 1 and isinstance(sizes[0], (cst.Tuple, cst.List)):
                    sizes = sizes[0].elements
                if len(sizes) >= 3:
                    return True
            if qualname is not None:
                continue
            for callee in self.values.origins(node.func, through=self.values.module_passthrough):
                if callee.path or not isinstance(callee.node, cst.Call):
                    continue
                layer = self.facts.qualname(callee.node.func)
                if layer in RAISING_LAYERS:
                    return True
                keeps = layer in KEEPING_LAYERS or layer in PRESERVING_MODULES
                first = argument(node, 0)
                if keeps and first is not None and self._high_rank(first, depth + 1):
                    return True
        return False

    def _raised_before(self, layer: cst.Call) -> bool:
        """``layer`` or an earlier layer of the Sequential holding it adds an axis (and
        no ``nn.Flatten`` removes it again)."""
        layers = self._sequential_of(layer)
        if not layers:
            return False
        position = next((i for i, node in enumerate(layers) if node is layer), 0)
        for earlier in reversed(layers[: position + 1]):
            qualname = self.facts.qualname(earlier.func) if isinstance(earlier, cst.Call) else None
            if qualname == "torch.nn.Flatten":
                return False
            if qualname in RAISING_LAYERS:
                return True
        return False

    def _sequential_of(self, layer: cst.CSTNode) -> list[cst.BaseExpression]:
        parent = self.facts.tree.parent.get(layer)
        sequential = self.facts.tree.parent.get(parent) if isinstance(parent, cst.Arg) else None
        if not isinstance(sequential, cst.Call):
            return []
        if self.facts.qualname(sequential.func) != SEQUENTIAL:
            return []
        return sequential_layers(sequential)

    def _previous_layer(self, layer: cst.Call) -> cst.CSTNode | None:
        """The layer before ``layer`` in the ``nn.Sequential(...)`` that holds it."""
        layers = self._sequential_of(layer)
        position = next((i for i, node in enumerate(layers) if node is layer), None)
        if not position:
            return None
        previous = layers[position - 1]
        if isinstance(previous, cst.Call) and self.facts.qualname(previous.func) == SEQUENTIAL:
            inner = sequential_layers(previous)
            return inner[-1] if inner else None
        return previous

    def _batch(self, node: cst.CSTNode, rest: tuple) -> Shape | None:
        """One element of iterating ``node``; ``rest`` selects inside it."""
        if not isinstance(node, cst.Call):
            return None
        qualname = self.facts.qualname(node.func)
        first = argument(node, 0)
        if qualname in DATALOADERS:
            dataset = argument(node, 0, "dataset")
            if dataset is None or keyword(node, "collate_fn") is not None:
                return None
            return self._collated(dataset, rest)
        if self._is_splitter_split(node) and len(rest) == 1 and rest[0][0] == ITEM:
            return Shape(FLAT, node)  # for train_idx, test_idx in kf.split(X)
        if isinstance(node.func, cst.Name) and node.func.value in ("enumerate", "zip"):
            if qualname is not None or not rest or rest[0][0] != ITEM:
                return None
            index = rest[0][1]
            if node.func.value == "enumerate":
                if index != 1 or first is None:
                    return None
                source = first
            else:
                positional = [a.value for a in node.args if a.keyword is None and not a.star]
                if not 0 <= index < len(positional):
                    return None
                source = positional[index]
            return _agree(
                [self._leaf(leaf) for leaf in self._origins(source, ((ITER,),) + rest[1:])]
            )
        return None

    def _is_splitter_split(self, call: cst.Call) -> bool:
        """``kf.split(X)`` of a scikit-learn splitter: it yields 1-D index arrays."""
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "split":
            return False
        leaves = self.values.origins(func.value)
        return bool(leaves) and all(
            not leaf.path
            and isinstance(leaf.node, cst.Call)
            and (self.facts.qualname(leaf.node.func) or "").startswith("sklearn.model_selection.")
            for leaf in leaves
        )

    def _collated(self, dataset: cst.CSTNode, rest: tuple) -> Shape | None:
        """Element ``rest`` of a batch of ``dataset``: ``TensorDataset(X, y)`` batches of
        a 1-D ``y`` are 1-D, of an ``(N, 1)`` ``y`` are ``(B, 1)``."""
        if len(rest) != 1 or rest[0][0] != ITEM:
            return None
        index = rest[0][1]
        shapes = []
        for leaf in self.values.origins(dataset):
            shapes.append(self._dataset_item(leaf, index))
        return _agree(shapes)

    def _dataset_item(self, leaf: Value, index: int) -> Shape | None:
        node = leaf.node
        if not isinstance(node, cst.Call):
            return None
        qualname = self.facts.qualname(node.func)
        if qualname in SUBSETS and (not leaf.path or leaf.path[0][0] == ITEM):
            inner = argument(node, 0, "dataset")
            return self._collated(inner, ((ITEM, index),)) if inner is not None else None
        if leaf.path:
            return None
        if qualname in TENSOR_DATASETS:
            tensors = [a for a in node.args if a.keyword is None]
            if any(a.star for a in tensors) or not 0 <= index < len(tensors):
                return None
            shape = self.of(tensors[index].value)
            return shape if shape is not None and shape.kind != SCALAR else None
        info = self.facts.classes.constructed(node)
        if info is not None:
            return self._getitem_item(info, index)
        return None

    def _getitem_item(self, info, index: int) -> Shape | None:
        """Batches of an in-module Dataset whose ``__getitem__`` returns ``self.y[idx]``."""
        getitem = info.method("__getitem__")
        if getitem is None:
            return None
        params = [*getitem.params.posonly_params, *getitem.params.params]
        if len(params) != 2:
            return None
        idx = params[1].name.value
        shapes = []
        for value in self.values.returns(getitem):
            for leaf in self.values.origins(value, through=self._through):
                elements = leaf.node.elements if isinstance(leaf.node, cst.Tuple) else ()
                if leaf.path or not 0 <= index < len(elements):
                    return None
                if isinstance(elements[index], cst.StarredElement):
                    return None
                inner = self.values.origins(elements[index].value, through=self._through)
                shapes.extend(self._sample(sub, idx) for sub in inner)
        return _agree(shapes)

    def _sample(self, leaf: Value, idx: str) -> Shape | None:
        """``self.y[idx]`` (or ``[idx + k]``) in ``__getitem__``: batches have y's shape."""
        node = leaf.node
        if leaf.path or not isinstance(node, cst.Subscript) or len(node.slice) != 1:
            return None
        index = node.slice[0].slice
        if not isinstance(index, cst.Index) or not _uses_only(index.value, idx):
            return None
        shape = self.of(node.value)
        return shape if shape is not None and shape.kind in (FLAT, COLUMN) else None

    def _item(self, node: cst.CSTNode, index: int, rest: tuple) -> Shape | None:
        if rest or not isinstance(node, cst.Call):
            return None
        func = node.func
        if self.facts.qualname(func) == TRAIN_TEST_SPLIT:
            arrays = [a.value for a in node.args if a.keyword is None]
            if any(a.star for a in node.args) or not 0 <= index // 2 < len(arrays):
                return None
            return self.of(arrays[index // 2])
        if isinstance(func, cst.Attribute) and func.attr.value in TUPLE_REDUCTIONS:
            if index != 0 and func.attr.value in ("median", "mode"):
                return None
            dim = _dim(node, 0)
            if dim is None:
                return None
            return self._reduce(node, func.value, dim, _keepdim(node))
        return None

    # -- ints -------------------------------------------------------------------------
    def _init_argument_ints(self, node: cst.CSTNode) -> set[int]:
        """``out`` in ``def __init__(self, out=1)``: the ints every ``Net(...)`` passes."""
        if not isinstance(node, cst.Name):
            return set()
        binding = self.facts.names.binding_at(node.value, node)
        if binding is None or binding.kind != "param":
            return set()
        function = binding.scope
        if not isinstance(function, cst.FunctionDef) or function.name.value != "__init__":
            return set()
        params = [*function.params.posonly_params, *function.params.params][1:]
        names = [p.name.value for p in params]
        param = binding.node
        found: set[int] = set()
        sites = [
            call
            for call in self.facts.calls()
            if (info := self.facts.classes.constructed(call)) is not None
            and info.method("__init__") is function
        ]
        if not sites:
            return set()
        for call in sites:
            value = None
            given = keyword(call, param.name.value)
            if given is not None:
                value = given.value
            elif param.name.value in names:
                positional = [a for a in call.args if a.keyword is None]
                position = names.index(param.name.value)
                if any(a.star for a in positional[: position + 1]) or any(
                    a.star for a in call.args if a.keyword is None
                ):
                    return set()
                if position < len(positional):
                    value = positional[position].value
            if value is None:
                value = param.default
            number = self.int_value(value) if value is not None else None
            if number is None:
                return set()
            found.add(number)
        return found


# -- helpers ---------------------------------------------------------------------------
UNKNOWN = cst.Ellipsis()  # a leaf value flow stops at and that has no shape
IN_PLACE_RESHAPES = frozenset(
    {"unsqueeze_", "squeeze_", "resize_", "resize", "t_", "transpose_", "swapaxes_", "as_strided_"}
)


def _reshaped_in_place(facts) -> set[str]:
    """Names (``y``, ``self.y``) whose shape the module changes in place:
    ``y.unsqueeze_(1)``, ``arr.resize(n, 1)``, ``arr.shape = (-1, 1)``."""
    found = set()
    for call in facts.calls():
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in IN_PLACE_RESHAPES:
            name = dotted(func.value)
            if name:
                found.add(name)
    for assign in facts.tree.nodes(cst.Assign):
        for target in assign.targets:
            node = target.target
            if isinstance(node, cst.Attribute) and node.attr.value == "shape":
                name = dotted(node.value)
                if name:
                    found.add(name)
    return found


def _agree(shapes: list[Shape | None]) -> Shape | None:
    """One shape when every possibility is known and of one kind."""
    if not shapes or any(shape is None for shape in shapes):
        return None
    kinds = {shape.kind for shape in shapes}
    return shapes[0] if len(kinds) == 1 else None


def _size_arguments(call: cst.Call) -> list[cst.BaseExpression]:
    size = keyword(call, "size")
    if size is not None:
        return [size.value]
    return [
        a.value
        for a in call.args
        if a.keyword is None and not a.star and not isinstance(a.value, cst.SimpleString)
    ]


def _sized(call: cst.Call, sizes: list, shapes: Shapes) -> Shape | None:
    """``torch.randn(n)`` is 1-D, ``torch.randn(n, 1)`` a column: one int per axis."""
    if len(sizes) == 1 and isinstance(sizes[0], (cst.Tuple, cst.List)):
        elements = sizes[0].elements
        if any(isinstance(e, cst.StarredElement) for e in elements):
            return None
        sizes = [e.value for e in elements]
    if not sizes or not all(_is_int_expr(size, shapes) for size in sizes):
        return None
    if len(sizes) == 1:
        # torch.zeros(1) (a learnable bias, a pos_weight) broadcasts like a number
        return Shape(SCALAR if literal_value(sizes[0]) == 1 else FLAT, call)
    if len(sizes) == 2 and literal_value(sizes[0]) != 1:
        return Shape(COLUMN if literal_value(sizes[1]) == 1 else MATRIX, call)
    return None


def _is_int_expr(expr: cst.CSTNode, shapes: Shapes) -> bool:
    """A single int (not a tuple of sizes): literals, ``len(x)``, ``x.shape[0]``, ``n * 2``."""
    value = literal_value(expr)
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    if isinstance(expr, cst.BinaryOperation):
        return _is_int_expr(expr.left, shapes) and _is_int_expr(expr.right, shapes)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name):
        if expr.func.value in ("len", "int") and shapes.facts.qualname(expr.func) is None:
            return True
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        if expr.func.attr.value == "size" and len(expr.args) == 1:
            return True
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute):
        if expr.value.attr.value == "shape" and len(expr.slice) == 1:
            index = expr.slice[0].slice
            return isinstance(index, cst.Index) and isinstance(literal_value(index.value), int)
    if isinstance(expr, cst.Name):
        leaves = shapes.values.origins(expr)
        return bool(leaves) and all(
            not leaf.path and leaf.node is not expr and _is_int_expr(leaf.node, shapes)
            for leaf in leaves
        )
    return False


def _list_literal(node: cst.List | cst.ListComp) -> Shape | None:
    """``[0.5, 1.5]`` is 1-D, ``[[0.5], [1.5]]`` a column, ``[float(v) for v in r]`` 1-D."""
    if isinstance(node, cst.ListComp):
        element = node.elt
        if _is_number(element) or (
            isinstance(element, cst.Call)
            and isinstance(element.func, cst.Name)
            and element.func.value in ("float", "int")
        ):
            return Shape(FLAT, node)
        return None
    elements = [e.value for e in node.elements]
    if not elements or any(isinstance(e, cst.StarredElement) for e in node.elements):
        return None
    if all(_is_number(e) for e in elements):
        return Shape(FLAT if len(elements) > 1 else SCALAR, node)
    if all(isinstance(e, (cst.List, cst.Tuple)) for e in elements):
        widths = {len(e.elements) for e in elements}
        numbers = all(_is_number(i.value) for e in elements for i in e.elements)
        if numbers and len(widths) == 1:
            return Shape(COLUMN if widths == {1} else MATRIX, node)
    return None


def _is_number(node: cst.CSTNode) -> bool:
    value = literal_value(node)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dim(call: cst.Call, offset: int) -> int | None:
    """The literal ``dim``/``axis`` argument of a tensor method or function."""
    for name in ("dim", "axis"):
        given = keyword(call, name)
        if given is not None:
            value = literal_value(given.value)
            return value if isinstance(value, int) and not isinstance(value, bool) else None
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    if len(positional) > offset:
        value = literal_value(positional[offset])
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


def _has_dim(call: cst.Call, offset: int) -> bool:
    if keyword(call, "dim") is not None or keyword(call, "axis") is not None:
        return True
    return len([a for a in call.args if a.keyword is None]) > offset


def _keepdim(call: cst.Call) -> bool:
    given = keyword(call, "keepdim") or keyword(call, "keepdims")
    return given is not None and literal_value(given.value) is True


def _reshape_dims(call: cst.Call, offset: int) -> list | None:
    """``view(-1, 1)`` / ``reshape((-1, 1))`` / ``np.reshape(x, (-1, 1))``: the sizes."""
    shape = keyword(call, "shape") or keyword(call, "newshape")
    positional = [a for a in call.args if a.keyword is None][offset:]
    if shape is not None:
        dims = [shape.value]
    else:
        if any(a.star for a in positional) or not positional:
            return None
        dims = [a.value for a in positional]
    if len(dims) == 1 and isinstance(dims[0], (cst.Tuple, cst.List)):
        if any(isinstance(e, cst.StarredElement) for e in dims[0].elements):
            return None
        dims = [e.value for e in dims[0].elements]
    if len(dims) == 1 and literal_value(dims[0]) != -1:
        return None  # view(n) or view(shape): a tuple in disguise is possible
    return dims


def _is_full_slice(part: cst.BaseSlice) -> bool:
    return (
        isinstance(part, cst.Slice)
        and part.lower is None
        and part.upper is None
        and part.step is None
    )


def _is_ellipsis(part: cst.BaseSlice) -> bool:
    return isinstance(part, cst.Index) and isinstance(part.value, cst.Ellipsis)


def _is_newaxis(expr: cst.CSTNode, facts) -> bool:
    return (isinstance(expr, cst.Name) and expr.value == "None") or facts.qualname(expr) in (
        "numpy.newaxis",
        "torch.newaxis",
    )


def _single_slice(part: cst.Slice) -> bool:
    """``-1:``, ``0:1``, ``3:4``: a slice that keeps exactly one position."""
    if part.step is not None:
        return False
    lower = literal_value(part.lower) if part.lower is not None else 0
    upper = literal_value(part.upper) if part.upper is not None else None
    if upper is None:
        return lower == -1
    return (
        isinstance(lower, int)
        and isinstance(upper, int)
        and upper - lower == 1
        and (lower >= 0 or upper < 0)
    )


def _is_mask(expr: cst.CSTNode) -> bool:
    if isinstance(expr, cst.Comparison):
        return True
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.BitInvert):
        return True
    return isinstance(expr, cst.BinaryOperation) and isinstance(
        expr.operator, (cst.BitAnd, cst.BitOr)
    )


def _column_key(key: cst.CSTNode, accessor: str) -> int | None:
    """How a column selector picks: 0 one column as a Series (``"y"``, or ``-1`` under
    ``iloc``), 1 a one-column frame (``["y"]``), 2 several; None when not a selector."""
    if accessor == "iloc":
        value = literal_value(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return 0
    elif isinstance(key, cst.SimpleString):
        return 0
    if isinstance(key, cst.List) and key.elements:
        literal = (cst.SimpleString,) if accessor == "loc" else (cst.Integer, cst.UnaryOperation)
        if all(isinstance(e.value, literal) for e in key.elements):
            return 1 if len(key.elements) == 1 else 2
    return None


def _uses_only(expr: cst.CSTNode, name: str) -> bool:
    """``idx``, ``idx + 1`` or ``i + self.window``: one position derived from the
    ``__getitem__`` index."""
    if isinstance(expr, cst.Name):
        return expr.value == name
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Add, cst.Subtract)):
        offset = (cst.Name, cst.Attribute, cst.Integer)
        left, right = expr.left, expr.right
        return (_uses_only(left, name) and isinstance(right, offset)) or (
            isinstance(left, offset) and _uses_only(right, name)
        )
    return False
