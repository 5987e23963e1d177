"""The tracer's logic that needs no torch: what is suspicious, how static findings get
their status, how ``dllint trace`` splits its command line, and the message without torch."""

from __future__ import annotations

import argparse

import pytest

import dllint.runtime.cli as trace_cli
from dllint.cli import main
from dllint.finding import Finding
from dllint.runtime.events import ELEMENTWISE, LOSS, Event, Place
from dllint.runtime.shapes import (
    broadcast,
    crossing,
    suspicious_broadcast,
    suspicious_loss,
    text,
)
from dllint.runtime.statuses import (
    CONFIRMED,
    NOT_REACHED,
    REFUTED,
    RUNTIME,
    assign,
    deliberate,
)


# -- shapes ------------------------------------------------------------------------------
def test_broadcast_follows_torch_rules():
    assert broadcast((7, 1), (7,)) == (7, 7)
    assert broadcast((4, 3), (3,)) == (4, 3)
    assert broadcast((4, 3), None) == (4, 3)
    assert broadcast((4, 3), (4,)) is None


@pytest.mark.parametrize(
    ("first", "second", "crossed"),
    [
        ((7, 1), (7,), 7),  # the DL306 bug
        ((7,), (7, 1), 7),  # the reverse
        ((7, 1, 1), (7, 1), 7),  # one more axis, same bug
        ((7, 3), (3,), None),  # a bias: the axes line up
        ((7, 1), (1, 7), None),  # an outer product of equal ranks: deliberate
        ((7, 1), (5,), None),  # (7, 5): a different size, not the batch met with itself
        ((2, 8, 8), (8, 8), None),  # a mask broadcast over the batch
    ],
)
def test_crossing(first, second, crossed):
    assert crossing(first, second) == crossed


def test_suspicious_broadcast_checks_every_pair_and_ignores_numbers():
    assert suspicious_broadcast([(7,), (7, 1), None]) == 7  # torch.where(cond, col, 0.0)
    assert suspicious_broadcast([(7, 1), None]) is None
    assert suspicious_broadcast([(7, 1), (5,), (3,)]) is None  # does not even broadcast


@pytest.mark.parametrize(
    ("input_shape", "target_shape", "expected"),
    [
        ((7, 1), (7,), True),
        ((7,), (7, 1), True),
        ((7, 1), (7, 1), False),
        ((1, 7), (7,), False),  # the same seven terms
        ((7, 3), (3,), False),  # every row against one vector: no more terms than rows
        ((5,), (3,), True),  # torch refuses: the run fails and shows the shapes
        ((7, 1), None, False),
    ],
)
def test_suspicious_loss(input_shape, target_shape, expected):
    assert suspicious_loss(input_shape, target_shape) is expected


def test_shape_text():
    assert text((7, 1)) == "(7, 1)"
    assert text((7,)) == "(7,)"
    assert text(()) == "()"
    assert text(None) == "scalar"


# -- events ------------------------------------------------------------------------------
def event(operands, result=None, kind=ELEMENTWISE, op="sub", place=None):
    place = place or Place("train.py", 10, 12, 10, 25)
    return Event(kind, op, place, tuple(operands), result)


def test_event_suspicion_and_description():
    bad = event([(7, 1), (7,)], (7, 7))
    assert bad.suspicious and bad.crossed == 7
    assert bad.describe() == "sub((7, 1), (7,)) -> (7, 7)"
    assert not event([(7, 1), (1, 7)], (7, 7), op="mul").suspicious
    loss = event([(7, 1), (7,)], (), kind=LOSS, op="mse_loss")
    assert loss.suspicious
    assert loss.describe() == "mse_loss((7, 1), (7,)) -> (), terms (7, 7)"
    assert loss.shapes_json() == {
        "op": "mse_loss",
        "operands": [[7, 1], [7]],
        "result": [],
        "broadcast": [7, 7],
    }


def test_a_batch_of_one_hides_the_bug_but_is_noticed():
    hidden = event([(1, 1), (1,)], (1, 1), kind=LOSS, op="mse_loss")
    assert not hidden.suspicious
    assert hidden.hidden_by_batch_of_one
    assert not event([(1, 1), (1, 1)], (), kind=LOSS).hidden_by_batch_of_one
    assert not event([(1, 3), (3,)], (1, 3)).hidden_by_batch_of_one  # a bias again


def test_place_within_a_span():
    place = Place("train.py", 10, 12, 10, 25)
    assert place.within("train.py", 10, 5, 10, 30)
    assert place.within("train.py", 9, 1, 11, 1)
    assert not place.within("train.py", 10, 13, 10, 30)
    assert not place.within("other.py", 10, 5, 10, 30)
    assert Place("train.py", 10).within("train.py", 10, 5, 10, 30)  # no columns: by line


# -- statuses ----------------------------------------------------------------------------
def finding(line, column=1, end_column=80, code="DL306", path="train.py"):
    return Finding(path, line, column, code, "broadcast-prone-shapes", "msg", line, end_column)


