import textwrap

import libcst as cst
import pytest

HEADER = """
import torch
import torch.nn as nn
import torch.optim as optim
"""


def torch_code(body: str) -> str:
    return HEADER + textwrap.dedent(body)


# -- backward -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("loss.backward()", True),
        ("scaler.scale(loss).backward()", True),
        ("accelerator.backward(loss)", True),
        ("torch.autograd.backward([loss])", True),
        ("dist_autograd.backward(ctx, [loss])", False),
        ("torch.distributed.autograd.backward(ctx, [loss])", False),
        ("torch.autograd.grad(loss, params)", False),
    ],
)
def test_backward_calls(snippet, text, expected):
    s = snippet(HEADER + "import torch.distributed.autograd as dist_autograd\n" + text + "\n")
    call = s.find(text, cst.Call)
    assert s.facts.training.is_backward(call) is expected


# -- optimizers -----------------------------------------------------------------------
def test_optimizer_followed_through_params_attributes_and_prepare(snippet):
    s = snippet(
        torch_code(
            """
        from accelerate import Accelerator
        class Trainer:
            def __init__(self, model, optimizer):
                self.opt = optimizer
            def step(self):
                self.opt.step()
        model = nn.Linear(2, 1)
        sgd = optim.SGD(model.parameters(), lr=0.1)
        Trainer(model, sgd)
        accelerator = Accelerator()
        model, prepared = accelerator.prepare(model, sgd)
        prepared.step()
        """
        )
    )
    training = s.facts.training
    construction = s.find("optim.SGD(model.parameters(), lr=0.1)", cst.Call)
    for text in ("self.opt.step()", "prepared.step()"):
        step = training.step_of(s.find(text, cst.Call))
        assert step is not None
        assert step.optimizer.constructions == (construction,)


@pytest.mark.parametrize(
    "construction, is_optimizer",
    [
        ("optim.Adam(model.parameters())", True),
        ("torch.optim.LBFGS(model.parameters())", True),
        ("optim.lr_scheduler.StepLR(base, 10)", False),
        ("optim.swa_utils.SWALR(base, 0.05)", False),
        ("DistributedOptimizer(optim.SGD, rrefs)", False),
        ("ZeroRedundancyOptimizer(model.parameters(), optim.Adam)", True),
        ("bnb.optim.Adam8bit(model.parameters())", True),
        ("MyOpt(model.parameters())", True),
        ("NotAnOptimizer(model.parameters())", False),
        ("build_optimizer(model)", True),  # unknown value, named like one
    ],
)
def test_what_is_an_optimizer(snippet, construction, is_optimizer):
    s = snippet(
        torch_code(
            f"""
        import bitsandbytes as bnb
        from torch.distributed.optim import DistributedOptimizer, ZeroRedundancyOptimizer
        from myproject.utils import build_optimizer
        class MyOpt(torch.optim.Optimizer):
            pass
        class NotAnOptimizer:
            def step(self):
                pass
        model = nn.Linear(2, 1)
        base = optim.SGD(model.parameters(), lr=0.1)
        optimizer = {construction}
        optimizer.step()
        """
        )
    )
    step = s.facts.training.step_of(s.find("optimizer.step()", cst.Call))
    assert (step is not None) is is_optimizer


@pytest.mark.parametrize(
    "imports, name, expected",
    [
        ("import torch", "optimizer", True),
        ("import torch", "opt_d", True),
        ("import torch", "scheduler", False),
        ("import torch", "lr_sched_opt", False),
        ("import torch", "trainer", False),
        ("import torch\nimport mxnet", "optimizer", False),
        ("import torch\nimport tensorflow as tf", "optimizer", False),
        ("import numpy", "optimizer", False),
    ],
)
def test_unknown_values_are_optimizers_only_by_name_in_torch_files(
    snippet, imports, name, expected
):
    s = snippet(f"{imports}\ndef train({name}):\n    {name}.step()\n")
    step = s.facts.training.step_of(s.find(f"{name}.step()", cst.Call))
    assert (step is not None) is expected


def test_scaler_step_is_a_step_of_its_optimizer(snippet):
    s = snippet(
        torch_code(
            """
        model = nn.Linear(2, 1)
        optimizer = optim.Adam(model.parameters())
        scaler = torch.cuda.amp.GradScaler()
        scaler.step(optimizer)
        env.step(optimizer)
        """
        )
    )
    training = s.facts.training
    step = training.step_of(s.find("scaler.step(optimizer)", cst.Call))
    assert step is not None and step.optimizer.name == "optimizer"
    assert step.text == "scaler.step(optimizer)"
    assert training.step_of(s.find("env.step(optimizer)", cst.Call)) is None


