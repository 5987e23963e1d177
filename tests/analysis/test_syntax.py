import libcst as cst

from dllint.analysis.syntax import builtin_call, method_self, syntax_of


def test_lists_are_known_by_how_they_are_built(snippet):
    s = snippet(
        """
        import os, glob
        import numpy as np
        a = [1, 2, 3]
        b = list(range(10))
        c = sorted(os.listdir("x"))
        d = glob.glob("*.png")
        e = "a b".split()
        f = np.arange(10)
        g = unknown()
        h = a if flag else f
        use(a, b, c, d, e, f, g, h)
        """
    )
    syntax = syntax_of(s.facts)
    known = {name: syntax.is_list(s.find(name, cst.Name, index=1)) for name in "abcdefgh"}
    assert known == dict(a=True, b=True, c=True, d=True, e=True, f=False, g=False, h=False)


def test_shadowed_builtin_is_not_the_builtin(snippet):
    s = snippet(
        """
        def f(y):
            return list(y)
        def g(y, list=tuple):
            return list(y)
        """
    )
    first, second = s.facts.calls()
    assert builtin_call(s.facts, first, ("list",)) == "list"
    assert builtin_call(s.facts, second, ("list",)) is None


def test_generators_and_framework_imports(snippet):
    s = snippet(
        """
        import random
        import numpy as np
        from torch import nn
        r = random.Random(0)
        g = np.random.default_rng(1)
        o = other()
        r; g; o
        """
    )
    syntax = syntax_of(s.facts)
    assert syntax.imports_framework
    assert syntax.generator_kind(s.find("r", cst.Name, 1)) == "python"
    assert syntax.generator_kind(s.find("g", cst.Name, 1)) == "numpy"
    assert syntax.generator_kind(s.find("o", cst.Name, 1)) is None


def test_data_attributes_and_method_self(snippet):
    s = snippet(
        """
        class A:
            train = "path"
            @property
            def step(self):
                return 1
            def run(self):
                self.flag = True
            @staticmethod
            def helper(x):
                return x
        def forward(self):
            pass
        """
    )
    assert {"train", "step", "flag"} <= syntax_of(s.facts).data_attributes
    assert method_self(s.facts, _fn(s, "run")) == "self"
    assert method_self(s.facts, _fn(s, "helper")) is None
    assert method_self(s.facts, _fn(s, "forward")) is None
    assert not syntax_of(s.facts).imports_framework


def _fn(s, name):
    return next(f for f in s.facts.tree.nodes(cst.FunctionDef) if f.name.value == name)
