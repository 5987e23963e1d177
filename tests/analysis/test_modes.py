import textwrap

import libcst as cst
import pytest

from dllint.analysis import ModuleFacts
from dllint.analysis.modes import EVAL, TRAIN, UNKNOWN, Modes, modes_of

NET = """
import torch
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.fc(self.drop(x))
"""


def modes(snippet, source: str) -> tuple:
    s = snippet(source)
    return s, modes_of(s.facts)


def model_layers(snippet, source: str, text: str, index: int = -1):
    s, m = modes(snippet, source)
    nodes = [
        n
        for n in sorted(s.facts.tree.order, key=s.facts.tree.order.__getitem__)
        if isinstance(n, (cst.Name, cst.Attribute)) and s.code(n) == text
    ]
    return m.layers(nodes[index])


# -- mode layers ------------------------------------------------------------------------
def test_in_module_class_with_dropout_holds_mode_layers(snippet):
    assert model_layers(snippet, NET + "model = Net()\nmodel(x)\n", "model") == TRAIN


@pytest.mark.parametrize(
    "layer",
    [
        "nn.LayerNorm(4)",
        "nn.Dropout(p=0.0)",
        "nn.Dropout(0)",
        "nn.BatchNorm1d(4, track_running_stats=False)",
        "nn.InstanceNorm2d(4)",
        "nn.GroupNorm(2, 4)",
    ],
)
def test_layers_that_behave_the_same_in_both_modes(snippet, layer):
    source = f"""
    import torch.nn as nn
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = {layer}
    model = M()
    model(x)
    """
    assert model_layers(snippet, source, "model") is None


@pytest.mark.parametrize(
    "layer",
    [
        "nn.BatchNorm2d(4)",
        "nn.SyncBatchNorm(4)",
        "nn.AlphaDropout(0.1)",
        "nn.InstanceNorm1d(4, track_running_stats=True)",
        "nn.Dropout(p)",
    ],
)
def test_mode_dependent_layers(snippet, layer):
    source = f"""
    import torch.nn as nn
    class M(nn.Module):
        def __init__(self, p=0.1):
            super().__init__()
            self.layer = {layer}
    model = M()
    model(x)
    """
    assert model_layers(snippet, source, "model") == TRAIN


def test_functional_dropout_counts_only_with_training_flag(snippet):
    template = """
    import torch.nn as nn
    import torch.nn.functional as F
    class M(nn.Module):
        def forward(self, x):
            return F.dropout(x, 0.5{extra})
    model = M()
    model(x)
    """
    with_flag = template.format(extra=", training=self.training")
    assert model_layers(snippet, with_flag, "model") == TRAIN
    assert model_layers(snippet, template.format(extra=""), "model") is None
    assert model_layers(snippet, template.format(extra=", training=True"), "model") is None


def test_submodule_classes_and_helpers_are_followed(snippet):
    source = """
    import torch.nn as nn
    def block(c):
        return nn.Sequential(nn.Conv2d(c, c, 3), nn.BatchNorm2d(c))
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = block(8)
    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Block()
    model = Outer()
    model(x)
    """
    assert model_layers(snippet, source, "model") == TRAIN


def test_sequential_and_library_builders(snippet):
    source = """
    import torch.nn as nn
    import timm
    from torchvision import models
    from transformers import AutoModel, AutoTokenizer
    seq = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
    plain = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    resnet = models.resnet18(weights=models.ResNet18_Weights.DEFAULT)
    preprocess = models.ResNet18_Weights.DEFAULT.transforms()
    vit = timm.create_model("vit_base_patch16_224")
    bert = AutoModel.from_pretrained("bert-base-uncased")
    tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
    seq(x); plain(x); resnet(x); preprocess(x); vit(x); bert(x); tokenizer(x)
    """
    expected = {
        "seq": TRAIN,
        "plain": None,
        "resnet": TRAIN,
        "preprocess": None,
        "vit": TRAIN,
        "bert": EVAL,
        "tokenizer": None,
    }
    for name, kind in expected.items():
        assert model_layers(snippet, source, name) == kind, name


