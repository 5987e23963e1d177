"""Run, check, match, print: the body of ``dllint trace`` (imports torch)."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dllint.engine import check_file
from dllint.finding import Finding
from dllint.registry import select_rules
from dllint.report import FORMATTERS
from dllint.report.sarif import sarif_log
from dllint.runtime.checks import RuntimeChecks
from dllint.runtime.cli import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, display_path
from dllint.runtime.codes import NO_GRADIENT, NON_FINITE
from dllint.runtime.compiled import NOTE as COMPILED_NOTE
from dllint.runtime.findings import RuntimeFinding
from dllint.runtime.nonfinite import learning_rates
from dllint.runtime.overfit import TINY_LEARNING_RATE, Overfit, verdict
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
    """A traced run: its DL306 findings, each with a status, and the runtime findings
    (DL601-DL603). ``overfit_line`` is the --overfit-batch verdict in one line."""

    run: RunResult
    findings: list[TracedFinding]
    runtime: list[RuntimeFinding] = field(default_factory=list)
    overfit_line: str | None = None
    overfit_judged: bool = True  # False: --overfit-batch could not judge (no DataLoader...)

    @property
    def alarms(self) -> list[TracedFinding]:
        return [traced for traced in self.findings if traced.status in ALARMS]

    @property
    def exit_code(self) -> int:
        if self.run.outcome == FAILED or not self.overfit_judged:
            return EXIT_ERROR
        return EXIT_FINDINGS if self.alarms or self.runtime else EXIT_CLEAN

    def ordered(self) -> list[TracedFinding | RuntimeFinding]:
        """Every finding, DL306 and runtime, in the order of the code."""
        return sorted([*self.findings, *self.runtime], key=lambda t: t.finding.sort_key())


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
    runtime_checks: bool = True,
    overfit: float | None = None,
) -> TraceReport:
    """Run ``script`` for ``steps`` optimizer steps and give every DL306 finding a status.

    ``findings`` replaces the static check (for tests, or findings computed elsewhere).
    ``runtime_checks``: DL601 and DL602 along the run. ``overfit``: repeat the first
    DataLoader batch and report DL603 unless the loss falls below this share of its
    first value (``dllint trace --overfit-batch``).
    """
    checker = Overfit(overfit) if overfit is not None else None
    checks = RuntimeChecks(display_path, runtime_checks, runtime_checks, checker)
    run = run_script(script, argv, steps, funny_batch, checks)
    static = static_findings(run) if findings is None else list(findings)
    traced = TraceReport(run, assign(static, run.trace.events, display_path))
    traced.runtime = checks.findings()
    if checker is not None and run.outcome != FAILED:
        taken = run.steps or run.trace.backwards  # by hand: backward() calls
        reasons = _reasons(checks, traced.runtime)
        finding, line = verdict(checker, taken, reasons, display_path, steps)
        traced.overfit_line = line
        traced.overfit_judged = finding is not None or checker.reached
        if finding is not None:
            traced.runtime.append(finding)
    return traced


def _reasons(checks: RuntimeChecks, found: list[RuntimeFinding]) -> list[str]:
    """What the run saw that keeps a model from learning one batch."""
    reasons = []
    for runtime in found:
        code = runtime.finding.code
        if code == NON_FINITE.code:
            reasons.append(f"a non-finite value (DL601 at line {runtime.finding.line})")
        elif code == NO_GRADIENT.code:
            line = runtime.finding.line
            reasons.append(f"parameters without gradient or optimizer (DL602 at line {line})")
    for optimizer in checks.optimizers():
        rates = [group.get("lr") for group in optimizer.param_groups]
        if rates and all(isinstance(r, (int, float)) and r <= TINY_LEARNING_RATE for r in rates):
            rate = learning_rates(optimizer)
            reasons.append(f"a learning rate at or below {TINY_LEARNING_RATE:g} ({rate})")
    if checks.overfit is not None:
        for ranges in checks.overfit.ranges.values():
            reach = ranges.out_of_reach()
            if reach:
                reasons.append(reach)
    return reasons


def report(
    script: str,
    argv: Sequence[str],
    steps: int,
    funny_batch: bool,
    fmt: str,
    overfit: float | None = None,
) -> int:
    traced = trace_script(script, argv, steps, funny_batch, overfit=overfit)
    out = FORMATS[fmt](traced)
    try:
        sys.stdout.write(out)
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.stderr.write(summary(traced))
    return traced.exit_code


def format_text(findings: list[TracedFinding | RuntimeFinding]) -> str:
    """``path:line:col: CODE [name] status: message``, then the traced shapes (DL306)
    or the extra lines of a runtime finding (DL603's loss curve)."""
    lines = []
    for traced in findings:
        f = traced.finding
        where = f"{f.path}:{f.line}:{f.column}"
        lines.append(f"{where}: {f.code} [{f.name}] {_status(traced)}: {f.message}")
        if isinstance(traced, RuntimeFinding):
            lines.extend(f"    {line}" for line in traced.lines)
        elif traced.event is not None:
            lines.append(f"    traced: {traced.event.describe()}")
    return "".join(line + "\n" for line in lines)


def _status(traced: TracedFinding | RuntimeFinding) -> str:
    return RUNTIME if isinstance(traced, RuntimeFinding) else traced.status


def to_json(traced: TracedFinding | RuntimeFinding) -> dict:
    """The finding in ``dllint check --format json``'s schema, plus ``status`` (and for
    DL306 the traced ``shapes``, for DL603 the ``loss_curve``)."""
    if isinstance(traced, TracedFinding):
        return traced.to_json()
    data = traced.finding.to_json()
    data["status"] = RUNTIME
    data.update(traced.details)
    return data


def _text(traced: TraceReport) -> str:
    return format_text(traced.ordered())


def _json(traced: TraceReport) -> str:
    return json.dumps([to_json(t) for t in traced.ordered()], indent=2) + "\n"


def _sarif(traced: TraceReport) -> str:
    """SARIF with each result's status in its ``properties``."""
    ordered = traced.ordered()
    log = sarif_log([t.finding for t in ordered])
    for result, t in zip(log["runs"][0]["results"], ordered, strict=True):
        result.setdefault("properties", {})["status"] = _status(t)
    return json.dumps(log, indent=2) + "\n"


def _github(traced: TraceReport) -> str:
    """GitHub annotations; the message starts with the status."""
    from dataclasses import replace

    ordered = traced.ordered()
    return FORMATTERS["github"](
        [replace(t.finding, message=f"{_status(t)}: {t.finding.message}") for t in ordered]
    )


FORMATS = {"text": _text, "json": _json, "sarif": _sarif, "github": _github}


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
    if traced.runtime or traced.run.checks is not None:
        parts.append(_runtime_summary(traced))
    if run.compiled_calls:
        parts.append(f"dllint trace: note: {COMPILED_NOTE}; the eager code around it was.\n")
    if traced.overfit_line:
        parts.append(f"dllint trace: {traced.overfit_line}\n")
    if run.batch_sizes and max(run.batch_sizes) == 1:
        parts.append(
            "dllint trace: warning: the traced batch size was 1, which hides (N, 1) against "
            "(N,): both are one element. Run again with --funny-batch or a larger batch.\n"
        )
    return "".join(parts)


def _runtime_summary(traced: TraceReport) -> str:
    counts = {}
    for runtime in traced.runtime:
        counts[runtime.finding.code] = counts.get(runtime.finding.code, 0) + 1
    checks = traced.run.checks
    ran = []
    if checks is not None and checks.nonfinite is not None:
        ran.append(f"DL601 {counts.get('DL601', 0)}")
    if checks is not None and checks.gradients is not None:
        ran.append(f"DL602 {counts.get('DL602', 0)}")
    if checks is not None and checks.overfit is not None:
        ran.append(f"DL603 {counts.get('DL603', 0)}")
    if not ran:
        return ""
    return f"dllint trace: runtime checks: {', '.join(ran)}.\n"


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
