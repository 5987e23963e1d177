"""Small syntactic facts shared by the wave-2 syntactic rules (DL106, DL203, DL304, DL503).

- ``syntax_of(facts)``: the module's ``Syntax`` summary, computed once per module:
  whether it imports a deep-learning framework, which attribute names its own classes
  define as data (properties, class attributes, ``self.x = ...``), and which values are
  known to be Python lists.
- ``builtin_call``: a call of an unshadowed builtin such as ``list(...)``.
- ``call_arguments_known``: no ``*args``/``**kwargs`` hides what a call passes.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import first_param
from dllint.analysis.tree import dotted

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

# Import roots that make a file deep-learning training code.
FRAMEWORK_ROOTS = (
    "torch",
    "torchvision",
    "torchaudio",
    "torchtext",
    "pytorch_lightning",
    "lightning",
    "accelerate",
    "transformers",
    "timm",
    "ignite",
    "deepspeed",
)

# Calls whose result is a new Python list.
LIST_BUILTINS = ("list", "sorted")
LIST_FUNCTIONS = {
    "os.listdir",
    "glob.glob",
    "random.sample",
    "random.choices",
}
LIST_METHODS = {"split", "rsplit", "splitlines", "readlines", "tolist"}
# Random generators, known by how they are constructed.
PYTHON_GENERATORS = {"random.Random", "random.SystemRandom"}
NUMPY_GENERATORS = {
    "numpy.random.default_rng",
    "numpy.random.RandomState",
    "numpy.random.Generator",
    "numpy.random.mtrand.RandomState",
}


def builtin_call(facts: ModuleFacts, node: cst.CSTNode, names: tuple[str, ...]) -> str | None:
    """The builtin's name when ``node`` calls one of ``names`` and nothing shadows it."""
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Name):
        return None
    name = node.func.value
    if name not in names or facts.names.binding_at(name, node.func) is not None:
        return None
    return name


def call_arguments_known(call: cst.Call) -> bool:
    """True when no ``*args`` or ``**kwargs`` hides which arguments a call passes."""
    return not any(arg.star for arg in call.args)


def is_property_decorator(decorator: cst.Decorator) -> bool:
    """``@property``, ``@functools.cached_property``, ``@x.setter``, ``@abstractproperty``."""
    target = decorator.decorator
    if isinstance(target, cst.Call):
        target = target.func
    name = dotted(target) or ""
    last = name.rsplit(".", 1)[-1]
    return "property" in last or last in ("setter", "getter", "deleter")


class Syntax:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts

    @cached_property
    def imports_framework(self) -> bool:
        """Does the module import torch, Lightning or a library built on them?"""
        for scope in self.facts.names.scopes.values():
            for bindings in scope.by_name.values():
                for binding in bindings:
                    if binding.kind == "import" and binding.qualname:
                        if binding.qualname.split(".")[0] in FRAMEWORK_ROOTS:
                            return True
        return False

    @cached_property
    def data_attributes(self) -> set[str]:
        """Names that the module's own classes define as data rather than methods:
        properties, class-body assignments and ``self.name = ...`` in methods."""
        found: set[str] = set()
        for info in self.facts.classes.by_node.values():
            found.update(info.attributes)
            body = info.node.body.body if isinstance(info.node.body, cst.IndentedBlock) else ()
            for statement in body:
                if isinstance(statement, cst.FunctionDef):
                    if any(is_property_decorator(d) for d in statement.decorators):
                        found.add(statement.name.value)
                elif isinstance(statement, cst.SimpleStatementLine):
                    for small in statement.body:
                        targets = []
                        if isinstance(small, cst.Assign):
                            targets = [t.target for t in small.targets]
                        elif isinstance(small, cst.AnnAssign):
                            targets = [small.target]
                        for target in targets:
                            if isinstance(target, cst.Name):
                                found.add(target.value)
        # ``obj.step = 3`` anywhere makes ``step`` data for some object of this file.
        for assign in self.facts.tree.nodes(cst.Assign):
            for target in assign.targets:
                if isinstance(target.target, cst.Attribute):
                    found.add(target.target.attr.value)
        return found

    # -- lists ------------------------------------------------------------------------
    def makes_list(self, node: cst.CSTNode) -> bool:
        """Does this expression (itself, not through names) build a new Python list?"""
        facts = self.facts
        if isinstance(node, (cst.List, cst.ListComp)):
            return True
        if not isinstance(node, cst.Call):
            return False
        if builtin_call(facts, node, LIST_BUILTINS):
            return True
        if facts.qualname(node.func) in LIST_FUNCTIONS:
            return True
        func = node.func
        return (
            isinstance(func, cst.Attribute)
            and func.attr.value in LIST_METHODS
            and facts.qualname(func) is None
        )

    def is_list(self, expr: cst.CSTNode) -> bool:
        """Is ``expr`` known to hold a Python list (every origin builds one)?"""
        origins = self.facts.values.origins(expr)
        return bool(origins) and all(
            not leaf.path and self.makes_list(leaf.node) for leaf in origins
        )

    # -- random generators --------------------------------------------------------------
    def generator_kind(self, expr: cst.CSTNode) -> str | None:
        """ "python" or "numpy" when ``expr`` is known to be a ``random.Random`` or a
        numpy generator (constructed here, followed through names); else None."""
        kinds = set()
        origins = self.facts.values.origins(expr)
        for leaf in origins:
            if leaf.path or not isinstance(leaf.node, cst.Call):
                return None
            qualname = self.facts.qualname(leaf.node.func)
            if qualname in PYTHON_GENERATORS:
                kinds.add("python")
            elif qualname in NUMPY_GENERATORS:
                kinds.add("numpy")
            else:
                return None
        return kinds.pop() if len(kinds) == 1 else None


def syntax_of(facts: ModuleFacts) -> Syntax:
    """The module's ``Syntax`` summary, computed once per module."""
    cached = facts.__dict__.get("_syntax")
    if cached is None:
        cached = facts.__dict__["_syntax"] = Syntax(facts)
    return cached


def method_self(facts: ModuleFacts, function: cst.FunctionDef) -> str | None:
    """The first parameter of a method defined directly in a class body, else None."""
    parent = facts.tree.parent.get(function)
    grand = facts.tree.parent.get(parent) if parent is not None else None
    if not isinstance(grand, cst.ClassDef):
        return None
    params = [*function.params.posonly_params, *function.params.params]
    if not params or params[0].star not in ("", cst.MaybeSentinel.DEFAULT):
        return None
    decorators = {dotted(d.decorator) for d in function.decorators}
    if decorators & {"staticmethod", "classmethod"}:
        return None
    return first_param(function)
