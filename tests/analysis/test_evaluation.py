import libcst as cst

from dllint.analysis.evaluation import evaluation_reason

SOURCE = """
import torch
import lightning as L

def train(model, loader):
    for x, y in loader:
        loss = crit(model(x), y)
        loss.backward()
    with torch.no_grad():
        crit(model(x), y)
    with torch.set_grad_enabled(False):
        crit(model(x), y)
    with torch.set_grad_enabled(True):
        crit(model(x), y)

@torch.no_grad()
def score(model, x, y):
    return crit(model(x), y)

def evaluate(model, x, y):
    return crit(model(x), y)

def test_step_with_backward(model, x, y):
    crit(model(x), y).backward()

def helper(model, x, y):
    return crit(model(x), y)

def run_eval(model, x, y):
    with torch.inference_mode():
        helper(model, x, y)

class Lit(L.LightningModule):
    def training_step(self, batch, i):
        return crit(self(batch[0]), batch[1])
    def validation_step(self, batch, i):
        return crit(self(batch[0]), batch[1])
"""


def reasons(snippet):
    s = snippet(SOURCE)
    calls = [c for c in s.facts.tree.nodes(cst.Call) if s.code(c.func) == "crit"]
    return [evaluation_reason(s.facts, c) for c in calls]


def test_reasons(snippet):
    assert reasons(snippet) == [
        None,
        "torch.no_grad()",
        "torch.set_grad_enabled(False)",
        None,
        "@torch.no_grad()",
        "evaluate()",
        None,
        "torch.inference_mode()",
        None,
        "validation_step()",
    ]
