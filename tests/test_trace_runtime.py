"""``dllint trace``'s runtime checks end to end, on CPU: torch.compile under the tracer,
DL601 non-finite-value, DL602 parameter-without-gradient, DL603 batch-not-overfit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import dllint.trace  # noqa: E402
from dllint.cli import main  # noqa: E402
from dllint.runtime.checks import RuntimeChecks  # noqa: E402
from dllint.runtime.compiled import NOTE  # noqa: E402
from dllint.runtime.overfit import Overfit, Ranges, sparkline, verdict  # noqa: E402
from dllint.runtime.runner import FINISHED, STOPPED  # noqa: E402

SCRIPTS = Path(__file__).parent / "trace_scripts"


def line_in(script: Path | str, text: str) -> int:
    """The line of ``script`` that contains ``text`` (once)."""
    lines = Path(script).read_text("utf-8").splitlines()
    found = [number for number, line in enumerate(lines, start=1) if text in line]
    assert len(found) == 1, found
    return found[0]


def trace(capsys, *words, fmt="json"):
    code = main(["trace", "--format", fmt, *words])
    captured = capsys.readouterr()
    out = json.loads(captured.out) if fmt in ("json", "sarif") else captured.out
    return code, out, captured.err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return str(path)


# -- torch.compile -----------------------------------------------------------------------
COMPILED = SCRIPTS / "compiled_model.py"


NO_COMPILER = not any(shutil.which(name) for name in ("g++", "c++", "clang++"))
BACKENDS = [
    "eager",
    "aot_eager",
    pytest.param(
        "inductor",
        marks=pytest.mark.skipif(NO_COMPILER, reason="inductor on the CPU needs a C++ compiler"),
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_compiled_model_trains_under_the_tracer_and_only_its_inside_goes_unrecorded(
    capsys, backend
):
    original = torch.compile
    code, results, err = trace(capsys, "--steps", "4", str(COMPILED), "--", backend)
    assert torch.compile is original
    assert code == 0 and results == []
    assert "stopped after 4 optimizer steps" in err
    assert err.count(NOTE) == 1

    run = dllint.trace.run_script(str(COMPILED), [backend], steps=2, checks=RuntimeChecks())
    assert run.outcome == STOPPED and run.steps == 2 and run.compiled_calls == 2
    lines = {event.line for event in run.trace.events}
    assert line_in(COMPILED, "around the compiled model") in lines  # the eager loss
    assert line_in(COMPILED, "inside the compiled region") not in lines


def test_compile_as_a_decorator_and_module_compile_run_untraced(tmp_path, capsys):
    script = write(
        tmp_path,
        "decorated.py",
        """
import torch
from torch import nn

@torch.compile(backend="eager")
def head(h, w):
    return (h * w).sum(1)  # compiled function

model = nn.Linear(4, 4)
model.compile(backend="eager")
w = torch.ones(4, requires_grad=True)
optimizer = torch.optim.SGD([*model.parameters(), w], lr=0.1)
x, y = torch.randn(5, 4), torch.randn(5)
for _ in range(3):
    loss = ((head(model(x), w) - y) ** 2).mean()  # eager
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
    )
    run = dllint.trace.run_script(script, steps=3, checks=RuntimeChecks())
    assert run.outcome == STOPPED and run.steps == 3
    lines = {event.line for event in run.trace.events}
    assert line_in(script, "# eager") in lines
    assert line_in(script, "compiled function") not in lines
    assert run.compiled_calls == 6


# -- DL601 non-finite-value --------------------------------------------------------------
def test_log_of_zero_in_a_custom_loss_is_reported_at_the_log(capsys):
    script = SCRIPTS / "nan_log_loss.py"
    code, results, err = trace(capsys, str(script))
    assert code == 1
    (found,) = results
    assert found["code"] == "DL601" and found["name"] == "non-finite-value"
    assert found["status"] == "runtime"
    assert found["line"] == line_in(script, "torch.log(prob)")
    source = script.read_text("utf-8").splitlines()[found["line"] - 1]
    assert source[found["column"] - 1 : found["end_column"] - 1] == "torch.log(prob)"
    message = found["message"]
    assert "`log` got 0.0 at 28 of 32 elements" in message
    assert "-inf at 28 of 32 elements" in message and "was NaN" in message
    assert "DL601 1" in err


def test_a_learning_rate_that_blows_up_names_the_rate_and_the_loss_growth(capsys):
    script = SCRIPTS / "lr_blowup.py"
    code, results, _ = trace(capsys, "--steps", "200", str(script))
    assert code == 1
    (found,) = results
    assert found["code"] == "DL601"
    assert found["line"] == line_in(script, "F.mse_loss(model(x), y)")
    assert "SGD lr=3" in found["message"]
    assert "its inputs ranged over [" in found["message"]  # the prediction, huge by now
    assert "the loss grew from" in found["message"]
    assert "learning rate too large" in found["message"]


