import textwrap

import libcst as cst
import pytest

from dllint.analysis.activations import activation_of, output_activation

HEADER = """
import torch
import torch.nn as nn
import torch.nn.functional as F
"""


def kind(snippet, source, text, index=0):
    s = snippet(HEADER + textwrap.dedent(source))
    return output_activation(s.facts, s.find(text, cst.BaseExpression, index))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("F.softmax(z, dim=1)", "softmax"),
        ("torch.softmax(z, 1)", "softmax"),
        ("torch.nn.functional.softmax(z, -1)", "softmax"),
        ("z.softmax(-1)", "softmax"),
        ("z.softmax(dim=1)", "softmax"),
        ("F.log_softmax(z, 1)", "log_softmax"),
        ("z.log_softmax(1)", "log_softmax"),
        ("torch.sigmoid(z)", "sigmoid"),
        ("z.sigmoid()", "sigmoid"),
        ("F.logsigmoid(z)", "logsigmoid"),
        ("F.relu(z)", "relu"),
        ("torch.exp(F.log_softmax(z, 1))", "softmax"),
        ("F.log_softmax(z, 1).exp()", "softmax"),
        ("torch.log(F.softmax(z, 1))", "log_softmax"),
        ("nn.Softmax(dim=1)(z)", "softmax"),
        ("nn.Sigmoid()(z)", "sigmoid"),
        ("z", None),
        ("torch.exp(z)", None),
        ("torch.tanh(z)", None),
        ("F.softmax(z, 1) * 2", None),
    ],
)
def test_direct_forms(snippet, expr, expected):
    assert kind(snippet, f"out = {expr}\nuse(out)\n", "out", 1) == expected


def test_pass_throughs_keep_the_activation(snippet):
    source = """
    probs = F.softmax(z, dim=1)
    a = probs.to(device).float().view(-1, 10)
    b = torch.squeeze(probs[:, 0].contiguous())
    """
    assert kind(snippet, source, "a") == "softmax"
    assert kind(snippet, source, "b") == "softmax"


def test_reassigned_variable_and_model_forward(snippet):
    source = """
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.act = nn.Softmax(dim=1)
        def forward(self, x):
            return self.act(self.fc(x))
    model = Net().cuda()
    out = model(x)
    use(out)
    seq = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    p = seq(x).squeeze(1)
    use(p)
    """
    assert kind(snippet, source, "out", 1) == "softmax"
    assert kind(snippet, source, "p", 1) == "sigmoid"


def test_tuple_return_selects_the_element(snippet):
    source = """
    class Net(nn.Module):
        def forward(self, x):
            logits = self.fc(x)
            return logits, F.softmax(logits, dim=1)
    logits, probas = Net()(x)
    out = Net()(x)
    use(logits, probas, out[0], out[1])
    """
    assert kind(snippet, source, "logits", 2) is None
    assert kind(snippet, source, "probas", 1) == "softmax"
    assert kind(snippet, source, "out[0]") is None
    assert kind(snippet, source, "out[1]") == "softmax"


def test_every_origin_must_agree(snippet):
    source = """
    class Net(nn.Module):
        def forward(self, x, probs=False):
            logits = self.fc(x)
            if probs:
                return logits.softmax(-1)
            return logits
    out = Net()(x)
    use(out)
    """
    assert kind(snippet, source, "out", 1) is None


def test_conditional_reassignment_is_unknown(snippet):
    source = """
    def forward(x, training):
        x = lin(x)
        if not training:
            x = F.softmax(x, dim=1)
        return x
    def g(x):
        x = F.softmax(x, dim=1)
        return x
    def h():
        return probs
    use(forward(z, True), g(z), h())
    if __name__ == "__main__":
        probs = F.softmax(z, dim=1)
    """
    assert kind(snippet, source, "forward(z, True)") is None
    assert kind(snippet, source, "g(z)") == "softmax"
    # A global read inside a function: the branch that binds it ran before the call.
    assert kind(snippet, source, "h()") == "softmax"


def test_shadowed_and_non_tensor_softmax_are_not_torch(snippet):
    source = """
    def softmax(x, dim):
        return x / 2
    class Head:
        def softmax(self, h):
            return h
        def run(self, h):
            return self.softmax(h)
    head = Head()
    a = softmax(z, 1)
    b = head.softmax(z)
    c = crf.softmax(hidden_states)
    d = scipy_special.softmax(z)
    """
    assert kind(snippet, source, "a") is None
    assert kind(snippet, source, "b") is None
    assert kind(snippet, source, "c") is None
    assert kind(snippet, source, "d") is None


def test_label_and_sources_name_the_first_activation(snippet):
    s = snippet(HEADER + "probs = torch.exp(F.log_softmax(z, 1))\nuse(probs)\n")
    found = activation_of(s.facts, s.find("probs", cst.Name, 1))
    assert found.kind == "softmax"
    assert found.label == "`torch.exp` of `F.log_softmax`"
    assert [s.code(n) for n in found.sources] == ["torch.exp(F.log_softmax(z, 1))"]