def test_notebook_redefinition_decides_by_the_class_bound_at_construction(snippet):
    source = NET + textwrap.dedent(
        """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)
        model = Net()
        model(x)
        """
    )
    assert model_layers(snippet, source, "model") is None


def test_unknown_model_parameter_has_no_layers(snippet):
    source = """
    def evaluate(model, x):
        return model(x)
    """
    assert model_layers(snippet, source, "model") is None


# -- mode calls -------------------------------------------------------------------------
def test_mode_calls(snippet):
    s, m = modes(
        snippet,
        """
        model.eval()
        model.train(False)
        model.train()
        model.train(mode=True)
        model.train(is_training)
        model.requires_grad_(False)
        df.eval("a + b")
        """,
    )
    found = [(s.code(c.target), c.mode) for c in m.mode_calls]
    assert found == [
        ("model", EVAL),
        ("model", EVAL),
        ("model", TRAIN),
        ("model", TRAIN),
        ("model", UNKNOWN),
    ]


# -- the mode at a call -----------------------------------------------------------------
def mode_at(snippet, source: str, call_text: str):
    s, m = modes(snippet, NET + textwrap.dedent(source))
    call = s.find(call_text, cst.Call, index=-1)
    model = m.model_of_call(call)
    assert model is not None
    event = m.mode_at(call, model)
    return event.mode if event is not None else m.initial_mode(model)


def test_eval_earlier_in_the_function_and_latest_call_decides(snippet):
    assert mode_at(snippet, "model = Net()\nmodel.eval()\nmodel(x)\n", "model(x)") == EVAL
    source = "model = Net()\nmodel.eval()\nmodel.train()\nmodel(x)\n"
    assert mode_at(snippet, source, "model(x)") == TRAIN
    assert mode_at(snippet, "model = Net()\nmodel(x)\n", "model(x)") == TRAIN
    assert mode_at(snippet, "model = Net().to('cuda').eval()\nmodel(x)\n", "model(x)") == EVAL


def test_eval_in_the_caller_before_the_call(snippet):
    source = """
    def evaluate(m, x):
        return m(x)
    def run():
        net = Net()
        net.eval()
        evaluate(net, 1)
    def other():
        net = Net()
        evaluate(net, 2)
    """
    # one caller switches to eval: the function is taken as evaluated in eval mode
    assert mode_at(snippet, source, "m(x)") == EVAL
    without = source.replace("net.eval()", "pass")
    assert mode_at(snippet, without, "m(x)") == TRAIN


def test_eval_inside_a_function_called_before(snippet):
    source = """
    def prepare(m):
        m.eval()
    model = Net()
    prepare(model)
    model(x)
    """
    assert mode_at(snippet, source, "model(x)") == EVAL


def test_eval_of_a_different_model_does_not_count(snippet):
    source = """
    model = Net()
    teacher = Net()
    teacher.eval()
    model(x)
    """
    assert mode_at(snippet, source, "model(x)") == TRAIN


def test_rebinding_needs_a_new_eval(snippet):
    source = """
    model = Net()
    model.eval()
    model = Net()
    model(x)
    """
    assert mode_at(snippet, source, "model(x)") == TRAIN


def test_train_later_in_the_loop_carries_into_the_next_iteration(snippet):
    source = """
    model = Net()
    model.eval()
    for epoch in range(3):
        model(x)
        model.train()
    """
    assert mode_at(snippet, source, "model(x)") == TRAIN


def test_eval_in_the_constructor_of_the_wrapper(snippet):
    source = """
    class Predictor:
        def __init__(self):
            self.model = Net()
            self.model.eval()
        def predict(self, x):
            return self.model(x)
    p = Predictor()
    p.predict(1)
    p.model(2)
    """
    assert mode_at(snippet, source, "self.model(x)") == EVAL
    assert mode_at(snippet, source, "p.model(2)") == EVAL


def test_modules_loop_counts_as_eval(snippet):
    source = """
    model = Net()
    for m in model.modules():
        m.eval()
    model(x)
    """
    assert mode_at(snippet, source, "model(x)") == EVAL


