"""The ``dllint`` command: check, rules, explain.

Exit codes: 0 no findings, 1 findings, 2 usage, configuration or internal error.
No traceback reaches the user: ``main`` turns every failure into one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from dllint import __version__
from dllint.cache import Cache, RuleInfo, project_cache_dir, rule_catalog
from dllint.config import (
    ConfigError,
    Layer,
    Overrides,
    configs_for,
    rule_pattern,
    settings_for,
)
from dllint.engine import ENGINE_CODES, ENGINE_OFF_BY_DEFAULT, check_paths
from dllint.parallel import default_jobs
from dllint.report import FORMATTERS
from dllint.report.statistics import format_statistics
from dllint.report.summary import fix_lines, fixed_listing, summary_line
from dllint.report.text import fix_note

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot run; the message is shown and dllint exits 2."""


def _codes(value: str) -> list[str]:
    """Codes, prefixes or rule names (``missing-zero-grad``), comma-separated."""
    return [rule_pattern(part) for part in value.split(",") if part.strip()]


def _patterns(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _jobs(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more processes, got {value!r}")
    return int(value)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2, as documented
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"dllint: error: {message}\n")


def _add_check(commands) -> None:
    check = commands.add_parser("check", help="check files or folders")
    check.add_argument(
        "paths", nargs="*", metavar="PATH", help="files and folders (default: .); - reads stdin"
    )
    rules = check.add_argument_group("rule selection (overrides [tool.dllint])")
    rules.add_argument(
        "--select", type=_codes, help="codes, prefixes or names (e.g. DL4,missing-zero-grad)"
    )
    rules.add_argument("--extend-select", type=_codes, default=[], help="add to the selection")
    rules.add_argument("--ignore", type=_codes, default=[], help="codes or prefixes to skip")
    rules.add_argument("--extend-ignore", type=_codes, default=[], help="skip these as well")
    files = check.add_argument_group("files")
    files.add_argument("--exclude", type=_patterns, help="glob patterns replacing the excludes")
    files.add_argument("--extend-exclude", type=_patterns, default=[], help="more globs to skip")
    files.add_argument("--config", metavar="FILE", help="use this pyproject.toml or TOML file")
    files.add_argument("--isolated", action="store_true", help="ignore configuration files")
    files.add_argument(
        "--stdin-filename",
        metavar="PATH",
        help="the path of the source read from stdin (for config, per-file-ignores, output)",
    )
    output = check.add_argument_group("output")
    output.add_argument("--format", choices=sorted(FORMATTERS), default="text")
    output.add_argument("--statistics", action="store_true", help="count findings per code")
    output.add_argument("--output-file", metavar="FILE", help="write the report to FILE")
    output.add_argument(
        "-q", "--quiet", action="store_true", help="the findings only: no summary, no progress"
    )
    output.add_argument(
        "--show-fixes", action="store_true", help="say what each fix does (or did, with --fix)"
    )
    output.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    output.add_argument("--verbose", action="store_true", help="show tracebacks of rule failures")
    fixing = check.add_argument_group("fixes")
    fixing.add_argument(
        "--fix", action="store_true", help="apply the safe fixes, then report what is left"
    )
    fixing.add_argument(
        "--diff", action="store_true", help="print the fixes as a unified diff; write nothing"
    )
    fixing.add_argument(
        "--unsafe-fixes",
        action="store_true",
        help="with --fix or --diff, the unsafe fixes too (review them: they may change behaviour)",
    )
    fixing.add_argument(
        "--add-noqa", action="store_true", help="add `# noqa: CODE` to each finding's line"
    )
    speed = check.add_argument_group("speed")
    speed.add_argument(
        "-j", "--jobs", type=_jobs, help="worker processes (default: one per core; 1: serial)"
    )
    speed.add_argument(
        "--no-cache", action="store_true", help="neither read nor write .dllint_cache"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dllint", description="Find the silent bugs of deep-learning training code."
    )
    parser.add_argument("--version", action="version", version=f"dllint {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_check(commands)
    rules = commands.add_parser("rules", help="list the rules")
    rules.add_argument("--format", choices=("text", "json"), default="text")
    commands.add_parser(
        "server", help='a language server over stdio, for editors (pip install "dllint[lsp]")'
    )
    explain = commands.add_parser("explain", help="print a rule's documentation")
    explain.add_argument("code")
    from dllint.runtime.cli import add_trace_arguments

    add_trace_arguments(commands.add_parser("trace", help="run one training step, check shapes"))
    return parser


def _rules_table() -> str:
    """One line per code: code, name, level, ``fix`` when it can repair, ``off`` when it
    runs only if selected, and its summary."""
    from dllint.registry import all_rules

    rows = [
        (
            r.code,
            r.name,
            r.severity,
            "fix" if r.fixable else "",
            "" if r.default_enabled else "off",
            r.summary,
        )
        for r in all_rules()
    ]
    rows += [
        (code, name, "warning", "", "off", summary)
        if code in ENGINE_OFF_BY_DEFAULT
        else (code, name, "error", "", "", summary)
        for code, name, summary in ENGINE_CODES
    ]
    from dllint.runtime.codes import RUNTIME_CODES  # `run`: reported by `dllint trace` only

    rows += [(c.code, c.name, c.severity, "", "run", c.summary) for c in RUNTIME_CODES]
    rows.sort()
    width = max(len(row[1]) for row in rows)
    return "".join(
        f"{code}  {name:<{width}}  {level:<7}  {fix:<3}  {off:<3}  {summary}\n"
        for code, name, level, fix, off, summary in rows
    )


def _rules_json() -> str:
    """The rule table as JSON: one object per code, in code order."""
    import json

    from dllint.registry import all_rules
    from dllint.report.rules import docs_url

    rows = [
        {
            "code": r.code,
            "name": r.name,
            "summary": r.summary,
            "severity": r.severity,
            "fixable": r.fixable,
            "default_enabled": r.default_enabled,
            "url": docs_url(r.code),
        }
        for r in all_rules()
    ]
    for code, name, summary in ENGINE_CODES:
        severity = "warning" if code in ENGINE_OFF_BY_DEFAULT else "error"
        rows.append(
            {
                "code": code,
                "name": name,
                "summary": summary,
                "severity": severity,
                "fixable": False,
                "default_enabled": code not in ENGINE_OFF_BY_DEFAULT,
                "url": docs_url(code),
            }
        )
    from dllint.runtime.codes import RUNTIME_CODES

    for c in RUNTIME_CODES:  # reported by `dllint trace` only, never by `dllint check`
        rows.append(
            {
                "code": c.code,
                "name": c.name,
                "summary": c.summary,
                "severity": c.severity,
                "fixable": False,
                "default_enabled": False,
                "runtime": True,
                "url": docs_url(c.code),
            }
        )
    rows.sort(key=lambda row: row["code"])
    return json.dumps(rows, indent=2) + "\n"


def _docs_page(code: str) -> str | None:
    """The rule's page: shipped in the wheel as ``dllint/docs/rules``, or in a checkout.

    ``dllint.docs`` has no ``__init__.py`` (it is the repository's docs folder), so
    ``importlib.resources`` sees a namespace package whose API differs between Python
    versions; the folder beside this module is tried first and any lookup error only
    moves on to the next place.
    """
    name = f"{code}.md"
    here = Path(__file__).resolve().parent
    candidates = [here / "docs" / "rules" / name, here.parent / "docs" / "rules" / name]
    try:
        from importlib import resources

        candidates.append(resources.files("dllint.docs") / "rules" / name)
    except Exception:  # no such resource package, or an API this Python lacks
        pass
    for candidate in candidates:
        try:
            return candidate.read_text("utf-8")
        except (OSError, ValueError):
            continue
    return None


def _explain(code: str) -> str:
    for engine_code, name, summary in ENGINE_CODES:
        if engine_code == code.upper() or name == code.lower():
            page = _docs_page(engine_code)
            if page is not None:
                return page
            return f"# {engine_code} {name}\n\n{summary[0].upper()}{summary[1:]}.\n"
    from dllint.registry import rule_by_code

    rule = rule_by_code(code)
    page = _docs_page(rule.code if rule else code.upper())
    if page is None:
        raise UsageError(f"unknown rule {code!r}; `dllint rules` lists them")
    return page


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (never raise, never a traceback)."""
    try:
        return _run(build_parser().parse_args(argv))
    except SystemExit as exit_:  # --help, --version, usage errors, a command's own exit
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or EXIT_CLEAN
        print(f"dllint: error: {exit_.code}", file=sys.stderr)
        return EXIT_ERROR
    except (UsageError, ConfigError) as exc:
        print(f"dllint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in dllint: one line, and the way to see more
        print(
            f"dllint: internal error: {type(exc).__name__}: {exc} "
            f"(please report it at https://github.com/dllint/dllint/issues)",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    if args.command == "rules":
        return _write(_rules_json() if args.format == "json" else _rules_table(), EXIT_CLEAN)
    if args.command == "explain":
        return _write(_explain(args.code), EXIT_CLEAN)
    if args.command == "check":
        return _check(args)
    if args.command == "server":
        return _server()
    if args.command == "trace":
        from dllint.runtime.cli import run_trace

        return run_trace(args)
    build_parser().print_help(sys.stderr)
    return EXIT_ERROR


def _server() -> int:
    try:
        from dllint.server import main as serve
    except ImportError as exc:
        missing = (exc.name or "pygls").split(".")[0]
        raise UsageError(
            f'`dllint server` needs the lsp extra ({missing} is missing): pip install "dllint[lsp]"'
        ) from None
    return serve()


def _write(text: str, code: int) -> int:
    """Write the output; a reader that went away (``| head``) is not an error of ours."""
    try:
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            sys.stdout.write(text)
        else:  # bytes: a file name or a diff line that is not UTF-8 goes out as it was
            sys.stdout.flush()
            buffer.write(_encoded(text, sys.stdout.encoding or "utf-8"))
            buffer.flush()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code


def _encoded(text: str, encoding: str) -> bytes:
    """``text`` in the output's encoding; surrogate escapes (undecodable bytes of file
    names and sources) become their bytes again, or ``\\udcXX`` where that fails."""
    try:
        return text.encode(encoding, "surrogateescape")
    except UnicodeEncodeError:
        return text.encode(encoding, "backslashreplace")


def _known_codes(catalog: list[RuleInfo]) -> tuple[list[str], list[str]]:
    """(every code, the codes on by default)."""
    engine = [code for code, _, _ in ENGINE_CODES]
    known = [r.code for r in catalog] + engine
    default = [r.code for r in catalog if r.default_enabled]
    default += [code for code in engine if code not in ENGINE_OFF_BY_DEFAULT]
    return known, default


def _runtime_codes(pattern: str) -> list[str]:
    """The runtime codes (DL6xx, ``dllint trace``'s) a pattern names, by code prefix
    or by name."""
    from dllint.runtime.codes import RUNTIME_CODES, runtime_code

    named = runtime_code(pattern)
    if named is not None:
        return [named.code]
    return [entry.code for entry in RUNTIME_CODES if entry.code.startswith(pattern.upper())]


def _overrides(args: argparse.Namespace, known: list[str]) -> Overrides:
    flags = {
        "--select": args.select or [],
        "--extend-select": args.extend_select,
        "--ignore": args.ignore,
        "--extend-ignore": args.extend_ignore,
    }
    for flag, patterns in flags.items():
        for pattern in patterns:
            if pattern != "ALL" and not any(code.startswith(pattern) for code in known):
                runtime = _runtime_codes(pattern)
                if runtime and flag.endswith("ignore"):
                    continue  # nothing of check's to ignore: harmless in a shared command line
                if runtime:
                    raise UsageError(
                        f"{flag}: {', '.join(runtime)} only a run shows: `dllint trace` reports "
                        f"{'them' if len(runtime) > 1 else 'it'}, `dllint check` never does"
                    )
                raise UsageError(f"{flag}: no rule matches {pattern!r}; `dllint rules` lists them")
    layer = Layer(
        select=tuple(args.select) if args.select is not None else None,
        extend_select=tuple(args.extend_select),
        ignore=tuple(args.ignore),
        extend_ignore=tuple(args.extend_ignore),
    )
    exclude = tuple(args.exclude) if args.exclude is not None else None
    return Overrides(layer, exclude, tuple(args.extend_exclude))


def _validate(args: argparse.Namespace) -> None:
    """Usage errors a check's flags can make, before any file is read."""
    if not args.paths:
        args.paths = ["-"] if args.stdin_filename else ["."]
    if "-" in args.paths and args.paths != ["-"]:
        raise UsageError("`-` reads standard input; it cannot be combined with other paths")
    if args.stdin_filename and args.paths != ["-"]:
        raise UsageError("--stdin-filename names standard input; give `-` or no path")
    if args.paths != ["-"]:
        for path in args.paths:
            if not os.path.lexists(path):  # a broken symlink is reported as DL001 instead
                raise UsageError(f"{path}: no such file or folder")
    if args.fix and args.diff:
        raise UsageError("--fix writes the fixes and --diff only shows them; choose one")
    if args.add_noqa and (args.fix or args.diff):
        raise UsageError("--add-noqa silences the findings that --fix would repair; choose one")
    if args.add_noqa and args.paths == ["-"]:
        raise UsageError("--add-noqa writes files; it cannot edit standard input")
    if args.statistics and args.format not in ("text", "json"):
        raise UsageError(f"--statistics prints text or JSON, not --format {args.format}")


def _check(args: argparse.Namespace) -> int:
    _validate(args)
    catalog = rule_catalog(use_cache=not args.no_cache)
    known, default = _known_codes(catalog)
    overrides = _overrides(args, known)
    if args.paths == ["-"]:
        return _check_stdin(args, catalog, known, default, overrides)
    findings, tracebacks = _check_all(args, catalog, known, default, overrides)
    if args.add_noqa:
        from dllint.addnoqa import add_noqa

        done = add_noqa(findings)
        _say(args, f"Added {done.added} noqa directive{'s' if done.added != 1 else ''}.")
        if done.skipped:
            _say(
                args,
                f"{done.skipped} line(s) cannot take a comment (inside a string, or "
                "continued with a backslash); their findings stand.",
            )
        return EXIT_CLEAN
    if args.fix or args.diff:
        outcomes = _fix(findings, args.unsafe_fixes)
        fixed = sum(outcome.applied for outcome in outcomes)
        if args.diff:
            verb = "would fix" if fixed else "nothing to fix"
            _say(args, _fix_summary(verb, fixed, outcomes))
            if args.format == "json":  # one object per file: its path, fixes and diff
                rows = [{"path": o.path, "fixes": o.applied, "diff": o.diff()} for o in outcomes]
                text = json.dumps(rows, indent=2) + "\n"
                return _emit(args, text, EXIT_FINDINGS if rows else EXIT_CLEAN)
            if args.format != "text":
                raise UsageError(f"--diff prints a diff (or JSON), not --format {args.format}")
            diff = "".join(outcome.diff() for outcome in outcomes)
            return _emit(args, diff, EXIT_FINDINGS if diff else EXIT_CLEAN)
        outcomes = _write_fixes(args, outcomes)  # an unwritable file is reported, not fatal
        fixed = sum(outcome.applied for outcome in outcomes)
        before = findings
        if fixed:
            findings, tracebacks = _check_all(args, catalog, known, default, overrides)
        if args.show_fixes:
            _say(args, fixed_listing(before, findings).rstrip("\n"))
        elif fixed:
            _say(args, _fix_summary("fixed", fixed, outcomes))
    return _report(args, findings, tracebacks)


def _report(args: argparse.Namespace, findings: list, tracebacks: list) -> int:
    """Print the findings (or their statistics) and the summary; the exit code."""
    if args.verbose:
        for text in tracebacks:
            sys.stderr.write(text)
    if any(f.code == "DL002" for f in findings) or getattr(args, "unwritable", False):
        code = EXIT_ERROR
    elif findings and not args.exit_zero:
        code = EXIT_FINDINGS
    else:
        code = EXIT_CLEAN
    if args.statistics:
        output = format_statistics(findings, json_output=args.format == "json")
    else:
        output = FORMATTERS[args.format](findings)
    if args.format == "text":
        fixable = sum(1 for f in findings if f.fix)
        if args.show_fixes and not args.fix and not args.statistics:
            output += fix_lines(findings)
        if fixable and not (args.fix or args.diff or args.quiet):
            output += fix_note(findings, args.unsafe_fixes)
    code = _emit(args, output, code)
    if args.format == "text":
        _say(args, summary_line(findings))
    return code


def _say(args: argparse.Namespace, line: str) -> None:
    """A line for the person at the terminal, on stderr; none with ``--quiet``."""
    if not args.quiet:
        print(line, file=sys.stderr)


def _emit(args: argparse.Namespace, text: str, code: int) -> int:
    """The report, to ``--output-file`` or standard output."""
    if not args.output_file:
        return _write(text, code)
    try:
        folder = os.path.dirname(os.path.abspath(args.output_file))
        os.makedirs(folder, exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"--output-file {args.output_file}: {exc.strerror or exc}") from None
    return code


def _check_stdin(args, catalog, known, default, overrides) -> int:
    """``dllint check -``: the source on standard input, checked as if it were the
    file ``--stdin-filename`` (its configuration and per-file-ignores). ``--fix``
    writes the fixed source to standard output, ``--diff`` the diff."""
    from dllint.stdin import check_stdin, fix_stdin

    data = sys.stdin.buffer.read()
    path = args.stdin_filename or "-"
    where = args.stdin_filename or "."
    [(config, _)] = configs_for([where], args.config, args.isolated, known)
    settings = settings_for(config, overrides, known, default)
    findings, tracebacks, text = check_stdin(data, path, catalog, settings)
    if not (args.fix or args.diff) or text is None:
        return _report(args, findings, tracebacks)
    fixed, applied = fix_stdin(text, path, findings, args.unsafe_fixes)
    if args.diff:
        from dllint.fixes import unified_diff

        _say(args, _fix_summary("would fix" if applied else "nothing to fix", applied, [path]))
        return _emit(args, unified_diff(path, text, fixed), EXIT_FINDINGS if applied else 0)
    after, _, _ = check_stdin(fixed.encode("utf-8"), path, catalog, settings)
    if args.show_fixes:
        _say(args, fixed_listing(findings, after).rstrip("\n"))
    elif applied:
        _say(args, _fix_summary("fixed", applied, [path]))
    if any(f.code == "DL002" for f in after):
        code = EXIT_ERROR
    else:
        code = EXIT_FINDINGS if after and not args.exit_zero else EXIT_CLEAN
    return _emit(args, fixed, code)


def _check_all(args, catalog, known, default, overrides):
    """Every finding under the command line's paths, each folder with its own config;
    a progress line on a terminal while it takes long (none with ``--quiet``)."""
    from dllint import progress

    with progress.shown(sys.stderr, enabled=not args.quiet):
        return _check_groups(args, catalog, known, default, overrides)


def _check_groups(args, catalog, known, default, overrides):
    jobs = args.jobs or default_jobs()
    findings, tracebacks, files = [], [], 0
    for config, paths in configs_for(args.paths, args.config, args.isolated, known):
        settings = settings_for(config, overrides, known, default)
        rules = [rule for rule in catalog if settings.enabled(rule.code)]
        cache = None if args.no_cache else Cache(project_cache_dir(settings.root))
        report = check_paths(paths, rules, settings=settings, jobs=jobs, cache=cache)
        findings.extend(report.findings)
        tracebacks.extend(report.tracebacks)
        files += report.files
    if not files:  # an empty folder, or every path excluded: say so (exit 0, as ruff)
        _say(args, "dllint: warning: no Python files found under the given paths")
    findings.sort(key=lambda f: f.sort_key())
    return findings, tracebacks


def _fix(findings, unsafe: bool = False) -> list:
    """Fix the files whose findings offer fixes, with only those findings' rules (so
    the configuration, per-file-ignores and ``# noqa`` that kept a finding out of the
    report keep its fix out of the file too)."""
    from dllint.autofix import fix_file
    from dllint.registry import rule_by_code

    codes_by_path: dict[str, set[str]] = {}
    for finding in findings:
        if finding.fixable(unsafe):
            codes_by_path.setdefault(finding.path, set()).add(finding.code)
    outcomes = []
    for path, codes in sorted(codes_by_path.items()):
        rules = [rule for rule in map(rule_by_code, sorted(codes)) if rule is not None]
        outcome = fix_file(path, rules, unsafe)
        if outcome is not None and outcome.changed:
            outcomes.append(outcome)
    return outcomes


def _write_fixes(args: argparse.Namespace, outcomes: list) -> list:
    """Write each fixed file; one that cannot be written is reported (and the exit
    code becomes 2) while the others are still written. The outcomes written."""
    written = []
    for outcome in outcomes:
        try:
            outcome.write()
        except OSError as exc:
            args.unwritable = True
            print(
                f"dllint: error: {outcome.path}: cannot write the fixed file "
                f"({exc.strerror or exc}); it was left as it was",
                file=sys.stderr,
            )
        else:
            written.append(outcome)
    return written


def _fix_summary(verb: str, fixed: int, outcomes: list) -> str:
    if not fixed:
        return f"dllint: {verb}"
    files = len(outcomes)
    return (
        f"dllint: {verb} {fixed} finding{'s' if fixed != 1 else ''} "
        f"in {files} file{'s' if files != 1 else ''}"
    )
