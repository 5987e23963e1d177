"""The ``dllint`` command: check, rules, explain."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from dllint import __version__
from dllint.engine import check_paths
from dllint.registry import all_rules, rule_by_code, select_rules
from dllint.report import FORMATTERS

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

ENGINE_CODES = (
    ("DL001", "parse-error", "the file could not be read or parsed; it was skipped"),
    ("DL002", "internal-error", "a rule failed on the file; the other rules' findings stand"),
)


def _codes(value: str) -> list[str]:
    return [part.strip().upper() for part in value.split(",") if part.strip()]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2, as documented
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"dllint: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dllint", description="Find the silent bugs of deep-learning training code.")
    parser.add_argument("--version", action="version", version=f"dllint {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    check = commands.add_parser("check", help="check files or folders")
    check.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    check.add_argument("--select", type=_codes, help="codes or prefixes to check (e.g. DL4,DL301)")
    check.add_argument("--ignore", type=_codes, help="codes or prefixes to skip")
    check.add_argument("--format", choices=sorted(FORMATTERS), default="text")
    check.add_argument("--verbose", action="store_true", help="show tracebacks of rule failures")

    commands.add_parser("rules", help="list the rules")
    explain = commands.add_parser("explain", help="print a rule's documentation")
    explain.add_argument("code")
    return parser


def _rules_table() -> str:
    rows = [(r.code, r.name, r.summary) for r in all_rules()] + list(ENGINE_CODES)
    rows.sort()
    width = max(len(name) for _, name, _ in rows)
    return "".join(f"{code}  {name:<{width}}  {summary}\n" for code, name, summary in rows)


def _docs_page(code: str) -> str | None:
    """The rule's page: shipped in the wheel as ``dllint.docs``, or in a source checkout."""
    name = f"{code}.md"
    candidates = [Path(__file__).resolve().parent.parent / "docs" / "rules" / name]
    try:
        candidates.insert(0, resources.files("dllint.docs").joinpath("rules", name))
    except (ModuleNotFoundError, TypeError):
        pass
    for candidate in candidates:
        try:
            return candidate.read_text("utf-8")
        except (FileNotFoundError, OSError):
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "rules":
            sys.stdout.write(_rules_table())
            return EXIT_CLEAN
        if args.command == "explain":
            rule = rule_by_code(args.code)
            code = rule.code if rule else args.code.upper()
            page = _docs_page(code)
            if page is None:
                print(f"dllint: unknown rule {args.code!r}; `dllint rules` lists them", file=sys.stderr)
                return EXIT_ERROR
            sys.stdout.write(page)
            return EXIT_CLEAN
        if args.command == "check":
            return _check(args)
        parser.print_help()
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN


def _check(args) -> int:
    known = {r.code for r in all_rules()} | {code for code, _, _ in ENGINE_CODES}
    for pattern in (args.select or []) + (args.ignore or []):
        if not any(code.startswith(pattern) for code in known):
            print(f"dllint: error: no rule matches {pattern!r}", file=sys.stderr)
            return EXIT_ERROR
    rules = select_rules(args.select, args.ignore)
    report = check_paths(args.paths, rules)
    findings = [
        f for f in report.findings
        if f.code not in ("DL001", "DL002") or not args.ignore or not any(f.code.startswith(p) for p in args.ignore)
    ]
    sys.stdout.write(FORMATTERS[args.format](findings))
    if args.verbose:
        for text in report.tracebacks:
            sys.stderr.write(text)
    if any(f.code == "DL002" for f in findings):
        return EXIT_ERROR
    return EXIT_FINDINGS if findings else EXIT_CLEAN
