"""The precondition that decides, after the token test and before libcst, which rules
could fire on a file.

The token test (``dllint.prefilter``) reads the raw text, so a word in a docstring, a
comment or a longer name (``logging`` for ``log``) lets a file through; on the
installed torch package it let 99% of the lines reach libcst. Here CPython's own
parser (about seven times faster than libcst) reads the file once and one walk over
its tree gives a ``Sketch``: the words of the code (the inside lines of multi-line
strings and whole-line comments left out), the names called as methods and as
functions, the attributes named alone as a statement, and the classes that may
derive from ``nn.Module``. Each rule's condition in ``CONDITIONS`` asks the sketch
for something the rule's own check cannot do without; a file where no selected
rule's condition holds is not parsed by libcst at all, and a rule whose condition
fails does not run.

A condition must hold on *every* file where its rule can fire: a wrong one silently
hides findings. So each is written from the rule's code (the calls it matches, the
names it resolves), errs wide (any call named ``log``, not only ``torch.log``), and
``tests/test_precheck.py`` checks every fixture with and without this step. A rule
with no entry always runs. A name a rule resolves through imports (``from torch
import log as ln``) still has its last word in the file (the import names it), so
word conditions survive aliases.

Kept free of libcst, like the token test, except where a condition reads the names an
analysis module knows (imported when first needed, so the two cannot drift apart).
"""

from __future__ import annotations

import ast
import gc
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cached_property

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Set DLLINT_NO_PRECHECK=1 to parse every file the token test lets through, as
# before this step (the equality tests and scripts compare the two).
DISABLED = bool(os.environ.get("DLLINT_NO_PRECHECK"))
MODULE_WORDS = frozenset({"Module", "LightningModule"})  # the bases of classes.MODULE_BASES


