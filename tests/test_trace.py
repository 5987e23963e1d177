"""The tracer with torch: the recording API, running scripts, and ``dllint trace`` end to
end on the runnable scripts in tests/trace_scripts (synthetic data, CPU, one step)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import dllint.trace  # noqa: E402
from dllint.cli import main  # noqa: E402
from dllint.finding import Finding  # noqa: E402
from dllint.registry import rule_by_code  # noqa: E402
from dllint.runtime.runner import FAILED, FINISHED, STOPPED  # noqa: E402

SCRIPTS = Path(__file__).parent / "trace_scripts"
HERE = str(Path(__file__).resolve())
needs_dl306 = pytest.mark.skipif(
    rule_by_code("DL306") is None, reason="the static rule DL306 is not there yet"
)


def line_of(text: str) -> int:
    """The line of this file that contains ``text`` (once)."""
    lines = Path(HERE).read_text("utf-8").splitlines()
    found = [number for number, line in enumerate(lines, start=1) if text in line]
    assert len(found) == 1, found
    return found[0]


# -- the Python API ----------------------------------------------------------------------
def test_tracing_records_the_broadcast_with_shapes_and_the_users_line():
    pred, y = torch.randn(7, 1), torch.randn(7)
    with dllint.trace.tracing() as t:
        loss = ((pred - y) ** 2).mean()  # the broadcast under test
    assert loss.shape == ()
    (bad,) = t.broadcasts
    assert bad.op == "sub" and bad.operands == ((7, 1), (7,)) and bad.result == (7, 7)
    assert bad.path == HERE and bad.line == line_of("# the broadcast" + " under test")
    assert bad.place.source() == "pred - y"
    assert str(bad).endswith("sub((7, 1), (7,)) -> (7, 7)")
    assert {event.op for event in t.events} == {"sub", "pow"}


def test_tracing_leaves_deliberate_and_matching_broadcasts_alone():
    x, bias = torch.randn(7, 3), torch.randn(3)
    col, row = torch.randn(7, 1), torch.randn(1, 7)
    y = torch.randn(7)
    with dllint.trace.tracing() as t:
        _ = x + bias
        _ = col * row  # an outer product of equal ranks
        _ = (x.argmax(1) == y.long()).float().mean()
        _ = F.mse_loss(col.squeeze(1), y)
        _ = torch.where(y > 0, y, torch.zeros_like(y))
    assert t.broadcasts == []
    assert {event.kind for event in t.events} == {"elementwise", "comparison", "loss", "where"}


@pytest.mark.filterwarnings("ignore:Using a target size")
def test_tracing_sees_losses_comparisons_and_where():
    pred, y = torch.randn(7, 1), torch.randn(7)
    with dllint.trace.tracing() as t:
        nn.MSELoss()(pred, y)
        F.l1_loss(pred, y)
        _ = pred == y
        _ = torch.where(y > 0, pred, y)
    ops = sorted(event.op for event in t.broadcasts)
    assert ops == ["eq", "l1_loss", "mse_loss", "where"]
    mse = next(event for event in t.losses if event.op == "mse_loss")
    assert mse.operands == ((7, 1), (7,)) and mse.broadcast == (7, 7)
    assert mse.line == line_of("nn.MSELoss()(pred" + ", y)")  # the user's call, not torch's


def test_operations_inside_torch_layers_are_not_recorded_as_the_users():
    attention = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(3, 5, 8)
    with dllint.trace.tracing() as t:
        attention(x, x, x)
    assert t.events == []


def test_repeated_operations_are_counted_once():
    a, b = torch.randn(4, 1), torch.randn(4)
    with dllint.trace.tracing() as t:
        for _ in range(5):
            _ = a * b
    (only,) = t.events
    assert only.count == 5 and only.suspicious


def test_tracing_costs_nothing_after_the_block():
    with dllint.trace.tracing() as t:
        pass
    _ = torch.randn(3, 1) - torch.randn(3)
    assert t.events == []


# -- running scripts ---------------------------------------------------------------------
def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return str(path)


LOOP = """
import sys
import torch
model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    print("step", step)
    loss = model(torch.randn(4, 2)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""


def test_the_run_stops_after_the_first_optimizer_step(tmp_path, capsys):
    script = write(tmp_path, "loop.py", LOOP)
    result = dllint.trace.run_script(script)
    assert result.outcome == STOPPED and result.steps == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # the script's prints go to stderr
    assert "step 0" in captured.err and "step 1" not in captured.err


def test_steps_runs_more_optimizer_steps(tmp_path, capsys):
    result = dllint.trace.run_script(write(tmp_path, "loop.py", LOOP), steps=3)
    assert result.outcome == STOPPED and result.steps == 3
    assert "step 2" in capsys.readouterr().err


def test_without_an_optimizer_the_run_stops_after_backward():
    result = dllint.trace.run_script(str(SCRIPTS / "manual_sgd.py"))
    assert result.outcome == STOPPED and result.steps == 0 and result.trace.backwards == 1


def test_the_script_runs_as_main_with_its_arguments_and_folder(tmp_path, capsys):
    write(tmp_path, "helper_mod_for_trace.py", "VALUE = 41\n")
    script = write(
        tmp_path,
        "main.py",
        "import sys\nfrom helper_mod_for_trace import VALUE\n"
        "print(__name__, sys.argv[1:], VALUE + 1, sys.argv[0].endswith('main.py'))\n",
    )
    argv, path = sys.argv[:], sys.path[:]
    result = dllint.trace.run_script(script, ["--epochs", "1", "--"])
    assert result.outcome == FINISHED
    assert "__main__ ['--epochs', '1', '--'] 42 True" in capsys.readouterr().err
    assert sys.argv == argv and sys.path == path
    assert "helper_mod_for_trace" not in sys.modules  # another run imports it afresh


def test_funny_batch_makes_loader_batches_seven(tmp_path):
    script = str(SCRIPTS / "batch_of_one.py")
    plain = dllint.trace.run_script(script)
    assert plain.batch_sizes == {1}
    funny = dllint.trace.run_script(script, funny_batch=True)
    assert funny.batch_sizes == {7}
    assert funny.trace.losses[0].operands == ((7, 1), (7,))


def test_a_failing_script_keeps_the_shapes_of_the_failing_line():
    result = dllint.trace.run_script(str(SCRIPTS / "fixed_batch.py"), funny_batch=True)
    assert result.outcome == FAILED and isinstance(result.exception, RuntimeError)
    assert result.user_frames[-1].lineno == 16
    (failing,) = result.failing_events
    assert failing.op == "linear" and failing.operands[0] == (16, 7)


def test_injected_findings_get_statuses(tmp_path):
    script = str(SCRIPTS / "refuted" / "train.py")
    from dllint.runtime.cli import display_path

    path = display_path(script)
    fake = [
        Finding(path, 21, 16, "DL306", "broadcast-prone-shapes", "suspected", 21, 38),
        Finding(path, 12, 1, "DL306", "broadcast-prone-shapes", "never a tensor op", 12, 2),
    ]
    report = dllint.trace.trace_script(script, findings=fake)
    assert [(t.finding.line, t.status) for t in report.findings] == [
        (12, dllint.trace.NOT_REACHED),
        (21, dllint.trace.REFUTED),
    ]
    assert report.findings[1].event.operands == ((12, 1), (12, 1))
    assert report.exit_code == 0


# -- dllint trace, end to end ------------------------------------------------------------
def trace_json(capsys, *words) -> tuple[int, list[dict], str]:
    code = main(["trace", "--format", "json", *words])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def statuses(results: list[dict]) -> list[tuple[int, str]]:
    return [(item["line"], item["status"]) for item in results]


@needs_dl306
def test_mse_between_a_one_unit_head_and_a_flat_target_is_confirmed(capsys):
    code, results, err = trace_json(capsys, str(SCRIPTS / "mse_unreshaped.py"))
    assert code == 1
    assert statuses(results) == [(19, "confirmed")]
    assert results[0]["shapes"]["operands"] == [[16, 1], [16]]
    assert results[0]["shapes"]["broadcast"] == [16, 16]
    assert "1 confirmed" in err


@needs_dl306
def test_hand_written_squared_error_is_confirmed(capsys):
    code, results, _ = trace_json(capsys, str(SCRIPTS / "handwritten_mse.py"))
    assert code == 1
    assert statuses(results) == [(26, "confirmed")]
    assert results[0]["shapes"]["op"] == "sub"
    assert results[0]["shapes"]["result"] == [32, 32]


@needs_dl306
def test_a_target_made_a_column_in_another_module_refutes_the_suspicion(capsys):
    code, results, _ = trace_json(capsys, str(SCRIPTS / "refuted" / "train.py"))
    assert code == 0
    # the static check may follow standardize_ into prep.py by now and suspect nothing;
    # what it does suspect, the run refutes
    assert statuses(results) in ([], [(21, "refuted")])


def test_a_sample_weighted_loss_with_a_column_of_weights_is_reported(capsys):
    code, results, _ = trace_json(capsys, str(SCRIPTS / "weighted" / "train.py"))
    assert code == 1
    assert [(r["line"], r["status"]) for r in results] in (
        [(16, "runtime")],
        [(16, "confirmed")],
    )
    assert results[0]["shapes"]["operands"] == [[16, 1], [16]]


@pytest.mark.parametrize(
    "script",
    [
        "correct_regression.py",
        "cnn_classifier.py",
        "transformer_block.py",
        "ranking.py",
        "collate_columns/train.py",
    ],
)
def test_correct_scripts_report_nothing(capsys, script):
    code, results, err = trace_json(capsys, str(SCRIPTS / script))
    assert code == 0, err
    assert [r for r in results if r["status"] in ("confirmed", "runtime")] == []


def test_json_keeps_the_finding_schema(capsys):
    _, results, _ = trace_json(capsys, str(SCRIPTS / "weighted" / "train.py"))
    item = results[0]
    keys = ["code", "name", "message", "path", "line", "column", "end_line", "end_column"]
    assert list(item)[: len(keys)] == keys
    assert item["code"] == "DL306" and item["name"] == "broadcast-prone-shapes"
    assert item["path"] == str(Path("tests/trace_scripts/weighted/train.py")) or item[
        "path"
    ].endswith("weighted/train.py")
    assert set(item["shapes"]) == {"op", "operands", "result", "broadcast"}


def test_text_output_and_script_arguments_after_the_double_dash(capsys):
    script = str(SCRIPTS / "with_args.py")
    code = main(["trace", script, "--", "--epochs", "2", "--batch", "5"])
    captured = capsys.readouterr()
    assert code == 1
    assert "arguments 2 5 []" in captured.err  # the script's own print, moved to stderr
    first = captured.out.splitlines()[0]
    assert ":20:12: DL306 [broadcast-prone-shapes] " in first
    assert "l1_loss((5, 1), (5,)) -> (), terms (5, 5)" in captured.out


def test_a_script_that_exits_with_an_error_status_exits_2(capsys):
    code = main(["trace", str(SCRIPTS / "with_args.py")])  # --epochs is required
    assert code == 2
    assert "exited with status 2" in capsys.readouterr().err


@needs_dl306
def test_a_script_that_raises_exits_2_with_the_shapes_of_the_failing_line(capsys):
    code = main(["trace", str(SCRIPTS / "bce_mismatch.py")])
    captured = capsys.readouterr()
    assert code == 2
    assert "raised ValueError" in captured.err
    assert "traced shapes on" in captured.err
    assert "binary_cross_entropy((10, 1), (10,)) -> raised" in captured.err
    assert "confirmed" in captured.out  # the finding on the failing line


def test_funny_batch_names_the_batch_in_the_error(capsys):
    code = main(["trace", "--funny-batch", str(SCRIPTS / "fixed_batch.py")])
    err = capsys.readouterr().err
    assert code == 2
    assert "linear((16, 7), (3, 16), (3,)) -> raised" in err
    assert "7 is the batch size --funny-batch gave the DataLoaders" in err


@needs_dl306
def test_a_batch_of_one_warns_and_cannot_refute(capsys):
    code, results, err = trace_json(capsys, str(SCRIPTS / "batch_of_one.py"))
    assert "the traced batch size was 1" in err
    assert statuses(results) == [(17, "confirmed")]
    assert code == 1
    code, results, err = trace_json(capsys, "--funny-batch", str(SCRIPTS / "batch_of_one.py"))
    assert "batch size was 1" not in err
    assert results[0]["shapes"]["operands"] == [[7, 1], [7]]