def test_statuses_confirmed_refuted_not_reached_and_runtime():
    events = [
        event([(7, 1), (7,)], (7, 7), place=Place("train.py", 10, 12, 10, 25)),
        event(
            [(7, 1), (7, 1)], (), kind=LOSS, op="mse_loss", place=Place("train.py", 20, 5, 20, 30)
        ),
        event([(7, 1), (7,)], (7, 7), op="mul", place=Place("train.py", 40, 8, 40, 20)),
        event([(7,), None], (7,), op="mul", place=Place("train.py", 50, 8, 50, 20)),
    ]
    static = [finding(10), finding(20), finding(30), finding(60, code="DL401")]
    results = assign(static, events)
    statuses = [(t.finding.line, t.status) for t in results]
    assert statuses == [(10, CONFIRMED), (20, REFUTED), (30, NOT_REACHED), (40, RUNTIME)]
    confirmed, refuted, not_reached, runtime = results
    assert confirmed.event.operands == ((7, 1), (7,))
    assert refuted.to_json()["shapes"]["operands"] == [[7, 1], [7, 1]]
    assert not_reached.to_json()["shapes"] is None
    assert runtime.finding.code == "DL306" and runtime.finding.column == 8
    assert "(7, 1) and (7,) into (7, 7)" in runtime.finding.message
    assert runtime.to_json()["status"] == RUNTIME


def test_a_finding_matches_only_events_inside_its_span():
    outside = event([(7, 1), (7,)], (7, 7), place=Place("train.py", 10, 40, 10, 52))
    results = assign([finding(10, column=5, end_column=30)], [outside])
    assert [t.status for t in results] == [NOT_REACHED, RUNTIME]


def test_paths_are_compared_in_display_form():
    ran = event([(7, 1), (7,)], (7, 7), place=Place("/abs/project/train.py", 10, 12, 10, 25))
    results = assign([finding(10)], [ran], display=lambda path: "train.py")
    assert [t.status for t in results] == [CONFIRMED]


def test_refuted_shows_the_flagged_operation_not_a_nested_one():
    inner = event([(7,), None], (7,), op="mul", place=Place("train.py", 10, 20, 10, 25))
    outer = event([(7, 1), (7, 1)], (7, 1), place=Place("train.py", 10, 12, 10, 26))
    (traced,) = assign([finding(10)], [inner, outer])
    assert traced.status == REFUTED and traced.event is outer


def test_runtime_findings_skip_expansions_written_on_purpose(tmp_path):
    source = tmp_path / "rank.py"
    source.write_text(
        "margins = 1.0 - (scores.unsqueeze(1) - scores)\nloss = (w * per_sample).mean()\n"
    )
    path = str(source)
    pairwise = event([(5, 1), (5,)], (5, 5), place=Place(path, 1, 18, 1, 46))
    weighted = event([(5, 1), (5,)], (5, 5), op="mul", place=Place(path, 2, 9, 2, 23))
    assert deliberate(pairwise) and not deliberate(weighted)
    results = assign([], [pairwise, weighted])
    assert [(t.finding.line, t.status) for t in results] == [(2, RUNTIME)]
    assert "`w * per_sample` (mul)" in results[0].finding.message


# -- the command line --------------------------------------------------------------------
def parse(*words):
    args = argparse.Namespace(command_line=list(words), format="text", steps=1, funny_batch=False)
    script, script_args = trace_cli.split_command(args)
    return script, script_args, args


def test_script_arguments_go_after_the_double_dash():
    assert parse("train.py")[:2] == ("train.py", [])
    assert parse("train.py", "--", "--epochs", "1")[:2] == ("train.py", ["--epochs", "1"])
    # a second ``--`` belongs to the script
    assert parse("train.py", "--", "-x", "--", "y")[1] == ["-x", "--", "y"]
    script, script_args, args = parse(
        "train.py", "--format", "json", "--steps", "3", "--funny-batch", "--", "--steps", "9"
    )
    assert (args.format, args.steps, args.funny_batch) == ("json", 3, True)
    assert script_args == ["--steps", "9"]


def test_unknown_options_before_the_double_dash_are_usage_errors():
    with pytest.raises(trace_cli.TraceUsageError, match="go after `--`"):
        parse("train.py", "--epochs", "1")
    with pytest.raises(trace_cli.TraceUsageError):
        parse("train.py", "--steps", "0")
    with pytest.raises(trace_cli.TraceUsageError, match="missing SCRIPT"):
        parse()


def test_the_parser_keeps_the_double_dash_for_the_script():
    from dllint.cli import build_parser

    args = build_parser().parse_args(["trace", "--steps", "2", "t.py", "--", "--epochs", "1"])
    assert args.command == "trace" and args.steps == 2
    assert trace_cli.split_command(args) == ("t.py", ["--epochs", "1"])


def test_without_torch_trace_exits_2_and_says_how_to_install(monkeypatch, capsys, tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print('hello')\n")
    monkeypatch.setattr(trace_cli, "torch_available", lambda: False)
    assert main(["trace", str(script)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert 'pip install "dllint[trace]"' in err


def test_missing_script_exits_2(capsys, tmp_path):
    assert main(["trace", str(tmp_path / "absent.py")]) == 2
    assert "no such file" in capsys.readouterr().err