def test_parameters_that_turn_non_finite_are_reported_at_the_step(capsys):
    script = SCRIPTS / "sqrt_at_zero.py"
    code, results, _ = trace(capsys, "--steps", "3", str(script))
    assert code == 1
    (found,) = results
    assert found["line"] == line_in(script, "optimizer.step()")
    assert "`weight`, `bias` held NaN or inf" in found["message"]
    assert "so did their gradients" in found["message"] and "SGD lr=0.1" in found["message"]


def test_inf_written_on_purpose_and_nan_that_never_reaches_the_loss_are_not_reported(
    tmp_path, capsys
):
    script = write(
        tmp_path,
        "masked.py",
        """
import torch
from torch import nn
torch.manual_seed(0)
proj = nn.Linear(8, 8)
optimizer = torch.optim.SGD(proj.parameters(), lr=0.1)
x = torch.randn(4, 6, 8)
causal = torch.ones(6, 6, dtype=torch.bool).tril()
for _ in range(2):
    scores = proj(x) @ x.transpose(1, 2)
    scores = scores.masked_fill(~causal, float("-inf")) / 8 ** 0.5
    attention = scores.softmax(-1)
    p = attention.mean(-1)
    safe = torch.where(p > 0.2, torch.log(p), torch.zeros_like(p))  # log(0) masked
    loss = (attention @ x).pow(2).mean() + safe.mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
    )
    code, results, _ = trace(capsys, "--steps", "2", script)
    assert (code, results) == (0, [])


def test_an_origin_after_a_mask_is_the_operation_not_the_mask(tmp_path, capsys):
    script = write(
        tmp_path,
        "mask_then_log.py",
        """
import torch
from torch import nn
proj = nn.Linear(8, 8)
optimizer = torch.optim.SGD(proj.parameters(), lr=0.1)
x = torch.randn(4, 6, 8)
causal = torch.ones(6, 6, dtype=torch.bool).tril()
scores = (proj(x) @ x.transpose(1, 2)).masked_fill(~causal, float("-inf"))
weights = scores.softmax(-1)
loss = -torch.log(weights - weights).mean()  # the origin
optimizer.zero_grad()
loss.backward()
optimizer.step()
""",
    )
    code, results, _ = trace(capsys, script)
    assert code == 1
    (found,) = results
    assert found["line"] == line_in(script, "# the origin")
    assert "(log)" in found["message"] and "`log` got 0.0" in found["message"]


def test_nan_in_the_data_is_said_to_come_from_outside(tmp_path, capsys):
    script = write(
        tmp_path,
        "nan_data.py",
        """
import torch
from torch import nn
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(8, 3)
x[2, 1] = float("nan")
loss = model(x).pow(2).mean()  # the first operation on the batch
optimizer.zero_grad()
loss.backward()
optimizer.step()
""",
    )
    code, results, _ = trace(capsys, script)
    assert code == 1
    (found,) = results
    assert found["line"] == line_in(script, "first operation on the batch")
    assert "already held NaN or inf (1 of 24 elements)" in found["message"]


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
def test_unusual_tensors_never_break_the_script(tmp_path, capsys):
    script = write(
        tmp_path,
        "unusual.py",
        """
import torch
from torch import nn
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
indices = torch.tensor([[0, 1], [1, 0]])
sparse = torch.sparse_coo_tensor(indices, torch.tensor([1.0, 2.0]), (2, 2))
z = torch.randn(3, dtype=torch.complex64) * 2
counts = torch.arange(10) // 3
x = torch.randn(5, 4)
loss = model(x).pow(2).mean() + (sparse @ torch.ones(2, 1)).sum() + z.abs().sum()
loss = loss + counts.float().mean() + torch.empty(0).sum()
optimizer.zero_grad()
loss.backward()
optimizer.step()
print("done")
""",
    )
    run = dllint.trace.run_script(script, steps=5, checks=RuntimeChecks())
    assert run.outcome == FINISHED and run.exception is None


# -- DL602 parameter-without-gradient ----------------------------------------------------
def test_an_unused_head_is_reported_where_it_was_built(capsys):
    script = SCRIPTS / "unused_head.py"
    code, results, err = trace(capsys, "--steps", "3", str(script))
    assert code == 1, err
    (found,) = results
    assert found["code"] == "DL602" and found["status"] == "runtime"
    assert found["line"] == line_in(script, "self.aux_head = nn.Linear(32, 2)")
    assert "`aux_head.weight`, `aux_head.bias` (nn.Linear built here)" in found["message"]
    assert "got no gradient" in found["message"]


def test_a_model_local_to_main_is_judged_when_the_script_runs_to_its_end(tmp_path, capsys):
    script = write(
        tmp_path,
        "in_main.py",
        """
import torch
from torch import nn

def main():
    model = nn.ModuleDict({"used": nn.Linear(3, 1), "spare": nn.Linear(3, 1)})  # built
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        loss = model["used"](torch.randn(4, 3)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

if __name__ == "__main__":
    main()
""",
    )
    code, results, err = trace(capsys, "--steps", "5", script)
    assert code == 1 and "the script finished (2 optimizer steps)" in err
    (found,) = results
    assert found["line"] == line_in(script, "# built")
    assert "`spare.weight`, `spare.bias`" in found["message"]


def test_a_detached_branch_reports_the_layers_it_cuts_off(capsys):
    script = SCRIPTS / "detached_branch.py"
    code, results, _ = trace(capsys, str(script))
    assert code == 1
    (found,) = results
    assert found["line"] == line_in(script, "nn.Conv2d(3, 8, 3, padding=1)")
    assert "`encoder.conv.weight`, `encoder.conv.bias`" in found["message"]


def test_frozen_layers_and_a_teacher_without_gradients_are_not_reported(capsys):
    code, results, err = trace(capsys, "--steps", "2", str(SCRIPTS / "frozen_layers.py"))
    assert (code, results) == (0, [])
    assert "DL602 0" in err


def test_an_optimizer_missing_a_parameter_group(capsys):
    script = SCRIPTS / "missing_param_group.py"
    code, results, _ = trace(capsys, str(script))
    assert code == 1
    (found,) = results
    assert found["line"] == line_in(script, "self.head = nn.Linear(32, 10)")
    assert "`head.weight`, `head.bias`" in found["message"]
    assert "belong to no optimizer" in found["message"]


def test_gradient_descent_by_hand_reports_the_unreached_parameters(tmp_path, capsys):
    script = write(
        tmp_path,
        "by_hand.py",
        """
import torch
from torch import nn
class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(3, 1)
        self.spare = nn.Linear(3, 1)  # never called
    def forward(self, x):
        return self.used(x)
model = Two()
loss = model(torch.randn(4, 3)).pow(2).mean()
loss.backward()
with torch.no_grad():
    for p in model.used.parameters():
        p -= 0.1 * p.grad
""",
    )
    code, results, _ = trace(capsys, script)
    assert code == 1
    (found,) = results
    assert found["line"] == line_in(script, "never called")
    assert "`spare.weight`, `spare.bias`" in found["message"]


# -- DL603 batch-not-overfit -------------------------------------------------------------
def test_a_batch_that_overfits_says_so_in_one_line_without_a_finding(capsys):
    code, results, err = trace(capsys, "--overfit-batch", str(SCRIPTS / "overfit_ok.py"))
    assert (code, results) == (0, [])
    line = next(line for line in err.splitlines() if "--overfit-batch" in line)
    assert "the model can learn one batch" in line and "below 10%" in line


def test_a_model_that_cannot_reach_its_targets_is_dl603_with_the_curve(capsys):
    script = SCRIPTS / "overfit_sigmoid.py"
    code, results, _ = trace(capsys, "--overfit-batch", "--steps", "40", str(script))
    assert code == 1
    (found,) = results
    assert found["code"] == "DL603" and found["status"] == "runtime"
    assert found["line"] == line_in(script, "loss.backward()")
    curve = found["loss_curve"]
    assert len(curve) == 40 and min(curve) > 0.1 * curve[0]
    assert "targets of `mse_loss` reach" in found["message"]
    assert "40 optimizer steps" in found["message"]

    code, text, _ = trace(capsys, "--overfit-batch", "--steps", "40", str(script), fmt="text")
    assert code == 1
    assert "DL603 [batch-not-overfit] runtime:" in text
    spark = next(line for line in text.splitlines() if line.strip().startswith("loss: "))
    assert any(block in spark for block in "▁▂▃▄▅▆▇█")


def test_a_script_that_ends_before_the_steps_gets_no_verdict(capsys):
    script = str(SCRIPTS / "overfit_sigmoid.py")  # 20 epochs of 8 batches
    code, results, err = trace(capsys, "--overfit-batch", "--steps", "500", script)
    assert code == 2 and results == []
    assert "ended after 160 optimizer steps, before the 500 asked for" in err
    assert "--steps 160" in err


def test_the_overfit_threshold_is_the_users(capsys):
    script = str(SCRIPTS / "overfit_sigmoid.py")
    code, results, err = trace(
        capsys, "--overfit-batch", "--overfit-threshold", "0.999", "--steps", "40", script
    )
    assert (code, results) == (0, [])
    assert "can learn one batch" in err


def test_repeated_batches_are_the_first_batch_fetched_again(tmp_path, capsys):
    script = write(
        tmp_path,
        "seen.py",
        """
import torch
from torch.utils.data import DataLoader, Dataset
class Noisy(Dataset):
    def __len__(self):
        return 40
    def __getitem__(self, i):
        return torch.tensor([float(i)]), torch.rand(1)  # augmentation: fresh noise
w = torch.zeros(1, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.0)
seen, noise = set(), set()
for x, n in DataLoader(Noisy(), batch_size=4, shuffle=True):
    seen.add(tuple(x.flatten().tolist()))
    noise.add(tuple(n.flatten().tolist()))
    loss = ((w - x) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    print("seen", len(seen), len(noise))
    optimizer.step()
""",
    )
    code, results, err = trace(capsys, "--overfit-batch", "--steps", "10", script)
    assert "seen 1 10" in err  # one batch of samples, ten times, each with its own noise
    assert code == 1 and results[0]["code"] == "DL603"
    assert "a learning rate at or below 1e-06 (SGD lr=0)" in results[0]["message"]


def test_batches_not_from_a_dataloader_get_a_message_not_a_verdict(capsys):
    code, results, err = trace(capsys, "--overfit-batch", str(SCRIPTS / "frozen_layers.py"))
    assert code == 2
    assert all(result["code"] != "DL603" for result in results)
    assert "drew none from one" in err and "no verdict" in err


def test_sparkline_and_ranges():
    assert sparkline([4.0, 3.0, 2.0, 1.0], width=4) == "█▆▃▁"
    assert sparkline([2.0] * 3) == "▅▅▅"
    assert len(sparkline(list(map(float, range(200))))) == 40
    ranges = Ranges("mse_loss")
    ranges.widen([0.01, 0.99], [20.0, 130.0])
    assert "reach [20, 130]" in ranges.out_of_reach()
    fine = Ranges("mse_loss")
    fine.widen([-1.5, 2.0], [-1.0, 2.2])
    assert fine.out_of_reach() is None


def test_verdicts_that_cannot_be_given():
    overfit = Overfit()
    finding, line = verdict(overfit, 0, [], str)
    assert finding is None and "drew none" in line
    overfit.loaders = 1
    overfit.curve = [-2.0, -3.0]
    finding, line = verdict(overfit, 2, [], str)
    assert finding is None and "no verdict" in line


# -- every format, the catalog -----------------------------------------------------------
def test_runtime_findings_carry_their_status_in_sarif_and_github(capsys):
    script = str(SCRIPTS / "unused_head.py")
    code, log, _ = trace(capsys, script, fmt="sarif")
    assert code == 1
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "DL602" and result["properties"]["status"] == "runtime"
    (rule,) = log["runs"][0]["tool"]["driver"]["rules"]
    assert rule["name"] == "parameter-without-gradient" and rule["helpUri"].endswith("DL602.md")
    code, text, _ = trace(capsys, script, fmt="github")
    assert code == 1
    assert text.startswith("::error file=") and "::runtime: `aux_head.weight`" in text


def test_rules_lists_the_runtime_codes_and_check_never_reports_them(capsys):
    assert main(["rules"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for code, name in (
        ("DL601", "non-finite-value"),
        ("DL602", "parameter-without-gradient"),
        ("DL603", "batch-not-overfit"),
    ):
        assert name in rows[code] and " run " in rows[code]
        assert main(["explain", code]) == 0
        assert capsys.readouterr().out.startswith(f"# {code} {name}")
    scripts = [str(SCRIPTS / name) for name in ("nan_log_loss.py", "unused_head.py")]
    main(["check", "--no-cache", "--format", "json", *scripts])
    assert not [f for f in json.loads(capsys.readouterr().out) if f["code"].startswith("DL6")]


# -- CUDA, where there is one --------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_checks_never_sync_per_operation_and_still_find_the_log():
    checks = RuntimeChecks()
    with dllint.trace.checking(checks):
        model = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
        ).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(32, 4, device="cuda")
    y = (torch.rand(32, 1, device="cuda") > 0.5).float()
    with dllint.trace.checking(checks):
        torch.cuda.set_sync_debug_mode("error")  # any host sync in the forward raises
        try:
            prob = torch.relu(model(x))
            loss = -(y * torch.log(prob) + (1 - y) * torch.log(1 - prob)).mean()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        optimizer.zero_grad()
        loss.backward()  # the one read of the step
        optimizer.step()
    (found,) = checks.findings()
    assert found.finding.code == "DL601" and "(log)" in found.finding.message
    assert found.finding.line == line_in(__file__, "loss = -(y * torch.log(prob)")
