"""What containers hold: Sequential/ModuleList constructions and the layer lists behind them."""

import libcst as cst

from dllint.analysis.containers import END

HEADER = """
import torch.nn as nn
import torchvision
from collections import OrderedDict
"""


def held(s, text="nn.Sequential(*layers)", index=0):
    """What the container construction written ``text`` holds, as element source."""
    call = s.find(text, cst.Call, index)
    found = s.facts.values.containers.of_module(call)
    if found is None:
        return None
    ordered = [s.code(n) for n in found.ordered] if found.ordered is not None else None
    last = s.code(found.last) if found.last is not None else None
    return [s.code(n) for n in found.members], ordered, last


def test_appends_in_a_loop_then_an_unconditional_head(snippet):
    s = snippet(
        HEADER
        + """
def build(d, n, depth):
    layers = []
    for _ in range(depth):
        layers.append(nn.Linear(d, d))
        layers.append(nn.ReLU())
    layers.append(nn.Linear(d, n))
    layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers)
"""
    )
    members, ordered, last = held(s)
    assert members == ["nn.Linear(d, d)", "nn.ReLU()", "nn.Linear(d, n)", "nn.Softmax(dim=1)"]
    assert ordered is None  # the loop may run any number of times
    assert last == "nn.Softmax(dim=1)"


def test_a_conditional_final_append_leaves_the_last_layer_unknown(snippet):
    s = snippet(
        HEADER
        + """
def build(d, n, probs):
    layers = [nn.Linear(d, n)]
    if probs:
        layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers)
"""
    )
    members, ordered, last = held(s)
    assert "nn.Softmax(dim=1)" in members
    assert ordered is None and last is None


def test_in_place_changes_in_order(snippet):
    s = snippet(
        HEADER
        + """
layers = [nn.Linear(4, 8), nn.ReLU()]
layers += [nn.Linear(8, 2), nn.Sigmoid()]
layers.extend([nn.Identity()])
layers[-1] = nn.Softmax(-1)
layers.insert(0, nn.Flatten())
layers.pop()
layers = layers + [nn.LogSoftmax(1)]
model = nn.Sequential(*layers)
"""
    )
    _, ordered, last = held(s)
    assert ordered == [
        "nn.Flatten()", "nn.Linear(4, 8)", "nn.ReLU()", "nn.Linear(8, 2)", "nn.Sigmoid()",
        "nn.LogSoftmax(1)",
    ]  # fmt: skip
    assert last == "nn.LogSoftmax(1)"


def test_a_list_changed_after_the_sequential_is_built_does_not_change_it(snippet):
    s = snippet(
        HEADER
        + """
layers = [nn.Linear(4, 2)]
model = nn.Sequential(*layers)
layers.append(nn.Softmax(1))
"""
    )
    assert held(s)[2] == "nn.Linear(4, 2)"


def test_a_list_handed_to_an_unknown_function_is_unknown(snippet):
    s = snippet(
        HEADER
        + """
def build(customise):
    layers = [nn.Linear(4, 2)]
    customise(layers)
    return nn.Sequential(*layers)
"""
    )
    assert held(s) is None


def test_add_module_ordered_dicts_and_self_lists(snippet):
    s = snippet(
        HEADER
        + """
seq = nn.Sequential(nn.Linear(4, 2))
seq.add_module("sigmoid", nn.Sigmoid())

parts = OrderedDict()
parts["fc"] = nn.Linear(4, 2)
parts["prob"] = nn.Softmax(1)
named = nn.Sequential(parts)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = []
        for _ in range(3):
            self.layers.append(nn.Linear(4, 4))
        self.layers.append(nn.Tanh())
        self.body = nn.Sequential(*self.layers)
"""
    )
    assert held(s, "nn.Sequential(nn.Linear(4, 2))")[1] == ["nn.Linear(4, 2)", "nn.Sigmoid()"]
    call = s.find("nn.Sequential(parts)", cst.Call)
    found = s.facts.values.containers.of_module(call)
    assert found.keys == ("fc", "prob") and s.code(found.last) == "nn.Softmax(1)"
    assert held(s, "nn.Sequential(*self.layers)")[2] == "nn.Tanh()"


