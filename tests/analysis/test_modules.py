from dllint.analysis.modules import modules_of

HEADER = """
import torch
import torch.nn as nn
"""


def attributes(s):
    return sorted(c.attribute for c in modules_of(s.facts).plain_containers())


def test_literal_fill_and_helper_containers(snippet):
    s = snippet(
        HEADER
        + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = [nn.Linear(2, 2)]
        self.b = []
        for _ in range(2):
            self.b.append(nn.Conv2d(1, 1, 1))
        self.c = {"x": nn.Dropout(0.1)}
        self.d = self._make()

    def _make(self):
        layers = []
        layers += [nn.Linear(2, 2)]
        return layers
"""
    )
    found = {c.attribute: c for c in modules_of(s.facts).plain_containers()}
    assert sorted(found) == ["a", "b", "c", "d"]
    assert found["c"].kind == "dict" and not found["c"].stateful
    assert found["a"].stateful


def test_registered_converted_or_stateless_are_left_alone(snippet):
    s = snippet(
        HEADER
        + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = [nn.Linear(2, 2)]
        self.a = nn.ModuleList(self.a)
        self.b = [nn.ReLU()]
        self.fc = nn.Linear(2, 2)
        self.c = [self.fc]
        self.d = [nn.Linear(2, 2)]
        self.seq = nn.Sequential(*self.d)
        self.e = []
        for i in range(2):
            layer = nn.Linear(2, 2)
            setattr(self, f"l{i}", layer)
            self.e.append(layer)


class Config:
    def __init__(self):
        self.layers = [nn.Linear(2, 2)]
"""
    )
    assert attributes(s) == []


def test_manual_handling_outside_the_class(snippet):
    s = snippet(
        HEADER
        + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.experts = [nn.Linear(2, 2) for _ in range(3)]

model = Net()
params = [p for e in model.experts for p in e.parameters()]
"""
    )
    assert attributes(s) == []
