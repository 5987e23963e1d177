"""raw_logits_of / activation_call (activations.py) and the softmax helpers (softmax.py)."""

import textwrap

import libcst as cst
import pytest

from dllint.analysis.activations import activation_call, raw_logits_of
from dllint.analysis.softmax import functional_alias, handwritten_softmax, only_use

HEADER = """
import torch
import torch.nn as nn
import torch.nn.functional as F
"""

NET = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)
"""


def logits(snippet, source, text="out", index=0):
    s = snippet(HEADER + textwrap.dedent(source))
    found = raw_logits_of(s.facts, s.find(text, cst.BaseExpression, index))
    return s.code(found.sources[0]) if found else None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (NET + "out = Net()(x)\nuse(out)\n", "nn.Linear(4, 3)"),
        (NET + "m = Net().to('cuda')\nout = m(x).squeeze(1)\nuse(out)\n", "nn.Linear(4, 3)"),
        ("s = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))\nout = s(x)\nuse(out)\n",
         "nn.Linear(8, 1)"),
        ("out = F.linear(x, w, b)\nuse(out)\n", "F.linear(x, w, b)"),
        ("head = nn.Conv2d(3, 2, 1)\nout = head(x)\nuse(out)\n", "nn.Conv2d(3, 2, 1)"),
        # not raw logits
        ("s = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())\nout = s(x)\nuse(out)\n", None),
        ("s = nn.Sequential(nn.Linear(4, 1))\nout = s(x).clamp(0, 1)\nuse(out)\n", None),
        ("s = nn.Sequential(nn.Linear(4, 1))\ns.append(nn.Sigmoid())\nout = s(x)\nuse(out)\n",
         None),
        (NET + "m = Net()\nm.fc = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(1))\n"
         "out = m(x)\nuse(out)\n", None),
        (NET + "m = Net()\nm.register_forward_hook(hook)\nout = m(x)\nuse(out)\n", None),
        ("from models import Net\nout = Net()(x)\nuse(out)\n", None),
        ("out = F.log_softmax(nn.Linear(4, 3)(x), dim=1)\nuse(out)\n", None),
    ],
)  # fmt: skip
def test_raw_logits(snippet, source, expected):
    assert logits(snippet, source, "out", 1) == expected


@pytest.mark.parametrize(
    ("expr", "kind", "form", "simple"),
    [
        ("F.softmax(z, dim=1)", "softmax", "function", True),
        ("torch.softmax(z, 1)", "softmax", "function", True),
        ("F.softmax(z, dim=1, dtype=torch.float64)", "softmax", "function", False),
        ("z.softmax(-1)", "softmax", "method", True),
        ("torch.sigmoid(z)", "sigmoid", "function", True),
        ("z.sigmoid()", "sigmoid", "method", True),
        ("z.tanh()", None, None, None),
        ("softmax(z, 1)", None, None, None),
    ],
)
def test_activation_call(snippet, expr, kind, form, simple):
    s = snippet(HEADER + f"def softmax(a, b):\n    return a\nout = {expr}\n")
    found = activation_call(s.facts, s.find(expr, cst.Call))
    if kind is None:
        assert found is None
    else:
        assert (found.kind, found.form, found.simple) == (kind, form, simple)
        assert s.code(found.input) == "z"


def test_functional_alias(snippet):
    s = snippet("import torch\nfrom torch.nn import functional as fn\nx = torch.log(y)\n"
                "def f(fn):\n    return torch.log(y)\n")  # fmt: skip
    first, second = (c for c in s.facts.calls() if s.code(c) == "torch.log(y)")
    assert functional_alias(s.facts, first) == "fn"
    assert functional_alias(s.facts, second) is None
    plain = snippet("import torch\nx = torch.log(y)\n")
    assert functional_alias(plain.facts, plain.find("torch.log(y)", cst.Call)) is None


def test_only_use(snippet):
    s = snippet(
        HEADER
        + "def f(z):\n    p = F.softmax(z, 1)\n    return torch.log(p)\n"
        + "def g(z):\n    q = F.softmax(z, 1)\n    print(q.max())\n    return torch.log(q)\n"
    )
    p = s.find("p", cst.Name, 1)
    q = s.find("q", cst.Name, 2)
    assert s.code(only_use(s.facts, p)) == "F.softmax(z, 1)"
    assert only_use(s.facts, q) is None


def test_handwritten_softmax(snippet):
    s = snippet(HEADER + "a = torch.exp(x) / torch.exp(x).sum(1, keepdim=True)\n"
                "b = torch.exp(x - m) / torch.exp(x - m).sum(1, keepdim=True)\n"
                "c = torch.exp(x) / torch.exp(y).sum()\n"
                "d = torch.exp(x) / torch.sum(torch.exp(x), dim=-1, keepdim=True)\n")  # fmt: skip
    found = [
        (s.code(x), s.code(dim) if dim else None) for _, x, dim in handwritten_softmax(s.facts)
    ]
    assert found == [("x", "1"), ("x", "-1")]
