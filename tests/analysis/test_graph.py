"""graph.py: live, cut, none and unknown values, and losses that hold a graph."""

import libcst as cst
import pytest

from dllint.analysis.graph import CUT, LIVE, NONE, UNKNOWN, graph_of

SOURCE = """
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from other import mystery

model = nn.Linear(4, 2)
act = nn.ReLU()
crit = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    out = model(x)
    a = F.cross_entropy(out, y)
    b = F.cross_entropy(out.detach(), y)
    c = torch.tensor(a.item(), requires_grad=True)
    d = np.mean(out.detach().numpy())
    e = mystery(x)
    f = act(out.data)
    g = crit(out, y) + crit(out.detach(), y)
    h = torch.zeros(3)
    with torch.no_grad():
        i = model(x)
    j = out.detach() * e
    k = float(a)
    a.backward()
"""


@pytest.mark.parametrize(
    "name, word",
    [
        ("a", LIVE),
        ("b", CUT),
        ("c", CUT),
        ("d", CUT),
        ("e", UNKNOWN),
        ("f", CUT),
        ("g", LIVE),
        ("h", NONE),
        ("i", CUT),
        ("j", UNKNOWN),
        ("k", CUT),
        ("y", NONE),
    ],
)
def test_status(snippet, name, word):
    s = snippet(SOURCE)
    uses = [n for n in s.facts.tree.nodes(cst.Name) if n.value == name]
    use = uses[-1]
    assert graph_of(s.facts).status(use).word == word


@pytest.mark.parametrize(
    "text, expected",
    [("a", True), ("a * 2", True), ("a.item()", False), ("a.detach()", False),
     ("b", False), ("e", None), ("k", False), ("a.cpu()", True)],
)  # fmt: skip
def test_graph_loss(snippet, text, expected):
    s = snippet(SOURCE + f"probe = {text}\n")
    assign = s.facts.tree.nodes(cst.Assign)[-1]
    assert graph_of(s.facts).graph_loss(assign.value) is expected


def test_backward_tensor(snippet):
    s = snippet(
        "scaler.scale(l1).backward()\naccelerator.backward(l2)\nl3.backward()\n"
        "import torch\ntorch.autograd.backward(l4)\n"
    )
    graph = graph_of(s.facts)
    calls = [c for c in s.facts.calls() if s.code(c).endswith(")") and "backward" in s.code(c)]
    found = [s.code(graph.backward_tensor(c)) for c in calls if graph.backward_tensor(c)]
    assert found == ["l1", "l2", "l3", "l4"]
