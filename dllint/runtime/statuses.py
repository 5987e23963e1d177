"""Static DL306 findings meet the traced events: confirmed, refuted, not reached, and the
suspicious broadcasts only the run revealed. No torch here.

A finding is matched with the events whose code span lies inside the finding's span
(the loss call, the arithmetic expression), in the same file.

- ``confirmed``: one of them was suspicious (see ``dllint.runtime.shapes``), or would
  have been with a batch larger than the one it ran with (``(1, 1)`` against ``(1,)``);
- ``refuted``: some ran, none was suspicious: the real shapes fit;
- ``not-reached``: no torch operation of that span ran during the traced step (the
  line did not run, or it works on something the tracer does not see, like NumPy);
- ``runtime``: a suspicious event in the user's code that no static finding covers.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from dllint.finding import Finding
from dllint.runtime.events import LOSS, Event
from dllint.runtime.shapes import text

CODE, NAME = "DL306", "broadcast-prone-shapes"
CONFIRMED, REFUTED, NOT_REACHED, RUNTIME = "confirmed", "refuted", "not-reached", "runtime"
ALARMS = frozenset({CONFIRMED, RUNTIME})


@dataclass(frozen=True)
class TracedFinding:
    """A DL306 finding with what the run said about it."""

    finding: Finding
    status: str
    event: Event | None = None  # the traced operation behind the status

    def to_json(self) -> dict:
        data = self.finding.to_json()
        data["status"] = self.status
        data["shapes"] = self.event.shapes_json() if self.event is not None else None
        return data


def assign(
    findings: Iterable[Finding],
    events: Iterable[Event],
    display: Callable[[str], str] = lambda path: path,
) -> list[TracedFinding]:
    """Give each DL306 finding its status, and add the runtime-only findings.

    ``display`` turns an event's path into the path findings use (relative to the
    working folder, usually); the static findings' paths must already be in that form.
    """
    events = list(events)
    results, covered = [], set()
    for finding in findings:
        if finding.code != CODE:
            continue
        inside = [event for event in events if _inside(event, finding, display)]
        covered.update(inside)
        results.append(_status(finding, inside))
    seen_places = set()
    for event in events:
        if event in covered or not event.suspicious or event.place in seen_places:
            continue
        if deliberate(event):
            continue
        seen_places.add(event.place)
        results.append(TracedFinding(runtime_finding(event, display(event.path)), RUNTIME, event))
    results.sort(key=lambda traced: traced.finding.sort_key())
    return results


def _inside(event: Event, finding: Finding, display: Callable[[str], str]) -> bool:
    if os.path.abspath(display(event.path)) != os.path.abspath(finding.path):
        return False
    place = event.place
    return place.within(
        place.path, finding.line, finding.column, finding.end_line, finding.end_column
    )


def _status(finding: Finding, inside: list[Event]) -> TracedFinding:
    suspicious = [event for event in inside if event.suspicious]
    # A batch of one cannot refute: (1, 1) against (1,) is the same bug, one sample wide.
    suspicious = suspicious or [event for event in inside if event.hidden_by_batch_of_one]
    if suspicious:
        seen = suspicious[0]
        message = (
            f"{_without_hint(finding.message)} `dllint trace` confirmed it: {seen.describe()}."
        )
        return TracedFinding(replace(finding, message=message), CONFIRMED, seen)
    if inside:
        message = f"{_without_hint(finding.message)} `dllint trace` saw no broadcast here."
        return TracedFinding(replace(finding, message=message), REFUTED, _outermost(inside))
    return TracedFinding(finding, NOT_REACHED)


TRACE_HINT = " Run `dllint trace` to confirm."


def _without_hint(message: str) -> str:
    """The static message less its advice to run the tracer, which has now run."""
    return message[: -len(TRACE_HINT)] if message.endswith(TRACE_HINT) else message


def _outermost(events: list[Event]) -> Event:
    """The flagged operation itself: the loss, else the widest expression."""
    losses = [event for event in events if event.kind == LOSS]
    if losses:
        return losses[0]

    def width(event: Event) -> tuple:
        place = event.place
        return ((place.end_line or place.line) - place.line, place.end_column - place.column)

    return max(events, key=width)


EXPANDING = frozenset({"unsqueeze", "view", "reshape", "expand", "expand_as", "outer"})


def deliberate(event: Event) -> bool:
    """The expression expands one side on the spot: ``s.unsqueeze(1) - s``,
    ``a[:, None] * b``: a pairwise matrix written on purpose (ranking losses, distances).
    The static rule leaves these alone too."""
    if event.kind == LOSS or not event.place.column:
        return False
    try:
        tree = ast.parse(event.place.source(), mode="eval").body
    except SyntaxError:
        return False
    if isinstance(tree, ast.BinOp):
        sides = [tree.left, tree.right]
    elif isinstance(tree, ast.Compare):
        sides = [tree.left, *tree.comparators]
    elif isinstance(tree, ast.Call):
        sides = [*tree.args]
        if isinstance(tree.func, ast.Attribute):
            sides.append(tree.func.value)
    else:
        return False
    return any(_expanded(side) for side in sides)


def _expanded(node: ast.AST) -> bool:
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in EXPANDING:
            return True
        node = node.func.value
    if isinstance(node, ast.Subscript):
        index = node.slice
        parts = index.elts if isinstance(index, ast.Tuple) else [index]
        return any(isinstance(part, ast.Constant) and part.value is None for part in parts)
    return False


def runtime_finding(event: Event, path: str) -> Finding:
    """A DL306 finding for a suspicious event that static analysis did not see."""
    place = event.place
    return Finding(
        path=path,
        line=place.line,
        column=place.column or 1,
        code=CODE,
        name=NAME,
        message=runtime_message(event),
        end_line=place.end_line or place.line,
        end_column=place.end_column or 1,
    )


def runtime_message(event: Event) -> str:
    source = " ".join(event.place.source().split())
    source = source if len(source) <= 60 else source[:57] + "..."
    if event.kind == LOSS:
        first, second = (text(shape) for shape in event.operands[:2])
        return (
            f"`{source}` ({event.op}) got input {first} and target {second} during the traced "
            f"step; they broadcast to {text(event.broadcast)} terms, so the loss is finite but "
            "meaningless; give both the same shape (`target.view_as(input)`, or squeeze the "
            "one-unit output with `.squeeze(1)`)."
        )
    shapes = " and ".join(text(shape) for shape in event.operands if shape)
    return (
        f"`{source}` ({event.op}) turned {shapes} into {text(event.result)} during the traced "
        f"step: the size {event.crossed} (the batch, most likely) met itself on two axes, so "
        "every sample was combined with every other; give both sides the same shape "
        "(`.squeeze(1)` on the column or `.unsqueeze(1)` on the flat one)."
    )