# -- evaluation regions -----------------------------------------------------------------
def regions(snippet, source: str, path: str = "snippet.py") -> list[str]:
    s = snippet(source)
    facts = ModuleFacts(path, s.source, s.facts.module)
    return [r.how for r in Modes(facts).evaluation_regions]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("evaluate", True),
        ("val_epoch", True),
        ("run_test", True),
        ("predictBatch", True),
        ("inference", True),
        ("train_and_eval", False),
        ("interval", False),
        ("latest", False),
        ("contest_entry", False),
    ],
)
def test_named_for_evaluation(name, expected):
    assert Modes.named_for_evaluation(name) is expected


def test_regions_blocks_decorators_and_names(snippet):
    source = """
    import torch
    from torch import no_grad
    with torch.no_grad():
        pass
    with torch.inference_mode():
        pass
    with torch.set_grad_enabled(False):
        pass
    with torch.set_grad_enabled(phase == "train"):
        pass
    with no_grad(), autocast():
        pass
    @torch.no_grad()
    def sample(model):
        pass
    def validate(model):
        pass
    """
    assert regions(snippet, source) == [
        "torch.no_grad()",
        "torch.inference_mode()",
        "torch.set_grad_enabled(False)",
        "torch.no_grad()",
        "@torch.no_grad()",
        "validate()",
    ]


def test_no_regions_in_hooks_forward_training_iterations_and_pytest_tests(snippet):
    source = """
    import torch
    import lightning as L
    class Lit(L.LightningModule):
        def validation_step(self, batch, i):
            pass
        def predict(self, x):
            with torch.no_grad():
                pass
    class Net(torch.nn.Module):
        def forward(self, x):
            with torch.no_grad():
                pass
    for real in loader:
        with torch.no_grad():
            fake = netG(z)
        d_loss.backward()
        optD.step()
    def train_step(batch):
        with torch.no_grad():
            target = target_net(batch)
        loss.backward()
    def test_model_output():
        with torch.no_grad():
            pass
    """
    assert regions(snippet, source, path="test_models.py") == []
    assert regions(snippet, source, path="models.py") == ["test_model_output()", "torch.no_grad()"]


def test_validation_after_the_batch_loop_is_an_evaluation_region(snippet):
    source = """
    import torch
    for epoch in range(10):
        for x, y in train_loader:
            loss.backward()
            optimizer.step()
        scheduler.step()
        with torch.no_grad():
            pass
    """
    assert regions(snippet, source) == ["torch.no_grad()"]


def test_scheduler_step_is_not_training_but_optimizer_step_is(snippet):
    s, m = modes(snippet, "scheduler.step()\nlr_sched.step()\nopt_g.step()\nscaler.step(opt)\n")
    calls = s.facts.tree.nodes(cst.Call)
    assert [m.is_training_call(c) for c in calls if s.code(c).endswith(")")][:4] == [
        False,
        False,
        True,
        True,
    ]


# -- held-out data ------------------------------------------------------------------------
def test_held_out_names(snippet):
    s, m = modes(
        snippet,
        """
        import torch
        for xb, yb in tqdm(val_loader):
            model(xb.to(device))
        for inputs, labels in loaders["test"]:
            model(inputs)
        model(torch.tensor(X_val))
        model(X_train)
        model(latest)
        model(x)
        """,
    )
    calls = [c for c in s.facts.tree.nodes(cst.Call) if s.code(c.func) == "model"]
    assert [m.held_out(c.args[0].value) for c in calls] == [
        "val_loader",
        'loaders["test"]',
        "X_val",
        None,
        None,
        None,
    ]


def test_layer_kinds_say_which_layers_a_model_holds(snippet):
    source = """
    import torch.nn as nn
    from torchvision import models
    drop = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
    norm = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    both = nn.Sequential(drop, norm)
    resnet = models.resnet18()
    drop(x); norm(x); both(x); resnet(x)
    """
    s, m = modes(snippet, source)
    kinds = {
        s.code(call.func): m.layer_kinds(call.func)
        for call in s.facts.tree.nodes(cst.Call)
        if s.code(call.func) in ("drop", "norm", "both", "resnet")
    }
    assert kinds == {
        "drop": {"dropout"},
        "norm": {"batch norm"},
        "both": {"dropout", "batch norm"},
        "resnet": {"dropout", "batch norm"},
    }