class Sketch:
    """What CPython's tree of a file says, in the few sets the conditions ask about."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.tree = tree
        self.attribute_calls: set[str] = set()  # ``X`` of ``anything.X(...)``
        self.name_calls: set[str] = set()  # ``X`` of ``X(...)``
        self.call_counts: Counter[str] = Counter()  # how often each of those is called
        self.undimmed_calls: set[str] = set()  # called with <= 1 positional, no dim, no *
        self.functions: set[str] = set()  # names of the functions defined
        self.has_loop = False
        self.bare_attributes: set[str] = set()  # ``X`` of a statement ``anything.X``
        self.divides_by_call = False  # ``a / f(...)``
        self._classes: list[ast.ClassDef] = []
        self._aliases: dict[str, set[str]] = {}  # local name -> last words of what it names
        strings: list[tuple[int, int, bool]] = []  # first, last line, code inside?
        in_fstring: set[int] = set()
        for node in _nodes(tree):
            kind = type(node)
            if kind is ast.Call:
                func = node.func
                if type(func) is ast.Attribute:
                    name = func.attr
                    self.attribute_calls.add(name)
                elif type(func) is ast.Name:
                    name = func.id
                    self.name_calls.add(name)
                else:
                    continue
                self.call_counts[name] += 1
                if len(node.args) <= 1 and _no_dim(node):
                    self.undimmed_calls.add(name)
            elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
                self.functions.add(node.name)
            elif kind is ast.For or kind is ast.While or kind is ast.AsyncFor:
                self.has_loop = True
            elif kind is ast.Constant:
                if node.end_lineno > node.lineno and id(node) not in in_fstring:
                    strings.append((node.lineno, node.end_lineno, type(node.value) is not str))
            elif kind is ast.JoinedStr:  # its parts' positions may be the whole f-string's
                in_fstring.update(id(value) for value in node.values)
                if node.end_lineno > node.lineno:
                    strings.append((node.lineno, node.end_lineno, True))
            elif kind is ast.Expr:
                if type(node.value) is ast.Attribute:
                    self.bare_attributes.add(node.value.attr)
            elif kind is ast.BinOp:
                if type(node.op) is ast.Div and type(node.right) is ast.Call:
                    self.divides_by_call = True
            elif kind is ast.ClassDef:
                self._classes.append(node)
            elif kind is ast.ImportFrom or kind is ast.Import:
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self._alias(local, alias.name.rsplit(".", 1)[-1])
            elif kind is ast.Assign:
                for target in node.targets:
                    if type(target) is ast.Name:
                        self._alias(target.id, _last_word(node.value))
            elif kind is ast.AnnAssign or kind is ast.NamedExpr:
                if type(node.target) is ast.Name and node.value is not None:
                    self._alias(node.target.id, _last_word(node.value))
        self.words = set(WORD.findall(_code_text(text, strings)))

    def _alias(self, local: str, word: str | None) -> None:
        if word is not None:
            self._aliases.setdefault(local, set()).add(word)

    def has(self, *words: str) -> bool:
        """Does the code use one of ``words`` (a name, an attribute, an import)?"""
        return any(word in self.words for word in words)

    def calls(self, *names: str) -> bool:
        """Is something named one of ``names`` called (``x.name(...)`` or ``name(...)``)?"""
        return any(n in self.attribute_calls or n in self.name_calls for n in names)

    def standing_for(self, names: Iterable[str]) -> set[str]:
        """``names`` and every local name imported or assigned from one of them
        (``from torch import log as ln``, ``sm = F.softmax``), transitively."""
        standing = set(names)
        changed = True
        while changed:
            changed = False
            for local, words in self._aliases.items():
                if local not in standing and words & standing:
                    standing.add(local)
                    changed = True
        return standing

    def calls_any(self, names: Iterable[str], among: set[str] | None = None) -> bool:
        """Is one of ``names``, or a local alias of one, called? ``among``: only the
        calls in that set (``undimmed_calls``)."""
        called = (self.attribute_calls | self.name_calls) if among is None else among
        return not called.isdisjoint(self.standing_for(names))

    def count_calls(self, names: Iterable[str]) -> int:
        """How many calls name one of ``names`` or a local alias of one."""
        return sum(self.call_counts[name] for name in self.standing_for(names))

    @cached_property
    def module_classes(self) -> list[ast.ClassDef]:
        """The classes that may derive from ``nn.Module`` or a LightningModule: through
        a base spelled ``Module``/``LightningModule``, a name imported or assigned from
        one, or another such class of the file. Wide on purpose (scopes ignored)."""
        standing = set(MODULE_WORDS)
        changed = True
        while changed:
            changed = False
            for local, words in self._aliases.items():
                if local not in standing and words & standing:
                    standing.add(local)
                    changed = True
            for node in self._classes:
                if node.name not in standing and _derives(node, standing):
                    standing.add(node.name)
                    changed = True
        return [node for node in self._classes if _derives(node, standing)]


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAF_FIELDS = frozenset({"ctx", "op", "type_comment", "id", "attr", "arg", "level", "kind"})


def _nodes(tree: ast.AST):
    """Every node of ``tree``, each before its children (``ast.walk``, about twice as
    fast: the fields that hold children are looked up once per node type)."""
    stack = [tree]
    pop, push, AST = stack.pop, stack.append, ast.AST
    while stack:
        node = pop()
        yield node
        kind = type(node)
        fields = _CHILD_FIELDS.get(kind)
        if fields is None:
            fields = _CHILD_FIELDS[kind] = tuple(
                name for name in kind._fields if name not in _LEAF_FIELDS
            )
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, AST):
                        push(item)
            elif isinstance(value, AST):
                push(value)


def _no_dim(call: ast.Call) -> bool:
    """No ``dim=``, no ``*args`` and no ``**kwargs`` (which may carry one)."""
    if any(type(arg) is ast.Starred for arg in call.args):
        return False
    return all(k.arg is not None and k.arg != "dim" for k in call.keywords)


def _last_word(node: ast.AST) -> str | None:
    if type(node) is ast.Name:
        return node.id
    if type(node) is ast.Attribute:
        return node.attr
    return None


def _derives(node: ast.ClassDef, standing: set[str]) -> bool:
    return any(_last_word(base) in standing for base in node.bases)


def _code_text(text: str, strings: list[tuple[int, int, bool]]) -> str:
    """``text`` without its comment lines and the inside lines of its multi-line
    strings. A string's first and last lines may hold code and stay, and so do all
    lines of an f-string (code in braces) and any line of a string that starts
    with ``#``."""
    if "\r" in text:  # line numbers count \r\n and a lone \r as one line end each
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    kept: set[int] = set()  # 0-based lines that belong to a multi-line string
    for first, last, code_inside in strings:
        kept.update(range(first - 1, last))
        if not code_inside:
            for index in range(first, last - 1):
                lines[index] = ""
    for index, line in enumerate(lines):
        if line.lstrip().startswith("#") and index not in kept:
            lines[index] = ""
    return "\n".join(lines)


