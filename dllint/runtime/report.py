"""Run, check, match, print: the body of ``dllint trace`` (imports torch)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dllint.engine import check_file
from dllint.finding import Finding
from dllint.registry import select_rules
from dllint.runtime.cli import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, display_path, dump_json
from dllint.runtime.runner import FAILED, FUNNY_BATCH, STOPPED, RunResult, run_script
from dllint.runtime.statuses import (
    ALARMS,
    CONFIRMED,
    NOT_REACHED,
    REFUTED,
    RUNTIME,
    TracedFinding,
    assign,
)


@dataclass
class TraceReport:
    """A traced run and its DL306 findings, each with a status."""

    run: RunResult
    findings: list[TracedFinding]

    @property
    def alarms(self) -> list[TracedFinding]:
        return [traced for traced in self.findings if traced.status in ALARMS]

    @property
    def exit_code(self) -> int:
        if self.run.outcome == FAILED:
            return EXIT_ERROR
        return EXIT_FINDINGS if self.alarms else EXIT_CLEAN


def static_findings(run: RunResult) -> list[Finding]:
    """DL306 on the script and on every file of the user's the run recorded something in."""
    rules = select_rules(["DL306"])
    if not rules:
        return []
    files = {run.script} | {os.path.abspath(path) for path in run.trace.files}
    findings = []
    for path in sorted(files):
        if path.endswith(".py") and os.path.isfile(path):
            findings.extend(check_file(display_path(path), rules))
    return [finding for finding in findings if finding.code == "DL306"]


def trace_script(
    script: str,
    argv: Sequence[str] = (),
    steps: int = 1,
    funny_batch: bool = False,
    findings: Iterable[Finding] | None = None,
) -> TraceReport:
    """Run ``script`` for ``steps`` optimizer steps and give every DL306 finding a status.

    ``findings`` replaces the static check (for tests, or findings computed elsewhere).
    """
    run = run_script(script, argv, steps, funny_batch)
    static = static_findings(run) if findings is None else list(findings)
    return TraceReport(run, assign(static, run.trace.events, display_path))


def report(script: str, argv: Sequence[str], steps: int, funny_batch: bool, fmt: str) -> int:
    traced = trace_script(script, argv, steps, funny_batch)
    out = dump_json(traced.findings) if fmt == "json" else format_text(traced.findings)
    try:
        sys.stdout.write(out)
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.stderr.write(summary(traced))
    return traced.exit_code


def format_text(findings: list[TracedFinding]) -> str:
    """``path:line:col: DL306 [name] status: message``, then the traced shapes."""
    lines = []
    for traced in findings:
        f = traced.finding
        where = f"{f.path}:{f.line}:{f.column}"
        lines.append(f"{where}: {f.code} [{f.name}] {traced.status}: {f.message}")
        if traced.event is not None:
            lines.append(f"    traced: {traced.event.describe()}")
    return "".join(line + "\n" for line in lines)


def summary(traced: TraceReport) -> str:
    """What ran, the counts, the warnings, and the error if the script failed (stderr)."""
    run = traced.run
    parts = []
    if run.outcome == FAILED:
        parts.append(failure_text(run))
    counts = {status: 0 for status in (CONFIRMED, REFUTED, NOT_REACHED, RUNTIME)}
    for finding in traced.findings:
        counts[finding.status] += 1
    how = {
        STOPPED: f"stopped after {_steps(run)}",
        FAILED: "the script failed",
    }.get(run.outcome, f"the script finished ({_steps(run)})")
    parts.append(
        f"dllint trace: {how} in {run.seconds:.1f} s; DL306: {counts[CONFIRMED]} confirmed, "
        f"{counts[REFUTED]} refuted, {counts[NOT_REACHED]} not reached, "
        f"{counts[RUNTIME]} found only at run time.\n"
    )
    if run.batch_sizes and max(run.batch_sizes) == 1:
        parts.append(
            "dllint trace: warning: the traced batch size was 1, which hides (N, 1) against "
            "(N,): both are one element. Run again with --funny-batch or a larger batch.\n"
        )
    return "".join(parts)


def _steps(run: RunResult) -> str:
    if run.steps:
        return f"{run.steps} optimizer step{'s' * (run.steps != 1)}"
    backwards = run.trace.backwards
    return f"{backwards} backward() call{'s' * (backwards != 1)}, no optimizer step"


def failure_text(run: RunResult) -> str:
    """The script's exception, its frames in the user's code, and the traced shapes of
    the line that raised, so each number in the message can be traced to its tensor."""
    script = display_path(run.script)
    exc = run.exception
    if run.exit_status is not None:
        return f"dllint trace: {script} exited with status {run.exit_status}.\n"
    lines = [f"dllint trace: {script} raised {type(exc).__name__}: {exc}"]
    if run.user_frames:
        lines.append("Traceback (the script's own frames):")
        for entry in traceback.format_list(run.user_frames):
            lines.append(entry.rstrip("\n").replace(run.script, script))
        last = run.user_frames[-1]
        events = run.failing_events
        if events:
            lines.append(f"traced shapes on {display_path(last.filename)}:{last.lineno}:")
            lines.extend(f"    {event.describe()}" for event in events)
    if run.funny_batch:
        lines.append(f"({FUNNY_BATCH} is the batch size --funny-batch gave the DataLoaders.)")
    return "\n".join(lines) + "\n"
