"""``dllint trace``: run one training step, then confirm or refute the DL306 findings and
report what only the run shows (DL601 non-finite values, DL602 parameters without
gradient, DL603 with ``--overfit-batch``).

This module is imported by ``dllint.cli`` to build the parser, so it must not import
torch: the runner is imported only when the command runs, after checking that torch
is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
INSTALL = 'dllint trace needs PyTorch: pip install "dllint[trace]"'
FORMATS = ("text", "json", "sarif", "github")
OVERFIT_STEPS = 200
OVERFIT_THRESHOLD = 0.1


class TraceUsageError(Exception):
    """A ``dllint trace`` command line that cannot run."""


def add_trace_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dllint trace SCRIPT [options] [-- SCRIPT_ARGS...]``.

    Everything from SCRIPT on is taken verbatim (argparse would drop a ``--`` the
    script itself may need) and split by ``split_command``.
    """
    parser.usage = (
        "%(prog)s SCRIPT [--format {text,json,sarif,github}] [--steps N] [--funny-batch] "
        "[--overfit-batch [--overfit-threshold F]] [-- SCRIPT_ARGS ...]"
    )
    parser.description = (
        "Run SCRIPT (it executes your code) until its first optimizer step, recording "
        "the shapes of elementwise operations and losses, then mark each DL306 finding "
        "confirmed, refuted or not-reached, and report the first NaN/inf (DL601) and "
        "parameters without gradient (DL602). With --overfit-batch, train on one "
        "repeated batch and report DL603 if the loss does not fall. Arguments for SCRIPT "
        "go after `--`."
    )
    _add_options(parser)
    parser.add_argument(
        "command_line", nargs=argparse.REMAINDER, metavar="SCRIPT [-- SCRIPT_ARGS ...]"
    )


def _add_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--format", choices=FORMATS, default=default or "text")
    parser.add_argument(
        "--steps",
        type=_positive,
        default=default,
        metavar="N",
        help=f"optimizer steps to run before stopping (default 1, {OVERFIT_STEPS} "
        "with --overfit-batch)",
    )
    parser.add_argument(
        "--funny-batch",
        action="store_true",
        default=default or False,
        help="make DataLoader batches 7 long, so the batch axis cannot hide behind another",
    )
    parser.add_argument(
        "--overfit-batch",
        action="store_true",
        default=default or False,
        help="every DataLoader repeats its first batch; report DL603 unless the loss "
        "falls below a tenth of its first value",
    )
    parser.add_argument(
        "--overfit-threshold",
        type=_share,
        default=default,
        metavar="F",
        help=f"with --overfit-batch: the share of the first loss to fall below "
        f"(default {OVERFIT_THRESHOLD})",
    )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _share(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1 (0.1 is a tenth)")
    return number


class _OptionsParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise TraceUsageError(message)


def split_command(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(script, script arguments); options between SCRIPT and ``--`` update ``args``."""
    words = list(args.command_line)
    if words and words[0] == "--":
        words = words[1:]
        if not words:
            raise TraceUsageError("missing SCRIPT")
        return words[0], words[1:]
    if not words:
        raise TraceUsageError("missing SCRIPT (dllint trace SCRIPT [-- SCRIPT_ARGS ...])")
    script, rest = words[0], words[1:]
    if "--" in rest:
        cut = rest.index("--")
        options, script_args = rest[:cut], rest[cut + 1 :]
    else:
        options, script_args = rest, []
    if options:
        parser = _OptionsParser(prog="dllint trace", add_help=False)
        _add_options(parser, suppress=True)
        _, unknown = parser.parse_known_args(options, namespace=args)
        if unknown:
            raise TraceUsageError(
                f"unrecognized arguments: {' '.join(unknown)} "
                "(arguments for the script go after `--`)"
            )
    return script, script_args


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def run_trace(args: argparse.Namespace) -> int:
    """``dllint trace``: exit 1 if anything is confirmed or found at run time, 0 when
    nothing is, 2 when the script could not run (or torch is missing)."""
    try:
        script, script_args = split_command(args)
    except TraceUsageError as exc:
        print(f"dllint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not os.path.isfile(script):  # before torch: a typo is reported the same everywhere
        print(f"dllint: error: {script}: no such file", file=sys.stderr)
        return EXIT_ERROR
    if not torch_available():
        print(f"dllint: error: {INSTALL}", file=sys.stderr)
        return EXIT_ERROR
    overfit = getattr(args, "overfit_batch", False)
    threshold = getattr(args, "overfit_threshold", None)
    if threshold is not None and not overfit:
        print("dllint: error: --overfit-threshold needs --overfit-batch", file=sys.stderr)
        return EXIT_ERROR
    steps = args.steps or (OVERFIT_STEPS if overfit else 1)
    from dllint.runtime.report import report

    share = (threshold or OVERFIT_THRESHOLD) if overfit else None
    return report(script, script_args, steps, args.funny_batch, args.format, share)


def display_path(path: str) -> str:
    """A path as findings show it: relative to the working folder when inside it."""
    path = os.path.abspath(path)
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith(os.pardir) else relative