# -- parameter sources ----------------------------------------------------------------
@pytest.mark.parametrize(
    "params, models",
    [
        ("netG.parameters()", ["netG"]),
        ("list(a.parameters()) + list(b.parameters())", ["a", "b"]),
        ("itertools.chain(a.parameters(), b.parameters())", ["a", "b"]),
        ("filter(lambda p: p.requires_grad, a.parameters())", ["a"]),
        ("[{'params': a.parameters()}, {'params': b.parameters(), 'lr': 1e-3}]", ["a", "b"]),
        ("[p for p in a.parameters() if p.requires_grad]", ["a"]),
        ("grouped", ["a"]),
        ("collected", None),  # built by appends: unknown
        ("get_params(a)", None),
    ],
)
def test_parameter_sources(snippet, params, models):
    s = snippet(
        torch_code(
            f"""
        import itertools
        from utils import get_params
        a, b, netG = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)
        grouped = list(a.parameters())
        collected = []
        collected.append(a.weight)
        optimizer = optim.SGD({params}, lr=0.1)
        optimizer.step()
        """
        )
    )
    training = s.facts.training
    step = training.step_of(s.find("optimizer.step()", cst.Call))
    sources = training.parameter_sources(step.optimizer)
    if models is None:
        assert sources is None
    else:
        assert sorted(ref.name for ref in sources) == models


# -- clearing -------------------------------------------------------------------------
GAN = torch_code(
    """
    netG, netD = Generator(), Discriminator()
    optG = optim.Adam(netG.parameters())
    optD = optim.Adam(netD.parameters())
    optD.zero_grad()
    optG.zero_grad(set_to_none=True)
    netD.zero_grad()
    netG.zero_grad()
    netD.module.zero_grad()
    holder.zero_grad()
    optD.step()
    optG.step()
    class Generator(nn.Module):
        pass
    class Discriminator(nn.Module):
        pass
    """
)


@pytest.mark.parametrize(
    "clearing, clears_d, clears_g",
    [
        ("optD.zero_grad()", True, False),
        ("optG.zero_grad(set_to_none=True)", False, True),
        ("netD.zero_grad()", True, False),
        ("netG.zero_grad()", False, True),
        ("netD.module.zero_grad()", True, False),
        ("holder.zero_grad()", True, True),  # not provably another model: counts
    ],
)
def test_each_optimizer_has_its_own_clearing(snippet, clearing, clears_d, clears_g):
    s = snippet(GAN)
    training = s.facts.training
    opt_d = training.step_of(s.find("optD.step()", cst.Call)).optimizer
    opt_g = training.step_of(s.find("optG.step()", cst.Call)).optimizer
    node = s.find(clearing, cst.Call)
    assert training.clears(node, opt_d) is clears_d
    assert training.clears(node, opt_g) is clears_g


@pytest.mark.parametrize(
    "statement",
    [
        "p.grad = None",
        "p.grad.zero_()",
        "p.grad.data.zero_()",
        "p.grad.detach_()",
        "del p.grad",
        "p.grad.data.fill_(0)",
    ],
)
def test_grad_resets_clear_every_optimizer(snippet, statement):
    s = snippet(HEADER + statement + "\n")
    inner = s.facts.module.body[-1].body[0]
    target = inner.value if isinstance(inner, cst.Expr) else inner
    assert s.facts.training.is_grad_reset(target)


@pytest.mark.parametrize(
    "text",
    ["torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)", "p.grad.data.mul_(1.0 / k)"],
)
def test_rescaling_gradients_is_not_a_grad_reset(snippet, text):
    s = snippet(HEADER + text + "\n")
    call = s.find(text, cst.Call)
    assert not s.facts.training.is_grad_reset(call)


# -- loops ----------------------------------------------------------------------------
def test_training_loops_and_clearing_in_helpers_and_closures(snippet):
    s = snippet(
        torch_code(
            """
        model = nn.Linear(2, 1)
        optimizer = optim.LBFGS(model.parameters())
        def closure():
            optimizer.zero_grad()
            loss = model(x).sum()
            loss.backward()
            return loss
        for i in range(10):
            optimizer.step(closure)
        def update(loss):
            loss.backward()
            optimizer.step()
        for x in data:
            update(model(x).sum())
        for x in data:
            model(x).sum().backward()
        """
        )
    )
    training = s.facts.training
    loops = s.facts.loops.all()
    found = {loop.loop: loop for loop in training.training_loops}
    assert loops[0] in found and loops[1] in found and loops[2] not in found
    first = found[loops[0]]
    assert training.clears_in(loops[0], first.steps[0].optimizer)  # via the closure
    second = found[loops[1]]
    assert not training.clears_in(loops[1], second.steps[0].optimizer)


def test_an_optimizer_built_inside_the_loop_is_constructed_in_it(snippet):
    s = snippet(
        torch_code(
            """
            for lr in (0.1, 0.01):
                model = nn.Linear(2, 1)
                opt = optim.SGD(model.parameters(), lr=lr)
                model(x).sum().backward()
                opt.step()
            """
        )
    )
    training = s.facts.training
    (loop,) = training.training_loops
    assert training.constructed_in(loop.loop, loop.steps[0].optimizer)
