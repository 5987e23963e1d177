import textwrap

import libcst as cst

from dllint.analysis.mode_flow import mode_flow_of
from dllint.analysis.modes import EVAL

HEAD = """
import torch
import torch.nn as nn
from torchvision.models import resnet18
from torchvision.ops import FrozenBatchNorm2d
"""


def test_known_without_mode_layers(snippet):
    source = """
    class Reg(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = nn.Linear(n, 1)
            self.scale = nn.Parameter(torch.ones(1))
    reg = Reg(4)
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.0))
    drop = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
    unknown = build_model()
    reg, seq, drop, unknown
    """
    s = snippet(HEAD + textwrap.dedent(source))
    flow = mode_flow_of(s.facts)
    last = s.find("reg, seq, drop, unknown", cst.Tuple)
    reg, seq, drop, unknown = (e.value for e in last.elements)
    assert flow.known_without_mode_layers(reg)
    assert flow.known_without_mode_layers(seq)
    assert not flow.known_without_mode_layers(drop)
    assert not flow.known_without_mode_layers(unknown)


def test_certain_mode_layers(snippet):
    source = """
    a = resnet18(weights="DEFAULT")
    b = resnet18(norm_layer=FrozenBatchNorm2d)
    c = make_backbone()
    a, b, c
    """
    s = snippet(HEAD + textwrap.dedent(source))
    flow = mode_flow_of(s.facts)
    a, b, c = (e.value for e in s.find("a, b, c", cst.Tuple).elements)
    assert flow.certain_mode_layers(a) == {"dropout", "batch norm"}
    assert not flow.certain_mode_layers(b)
    assert not flow.certain_mode_layers(c)


def test_eval_sites_through_a_helper_and_restoring_calls(snippet):
    source = """
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    def evaluate(model):
        model.eval()
    def fit(model):
        model.train()
    for epoch in range(3):
        fit(net)
        evaluate(net)
    """
    s = snippet(HEAD + textwrap.dedent(source))
    flow = mode_flow_of(s.facts)
    (found,) = [m for m in flow.modes.mode_calls if m.mode == EVAL]
    (site,) = flow.eval_sites(found)
    assert s.code(site.site) == "evaluate(net)"
    assert site.ref.text == "net"
    fit_call = s.find("fit(net)", cst.Call)
    assert flow.may_restore(fit_call, site.ref)
    assert not flow.may_restore(site.site, site.ref)
