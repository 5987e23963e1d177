import libcst as cst

from dllint.analysis.layers import activation_family, layers_of

HEADER = """
import torch
import torch.nn as nn
import torch.nn.functional as F
"""


def follow_of(s, text):
    layers = layers_of(s.facts)
    layer = layers.layer_of(s.find(text, cst.BaseExpression))
    assert layer is not None, text
    return layers.following(layer)


def net(forward_body, init_extra=""):
    return (
        HEADER
        + f"""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 8)
        self.act = nn.Tanh()
        self.drop = nn.Dropout(0.1)
        {init_extra}

    def forward(self, x):
{forward_body}

model = Net()
"""
    )


def test_activation_families_by_qualified_name():
    assert activation_family("torch.tanh") == "tanh"
    assert activation_family("torch.nn.Sigmoid") == "sigmoid"
    assert activation_family("torch.nn.functional.gelu") == "relu"
    assert activation_family("torch.Tensor.relu_") == "relu"
    assert activation_family("torch.nn.SELU") is None
    assert activation_family("torch.nn.Mish") is None


def test_activation_around_the_call(snippet):
    s = snippet(net("        return self.fc2(torch.tanh(self.drop(self.fc1(x))))"))
    follow = follow_of(s, "self.fc1")
    assert (follow.kind, follow.qualname, follow.family) == ("op", "torch.tanh", "tanh")
    assert follow_of(s, "self.fc2").kind == "output"


def test_variable_followed_to_its_next_read_and_module_activation(snippet):
    body = """        x = self.fc1(x)
        x = x.view(x.size(0), -1)
        x = self.act(x)
        h = F.relu(self.fc2(x)).relu()
        return h"""
    s = snippet(net(body))
    assert follow_of(s, "self.fc1").qualname == "torch.nn.Tanh"
    assert follow_of(s, "self.fc2").qualname == "torch.nn.functional.relu"


def test_tensor_method_activation(snippet):
    s = snippet(net("        return self.fc2(self.fc1(x).sigmoid())"))
    assert follow_of(s, "self.fc1").family == "sigmoid"


def test_other_ops_and_disagreeing_uses_are_unknown(snippet):
    body = """        a = self.fc1(x) + x
        b = self.fc2(a)
        if self.training:
            b = torch.tanh(b)
        else:
            b = F.relu(b)
        return b"""
    s = snippet(net(body))
    assert follow_of(s, "self.fc1").kind == "unknown"
    assert follow_of(s, "self.fc2").kind == "unknown"


def test_layer_used_twice_with_the_same_activation(snippet):
    body = "        return torch.tanh(self.fc2(x)) + torch.tanh(self.fc2(self.fc1(x)))"
    s = snippet(net(body))
    assert follow_of(s, "self.fc2").family == "tanh"
    follow = follow_of(s, "self.fc1")  # feeds another layer: known, but no activation
    assert (follow.qualname, follow.family) == ("torch.nn.Linear", None)


def test_sequential_elements_and_the_end_of_an_attribute_sequential(snippet):
    s = snippet(
        HEADER
        + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.ReLU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(torch.sigmoid(self.body(x)))

plain = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1))
net = Net()
use(net.body[0], net.body[3], plain[0], plain[3])
"""
    )
    assert follow_of(s, "net.body[0]").qualname == "torch.nn.ReLU"
    assert follow_of(s, "net.body[3]").qualname == "torch.sigmoid"
    assert follow_of(s, "plain[0]").qualname == "torch.nn.BatchNorm1d"
    assert follow_of(s, "plain[3]").kind == "output"


def test_module_level_sequential_inside_another_is_not_an_output(snippet):
    s = snippet(
        HEADER
        + """
encoder = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
model = nn.Sequential(encoder, nn.Sigmoid())
use(encoder[2])
"""
    )
    assert follow_of(s, "encoder[2]").kind == "unknown"


def test_inventory_lists_nested_layers_and_flags_what_it_cannot_see(snippet):
    s = snippet(
        HEADER
        + """
import torchvision

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(self.fc(x))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        self.out = nn.Linear(8, 1)

class WithBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet18()
        self.out = nn.Linear(8, 1)

a, b = Net(), WithBackbone()
use(a, b)
"""
    )
    layers = layers_of(s.facts)
    net_model = layers.model_of(s.find("a", cst.Name, 1))
    inventory = layers.inventory(net_model)
    labels = sorted(layer.label for layer in inventory.layers)
    assert labels == ["self.block.fc", "self.block.norm", "self.layers[...]", "self.out"]
    assert inventory.complete and inventory.normalised
    nested = [layer.label for layer in inventory.layers if inventory.is_nested(layer)]
    assert sorted(nested) == ["self.block.fc", "self.block.norm"]
    assert not layers.inventory(layers.model_of(s.find("b", cst.Name, 1))).complete


def test_selections_of_module_loops_and_apply_functions(snippet):
    s = snippet(
        HEADER
        + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                init_a(m.weight)
            elif type(m) == nn.BatchNorm1d:
                init_b(m.weight)
            else:
                init_c(m.weight)
            if m.bias is not None:
                if isinstance(m, nn.Linear):
                    init_d(m.weight)

def init_fn(module):
    if isinstance(module, nn.Linear):
        init_e(module.weight)

net = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
net.apply(init_fn)
"""
    )
    layers = layers_of(s.facts)

    def selected(call_text):
        name = s.find(call_text, cst.Call).args[0].value.value
        return [
            (layers.model_label(sel.model), sorted(sel.kinds)) for sel in layers.selections(name)
        ]

    assert selected("init_a(m.weight)") == [("Net", ["torch.nn.Conv2d", "torch.nn.Linear"])]
    assert selected("init_b(m.weight)") == [("Net", ["torch.nn.BatchNorm1d"])]
    assert selected("init_c(m.weight)") == []  # the else branch: every other module
    assert selected("init_d(m.weight)") == []  # another condition narrows further
    assert selected("init_e(module.weight)") == [("net", ["torch.nn.Linear"])]


def test_normalised_through_a_holding_class(snippet):
    s = snippet(
        HEADER
        + """
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.mlp = MLP()

class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
"""
    )
    layers = layers_of(s.facts)
    by_name = {info.name: info for info in s.facts.classes.by_node.values()}
    assert layers.normalised(by_name["MLP"])
    assert not layers.normalised(by_name["Plain"])