def sketch(text: str) -> Sketch | None:
    """The file's sketch; None when CPython cannot parse it (libcst then decides)."""
    collecting = gc.isenabled()
    gc.disable()  # an ast holds no cycles; collecting while it is built costs a third
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes: reported once, by the parse
            tree = ast.parse(text)
        return Sketch(text, tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    finally:
        if collecting:
            gc.enable()


# -- the conditions -------------------------------------------------------------------
# Each mirrors what its rule's check starts from; see the rule's module.


def _backward_called(s: Sketch) -> bool:
    # ``Training.is_backward``: a call of an attribute named ``backward``; DL401, DL402,
    # DL403, DL405, DL406 and DL407 look only at training loops or backward calls.
    return "backward" in s.attribute_calls


def _trains_anywhere(s: Sketch) -> bool:
    # DL502: ``Modes.trains_anywhere``: a call named backward/manual_backward, or an
    # attribute call ``step``.
    return s.calls("backward", "manual_backward") or "step" in s.attribute_calls


def _method_not_called(s: Sketch) -> bool:
    # DL503: an expression statement that is an attribute named like a training method.
    return bool(s.bare_attributes & {"eval", "train", "zero_grad", "step", "backward"})


def _module_class(s: Sketch) -> bool:
    # DL202: ``Modules.plain_containers`` looks only at classes that are modules.
    return bool(s.module_classes)


def _log_of_softmax(s: Sketch) -> bool:
    # DL303: a call of ``torch.log``/``.log()`` on a direct softmax/sigmoid/expit call
    # (or on a name holding one), or ``exp(x) / <sum call>``.
    log_of = s.calls_any(("log",)) and s.calls_any(("softmax", "sigmoid", "expit"))
    handwritten = s.divides_by_call and s.calls_any(("exp",)) and s.calls_any(("sum",))
    return log_of or handwritten


def _shuffles_twice(s: Sketch) -> bool:
    # DL101 pairs two random reorderings; ``Data.shuffles`` looks only at calls named
    # shuffle/permutation/randperm/sample (or imported under another name).
    return s.count_calls(("shuffle", "permutation", "randperm", "sample")) >= 2


def _shuffle_called(s: Sketch) -> bool:
    # DL106: ``random.shuffle``/``np.random.shuffle`` or a generator's ``.shuffle``.
    return s.calls_any(("shuffle",))


def _softmax_without_dim(s: Sketch) -> bool:
    # DL304: a softmax/log_softmax/softmin function or module called with no ``dim``
    # (at most the input positionally, no ``*args``/``**kwargs``).
    names = ("softmax", "log_softmax", "softmin", "Softmax", "LogSoftmax", "Softmin")
    return s.calls_any(names, among=s.undimmed_calls)


def _dropout_in_forward(s: Sketch) -> bool:
    # DL203: ``F.dropout``-like calls inside a method named ``forward``.
    names = (
        "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
        "feature_alpha_dropout",
    )  # fmt: skip
    return "forward" in s.functions and s.calls_any(names)


def _scheduler_in_loop(s: Sketch) -> bool:
    # DL404: an optimizer ``.step(...)`` and a scheduler ``.step()`` in one loop.
    return s.has_loop and "step" in s.attribute_calls


ACTIVATIONS = (  # what ``activations.activation_of`` can find a softmax or sigmoid in
    "softmax", "Softmax", "Softmax2d", "log_softmax", "LogSoftmax", "sigmoid", "Sigmoid",
    "expit", "logsigmoid", "LogSigmoid",
)  # fmt: skip
LOGIT_LOSSES = ("CrossEntropyLoss", "cross_entropy", "BCEWithLogitsLoss",
                "binary_cross_entropy_with_logits")  # fmt: skip
PROBABILITY_LOSSES = ("NLLLoss", "nll_loss", "BCELoss", "binary_cross_entropy")


# A loss call (``dllint.analysis.losses``) calls the loss function, or an instance
# of the loss class, which was constructed by a call; an activation is found in a
# call too (a function, a method, a layer's construction).


def _probabilities_into_logit_loss(s: Sketch) -> bool:
    # DL301: a cross-entropy/BCE-with-logits loss call fed a softmax or sigmoid.
    return s.calls_any(LOGIT_LOSSES) and s.calls_any(ACTIVATIONS)


def _logits_into_probability_loss(s: Sketch) -> bool:
    # DL302: an NLL/BCE loss (raw logits) or a logit loss (ReLU output) is called.
    return s.calls_any(PROBABILITY_LOSSES + LOGIT_LOSSES)


ELEMENTWISE_LOSSES = (
    "MSELoss", "mse_loss", "L1Loss", "l1_loss", "SmoothL1Loss", "smooth_l1_loss", "HuberLoss",
    "huber_loss", "BCELoss", "binary_cross_entropy", "BCEWithLogitsLoss",
    "binary_cross_entropy_with_logits",
)  # fmt: skip


def _broadcast_prone(s: Sketch) -> bool:
    # DL306: an elementwise loss call, or arithmetic on a model output, whose shape
    # only comes from an ``nn.Linear``/``nn.LazyLinear`` construction
    # (``Shapes._layer_output``).
    return s.calls_any(ELEMENTWISE_LOSSES) or s.calls_any(("Linear", "LazyLinear"))


def _random_transform(s: Sketch) -> bool:
    # DL105: a random torchvision or albumentations transform is constructed; a step's
    # qualified name starts with the library, which an import names.
    if not s.has("torchvision", "albumentations"):
        return False
    from dllint.analysis.transforms import A_FLIPS, A_RANDOM, TV_RANDOM  # the same names

    return s.calls_any(TV_RANDOM | A_FLIPS | A_RANDOM)


def _holds_mode_layers(s: Sketch) -> bool:
    # DL501 and DL504 act only on models that hold dropout or batch norm
    # (``Modes.layers``, ``ModeFlow.certain_mode_layers``): built by a call of such a
    # layer or functional op, or a torchvision, timm or transformers model.
    if s.has("torchvision", "timm", "transformers"):
        return True
    from dllint.analysis import modes  # the same names

    layers = modes.DROPOUT_LAYERS | modes.BATCHNORM_LAYERS | modes.INSTANCENORM_LAYERS
    return s.calls_any(layers | set(modes.FUNCTIONAL_MODE_OPS))


Condition = Callable[[Sketch], bool]
CONDITIONS: dict[str, Condition] = {
    "DL101": _shuffles_twice,
    "DL105": _random_transform,
    "DL106": _shuffle_called,
    "DL203": _dropout_in_forward,
    "DL301": _probabilities_into_logit_loss,
    "DL302": _logits_into_probability_loss,
    "DL304": _softmax_without_dim,
    "DL306": _broadcast_prone,
    "DL404": _scheduler_in_loop,
    "DL202": _module_class,
    "DL303": _log_of_softmax,
    "DL401": _backward_called,
    "DL402": _backward_called,
    "DL403": _backward_called,
    "DL405": _backward_called,
    "DL406": _backward_called,
    "DL407": _backward_called,
    "DL502": _trains_anywhere,
    "DL501": _holds_mode_layers,
    "DL503": _method_not_called,
    "DL504": _holds_mode_layers,
}
NO_FINDINGS_OF_ITS_OWN = frozenset({"DL003"})  # the engine reports it after the noqa step


def could_fire(rule, s: Sketch) -> bool:
    if rule.code in NO_FINDINGS_OF_ITS_OWN:
        return False
    condition = CONDITIONS.get(rule.code)
    return condition is None or bool(condition(s))


def narrow(text: str, rules: Iterable) -> tuple[list, ast.Module] | None:
    """The rules among ``rules`` that could fire on ``text``, and CPython's tree of
    it; None when CPython cannot parse it (then every rule runs and libcst reports
    what is wrong) or with ``DISABLED``."""
    if DISABLED:
        return None
    found = sketch(text)
    if found is None:
        return None
    return [rule for rule in rules if could_fire(rule, found)], found.tree