def test_children_slices_and_comprehensions(snippet):
    s = snippet(
        HEADER
        + """
head = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2), nn.Softmax(1))
trunk = nn.Sequential(*list(head.children())[:-1])
resnet = torchvision.models.resnet18()
features = nn.Sequential(*list(resnet.children())[:-1])
blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
"""
    )
    assert held(s, "nn.Sequential(*list(head.children())[:-1])")[2] == "nn.Linear(4, 2)"
    call = s.find("nn.Sequential(*list(resnet.children())[:-1])", cst.Call)
    found = s.facts.values.containers.of_module(call)
    assert found.last is None
    assert [s.code(p) for p in found.parts] == ["torchvision.models.resnet18()"]
    assert held(s, "nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])")[0] == ["nn.Linear(4, 4)"]


def test_neighbours_inside_a_loop_body(snippet):
    s = snippet(
        HEADER
        + """
def blocks(channels):
    layers = []
    for a, b in zip(channels[:-1], channels[1:]):
        conv = nn.Conv2d(a, b, 3)
        layers.append(conv)
        layers.append(nn.BatchNorm2d(b))
        if b > 64:
            continue
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)
"""
    )
    containers = s.facts.values.containers
    seq = s.find("nn.Sequential(*layers)", cst.Call)
    conv = s.find("nn.Conv2d(a, b, 3)", cst.Call)
    [position] = containers.positions(conv)
    assert position.container is seq and position.index is None
    assert s.code(containers.successor(seq, position.member)) == "nn.BatchNorm2d(b)"
    # a continue in between: the BatchNorm is not always followed by the ReLU
    assert containers.successor(seq, s.find("nn.BatchNorm2d(b)", cst.Call)) is None
    assert s.code(containers.successor(seq, s.find("nn.ReLU()", cst.Call))) == "nn.MaxPool2d(2)"


def test_the_last_element_is_followed_by_the_end(snippet):
    s = snippet(HEADER + "model = nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())\n")
    containers = s.facts.values.containers
    seq = s.find("nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())", cst.Call)
    assert containers.successor(seq, s.find("nn.Sigmoid()", cst.Call)) is END


def test_a_list_given_as_an_argument(snippet):
    s = snippet(
        HEADER
        + """
def make(layers, extra=None):
    if extra is not None:
        layers.append(extra)
    return nn.Sequential(*layers)

def make_plain(layers):
    return nn.Sequential(*layers)

a = make_plain([nn.Linear(4, 2), nn.Softmax(1)])
b = make([nn.Linear(4, 2), nn.Softmax(1)], nn.Identity())
"""
    )
    assert held(s)[2] is None  # make(): the extra layer may come last
    assert held(s, index=1)[2] == "nn.Softmax(1)"


def test_a_replaced_torchvision_head(snippet):
    s = snippet(
        HEADER
        + """
model = torchvision.models.resnet50()
model.fc = nn.Sequential(nn.Linear(2048, 10), nn.Softmax(dim=1))
vgg = torchvision.models.vgg16()
if flag:
    vgg.classifier = nn.Linear(25088, 10)
"""
    )
    containers = s.facts.values.containers
    head = containers.replaced_head(s.find("torchvision.models.resnet50()", cst.Call))
    assert s.code(head) == "nn.Sequential(nn.Linear(2048, 10), nn.Softmax(dim=1))"
    assert containers.replaced_head(s.find("torchvision.models.vgg16()", cst.Call)) is None


def test_a_global_list_changed_after_the_function_that_reads_it(snippet):
    s = snippet(
        HEADER
        + """
layers = [nn.Linear(4, 2)]

def build():
    return nn.Sequential(*layers)

model = build()
layers.append(nn.Softmax(1))
"""
    )
    assert held(s) is None  # build() may run before or after the append
