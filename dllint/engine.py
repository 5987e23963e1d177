"""Files -> parsed modules -> rules -> findings, with ``# noqa`` applied.

A file that cannot be read or parsed becomes a ``DL001`` finding and the run goes
on; a rule that raises becomes ``DL002`` and the other rules' findings stand.

Speed: a file is parsed only when the ``needs`` tokens of some selected rule occur
in it (``dllint.prefilter``); ``check_paths`` serves unchanged files from a cache
(``dllint.cache``) and checks the others in worker processes (``dllint.parallel``).
libcst, the analysis and the rules are imported only once a file must be parsed,
so a run served from the cache starts in a blink.
"""

from __future__ import annotations

import ast
import os
import re
import stat
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from dllint import progress
from dllint.discovery import DEFAULT_EXCLUDES, Excluder, iter_source_files
from dllint.finding import Finding
from dllint.noqa import UNUSED_NOQA
from dllint.parallel import parallel_map

if TYPE_CHECKING:
    from dllint.cache import Cache, RuleInfo
    from dllint.config import Settings
    from dllint.rule import Rule

PARSE_ERROR = ("DL001", "parse-error")
INTERNAL_ERROR = ("DL002", "internal-error")
ENGINE_CODES = (
    (*PARSE_ERROR, "the file could not be read or parsed; it was skipped"),
    (*INTERNAL_ERROR, "a rule failed on the file; the other rules' findings stand"),
    (*UNUSED_NOQA, "a `# noqa: DLxxx` comment silences nothing on its line"),
)
ENGINE_OFF_BY_DEFAULT = frozenset({UNUSED_NOQA[0]})


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    tracebacks: list[str] = field(default_factory=list)


def _error(code_name, path, message, line=1, column=1) -> Finding:
    code, name = code_name
    return Finding(path, line, column, code, name, message, line, column)


def check_text(
    text: str,
    path: str,
    rules: Iterable[type[Rule]],
    report: Report | None = None,
    noqa: bool = True,
    exact: bool = False,
) -> list[Finding]:
    """Check already-decoded source. Parse errors come back as a DL001 finding.

    Only the rules whose ``needs`` occur in the text run; with none, the text is not
    parsed at all. ``noqa=False`` leaves ``# noqa`` comments to the caller (flake8
    applies its own). ``exact`` parses every statement (for fixes, whose module is
    written back), where a check may skip dead constants of a huge file
    (``dllint.source.parse_for_check``).
    """
    rules = list(rules)
    ran = frozenset(rule.code for rule in rules)  # a rule its prefilter skips ran too
    prelude = None if exact else _prelude(path, text, rules)
    if prelude is not None:
        findings = _check_with_prelude(path, rules, report, noqa, ran, prelude)
        if findings is not None:
            return findings
    rules = [rule for rule in rules if rule.applies_to(text)]
    if not rules:
        return _syntax_check(text, path)
    from dllint.precheck import narrow  # CPython's tree: which rules could fire at all

    narrowed = narrow(text, rules)
    if narrowed is not None and not narrowed[0]:
        return _nothing_to_find(text, path, noqa, ran, narrowed[1])
    firing = rules if narrowed is None else narrowed[0]
    return _with_deep_stack(
        _check_parsed, text, path, firing, report, noqa, exact, ran, None, rules
    )


def _nothing_to_find(text, path, noqa, ran, tree: ast.Module) -> list[Finding]:
    """What ``_check_parsed`` gives a file no rule finds anything in: DL001 for code
    nested too deeply for libcst, else the unused ``# noqa`` directives (DL003)."""
    from dllint.source import ParseFailure, check_depth

    try:
        check_depth(tree, text)
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    if not noqa:
        return []
    from dllint.noqa import apply

    return sorted(set(apply(text, path, [], ran)), key=Finding.sort_key)


# What a file must use for another file's definitions to matter to a rule: a
# training step, a loss call, an evaluation. Weaker signs (a ``no_grad`` decorator,
# a loss class, an ``apply`` of an init) count only in a file that defines no class:
# a script or a helper module, not a library module of layers, which is checked
# alone and so stays cheap and quiet.
CONSUMER_TOKENS = (
    ".backward(", "training_step", "validation_step", "test_step", "criterion(",
    "loss_fn(", ".eval()", "inference_mode", "with torch.no_grad()",
)  # fmt: skip
WEAK_CONSUMER_TOKENS = ("no_grad", "Loss(", "_loss(", "cross_entropy(", ".apply(")
_CLASS = re.compile(r"^class\s", re.MULTILINE)


def _uses_other_files(text: str) -> bool:
    if any(token in text for token in CONSUMER_TOKENS):
        return True
    return any(token in text for token in WEAK_CONSUMER_TOKENS) and not _CLASS.search(text)


def _prelude(path: str, text: str, rules: list):
    """What ``text`` imports from its project, copied in front of it
    (``dllint.project.prelude``); None when it imports nothing, uses nothing a
    rule could ask another file about, or no rule's first token group (torch,
    sklearn...) occurs in the file itself."""
    from dllint.prefilter import groups

    if not _uses_other_files(text):
        return None
    firsts = [groups(rule.needs)[0] for rule in rules if rule.needs]
    if not any(token in text for first in firsts for token in first):
        return None
    from dllint.project import prelude

    try:
        return prelude.build(path, text)
    except Exception:  # reading the project must never cost the file its check
        return None


def _check_with_prelude(path, rules, report, noqa, ran, prelude) -> list[Finding] | None:
    """Check the file with its prelude; findings placed back in their own files.
    None when the joined module could not be checked cleanly (then the file is
    checked alone)."""
    joined = [rule for rule in rules if rule.applies_to(prelude.text)]
    from dllint.precheck import narrow  # as for a file alone; the file is a part of it

    narrowed = narrow(prelude.text, joined) if joined else None
    firing = joined if narrowed is None else narrowed[0]
    if not firing:
        return None
    local = Report()
    findings = _with_deep_stack(
        _check_parsed, prelude.text, path, firing, local, noqa, False, ran, prelude, joined
    )
    if local.tracebacks or any(f.code in (PARSE_ERROR[0], INTERNAL_ERROR[0]) for f in findings):
        return None
    return sorted(set(_placed(findings, prelude, path)), key=Finding.sort_key)


def _placed(findings: list[Finding], prelude, path: str) -> list[Finding]:
    """Findings on the joined module, moved to the file and line they are on.

    Fixes stay behind (they would edit the joined module; ``--fix`` checks the
    file alone). A finding in a copied definition is reported in its own file,
    except an unused ``# noqa`` (the copy is only part of that file)."""
    from dllint.analysis import render_places
    from dllint.analysis.paths import display_path

    shift = prelude.lines
    placed = []
    for finding in findings:
        message = finding.message
        for mangled, dotted in prelude.renames.items():  # ``model_Net`` back to ``model.Net``
            message = message.replace(mangled, dotted)
        if finding.line > shift:
            end_line = max(finding.end_line - shift, finding.line - shift)
            placed.append(
                replace(
                    finding,
                    line=finding.line - shift,
                    end_line=end_line,
                    message=render_places(message, path),
                    related=_elsewhere(finding.related, path),
                    edit=None,
                )
            )
            continue
        where = prelude.origin(finding.line)
        if where is None or finding.code == UNUSED_NOQA[0]:
            continue
        origin, line = where
        end_line = line + max(finding.end_line - finding.line, 0)
        shown = display_path(origin, path)  # relative when the checked path is
        placed.append(
            replace(
                finding,
                path=shown,
                line=line,
                end_line=end_line,
                message=render_places(message, shown),
                related=_elsewhere(finding.related, shown),
                edit=None,
                fix=None,
            )
        )
    return placed


def _elsewhere(related, reported: str) -> tuple:
    """The related places in another file than ``reported``, each once, with their
    paths written as ``reported`` is (relative or absolute)."""
    from dllint.analysis.paths import display_path

    own = os.path.abspath(reported)
    kept, seen = [], set()
    for place in related:
        key = (place["path"], place["line"], place["column"])
        if place["path"] != own and key not in seen:
            seen.add(key)
            kept.append({**place, "path": display_path(place["path"], reported)})
    return tuple(kept)


# libcst and the rules walk the tree recursively: a statement nested a few hundred
# levels deep (valid Python; dllint.source refuses deeper ones) needs more than
# Python's default 1000 frames, and more C stack than the main thread may have.
DEEP_STACK_BYTES = 512 * 1024 * 1024  # reserved, not used: pages are touched on demand
DEEP_RECURSION_LIMIT = 40_000


def _with_deep_stack(function, *args):
    """``function(*args)`` on a thread with a large stack and a high recursion limit,
    so deeply nested code is checked rather than becoming ``DL002``."""
    if threading.current_thread().name == "dllint-deep-stack":
        return function(*args)
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    previous = threading.stack_size()
    try:
        threading.stack_size(DEEP_STACK_BYTES)
        thread = threading.Thread(target=target, name="dllint-deep-stack", daemon=True)
    except (ValueError, RuntimeError):  # a platform without settable stacks
        return function(*args)
    finally:
        threading.stack_size(previous)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, DEEP_RECURSION_LIMIT))
    try:
        thread.start()
        thread.join()
    finally:
        sys.setrecursionlimit(limit)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


def _check_parsed(
    text, path, rules, report, noqa, exact=False, ran=frozenset(), prelude=None, verify=None
) -> list[Finding]:
    """Parse and run the rules (on the deep-stack thread). ``verify``: the rules a
    fix's result is checked with (default ``rules``; the precheck may run fewer)."""
    from dllint.analysis import ModuleFacts
    from dllint.source import ParseFailure, parse_for_check

    try:
        module, parsed_text = parse_for_check(text, slim=not exact)
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    except Exception as exc:  # a bug in dllint's parsing: this file only, and say so
        if report is not None:
            report.tracebacks.append(traceback.format_exc())
        reason = (f"{type(exc).__name__}: {exc}".strip().splitlines() or [""])[0]
        message = (
            f"dllint failed to parse this file ({reason}); it was skipped. Please report this."
        )
        return [_error(INTERNAL_ERROR, path, message)]
    facts = ModuleFacts(path, parsed_text, module, prelude)
    findings: list[Finding] = []
    for rule in rules:
        try:
            findings.extend(rule(facts).check())
        except Exception as exc:  # a bug in one rule must not hide the others
            lines = f"{type(exc).__name__}: {exc}".strip().splitlines()
            reason = lines[0] + (" ..." if len(lines) > 1 else "")  # one line
            findings.append(
                _error(
                    INTERNAL_ERROR,
                    path,
                    f"rule {rule.code} [{rule.name}] failed on this file ({reason}); "
                    f"its findings here are missing, other rules ran. Please report this.",
                )
            )
            if report is not None:
                report.tracebacks.append(traceback.format_exc())
    if noqa:  # and DL003, when it is among the rules
        from dllint.noqa import apply

        findings = apply(text, path, findings, ran)
    findings = sorted(set(findings), key=Finding.sort_key)
    return demote_unsafe(text, path, findings, rules if verify is None else verify)


# -- which fixes are safe ---------------------------------------------------------------

_verifying = threading.local()


def demote_unsafe(text: str, path: str, findings: list, rules=()) -> list:
    """``findings`` (of ``rules`` on ``text``) with every safe fix that would add a
    finding marked unsafe.

    The safe fixes are applied together and the result checked again with ``rules``
    and the default rules the original text gave no occasion to run (a fix can
    create what they look for); only when that adds a finding is each fix tried
    alone, and those that add one (or all, when none alone does or there are too
    many to try) are demoted. Costs one extra check of a file that has safe fixes.
    """
    from dllint.fixes import applicable, demoted

    candidates = [f for f in findings if applicable(f)]
    if not candidates or getattr(_verifying, "active", False):
        return findings
    _verifying.active = True
    try:
        bad = _unsafe_among(text, path, findings, candidates, rules)
    finally:
        _verifying.active = False
    if not bad:
        return findings
    return [demoted(f) if id(f) in bad else f for f in findings]


MAX_SINGLE_TRIES = 16


def _unsafe_among(text: str, path: str, before: list, candidates: list, rules) -> set[int]:
    from dllint.fixes import apply, module_of, new_codes
    from dllint.registry import rule_by_code, select_rules

    everyone = {id(f) for f in candidates}
    try:
        module = module_of(candidates)
    except LookupError:
        return everyone
    original = module.code  # generated once: codegen walks the whole module
    again = {rule.code: rule for rule in rules}
    for rule in select_rules():
        if rule.code not in again and not rule.applies_to(original):
            again[rule.code] = rule  # found nothing before: it could not fire
    for finding in candidates:
        rule = rule_by_code(finding.code)
        if rule is not None:
            again.setdefault(rule.code, rule)
    checked = list(again.values())

    def adds_findings(chosen: list) -> bool:
        fixed, applied = apply(module, [f.edit for f in chosen])
        if not applied or fixed == original:
            return True  # a fix that changes nothing is no fix
        return bool(new_codes(before, check_text(fixed, path, checked)))

    if not adds_findings(candidates):
        return set()
    if len(candidates) == 1 or len(candidates) > MAX_SINGLE_TRIES:
        return everyone
    return {id(f) for f in candidates if adds_findings([f])} or everyone


def _syntax_check(text: str, path: str) -> list[Finding]:
    """DL001 for a file no rule needs to parse, when it is not Python.

    CPython's parser checks it, many times faster than libcst; only when it objects
    does libcst decide (it may know newer syntax than the running Python), so a
    broken file reports the same DL001 whether or not a rule could fire on it.
    """
    from dllint.source import ParseFailure, check_depth, parse

    try:
        tree = compile(text, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except Exception:  # a syntax error, or nesting too deep for CPython
        pass
    else:
        try:  # nesting CPython accepts but libcst would not: DL001 as when parsed
            check_depth(tree, text)
        except ParseFailure as failure:
            return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
        return []

    try:
        parse(text)
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    return []


def read_source(path: str) -> str:
    """Read and decode a file; every way this can fail becomes a ParseFailure."""
    from dllint.source import ParseFailure, decode

    return decode(_read_bytes(path, ParseFailure))


def _read_bytes(path: str, failure: type[Exception]) -> bytes:
    """The file's bytes; a failure to read raises ``failure(reason)``.

    Opened without blocking and checked to be a regular file before reading, so a
    FIFO or device named ``*.py`` is reported instead of hanging the run.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise failure("file not found (a broken symlink, or removed while checking)") from None
    except IsADirectoryError:
        raise failure("is a directory") from None
    except OSError as exc:
        raise failure(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        with open(descriptor, "rb", closefd=True) as handle:
            mode = os.fstat(descriptor).st_mode
            if stat.S_ISDIR(mode):
                raise failure("is a directory")
            if not stat.S_ISREG(mode):
                raise failure("not a regular file (a FIFO, socket or device); not read")
            return handle.read()
    except OSError as exc:
        if isinstance(exc, failure):
            raise
        raise failure(f"cannot read the file: {exc.strerror or exc}") from None


def check_file(
    path: str,
    rules: Iterable[type[Rule]],
    report: Report | None = None,
    data: bytes | None = None,
) -> list[Finding]:
    """Check one file (its bytes already read when ``data`` is given)."""
    if path.endswith(".ipynb"):
        return check_notebook(path, rules, report, data)  # the bytes the cache key hashed
    from dllint.source import ParseFailure, decode

    try:
        text = decode(data) if data is not None else read_source(path)
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    return check_text(text, path, rules, report)


# -- notebooks: cells joined into one module (dllint.notebook), findings placed back


def check_notebook(
    path: str, rules: Iterable[type[Rule]], report=None, data: bytes | None = None
) -> list[Finding]:
    """Check a notebook file; ``data``: its bytes, already read (the cache hashed
    them, so the findings stored under that hash are of these bytes)."""
    from dllint.source import ParseFailure, decode

    try:
        data = decode(data) if data is not None else read_source(path)
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    return check_notebook_text(data, path, rules, report)


def check_notebook_text(
    data: str, path: str, rules: Iterable[type[Rule]], report=None
) -> list[Finding]:
    """Check a notebook's JSON, already read (standard input, an editor's buffer)."""
    from dllint.notebook import CellError, NotPython, notebook_source
    from dllint.source import ParseFailure

    errors: list[CellError] = []
    try:
        text, origin = notebook_source(data, errors)
    except NotPython:
        return []
    except ParseFailure as failure:
        return [_error(PARSE_ERROR, path, failure.message, failure.line, failure.column)]
    broken = [
        replace(_error(PARSE_ERROR, path, e.message, e.line, e.column), cell=e.cell) for e in errors
    ]
    return broken + check_cells(text, origin, path, rules, report)


def check_cells(text: str, origin: list, path: str, rules, report=None) -> list[Finding]:
    """Check the module ``cells_source`` made; findings placed in their cells."""
    from dllint.notebook import place_in_cell

    return [
        place_in_cell(finding, origin) if finding.path == path else finding  # another file's
        for finding in check_text(text, path, rules, report)
    ]


# -- many files -----------------------------------------------------------------------


@dataclass
class _Pending:
    """A file the cache could not answer for."""

    path: str
    codes: frozenset[str]  # what it may report under the configuration
    data: bytes | None = None  # its bytes, when the cache key needed them
    key: str | None = None


def check_paths(
    paths: list[str],
    rules: Iterable[type[Rule] | RuleInfo],
    exclude: tuple[str, ...] | Excluder = DEFAULT_EXCLUDES,
    settings: Settings | None = None,
    jobs: int = 1,
    cache: Cache | None = None,
) -> Report:
    """Check every source file under ``paths``.

    With ``settings`` (from ``dllint.config``), its exclude patterns replace
    ``exclude``, files named explicitly are dropped when the user's own patterns
    exclude them, per-file-ignores apply, and engine findings (DL001, DL002) are kept
    only when enabled.

    ``rules`` are rule classes, or the catalog's ``RuleInfo`` (then the rules are
    imported only if some file must be checked). ``cache`` serves the findings of
    files checked before and keeps the new ones. ``jobs`` > 1 checks the files in
    that many processes: the same findings as a serial run, but without their
    ``edit``, which cannot cross processes (fixing runs with ``jobs=1``, no cache).
    """
    rules = list(rules)
    report = Report()
    from dllint.project import summary  # the project index keeps its summaries there too

    summary.STORE = cache.folder / "summaries" if cache is not None else None
    if settings is not None:
        exclude = settings.exclude or ()
        paths = [p for p in paths if os.path.isdir(p) or not settings.is_user_excluded(p)]
    pending: list[_Pending] = []
    for path in iter_source_files(paths, exclude):
        report.files += 1
        file = _Pending(path, _reportable(path, rules, settings))
        if cache is not None:
            try:
                file.data = _read_bytes(path, OSError)
            except OSError:
                pass  # checked below, where it becomes DL001
            else:
                file.key = cache.key(path, file.codes, file.data + _project_digest(path, file.data))
                found = cache.get(file.key)
                if found is not None:
                    report.findings.extend(found)
                    continue
        pending.append(file)
    if pending:
        _check_pending(pending, _rule_classes(rules), jobs, cache, report)
    report.findings = _unique(report.findings)
    return report


def _unique(findings: list[Finding]) -> list[Finding]:
    """Sorted, each place and code once: a finding in a definition that several
    files import is found from each of them (the first message in order is kept,
    so every run mode prints the same)."""
    ordered = sorted(findings, key=lambda f: (*f.sort_key(), f.message))
    unique: list[Finding] = []
    for finding in ordered:
        if not unique or unique[-1] != finding or unique[-1].cell != finding.cell:
            unique.append(finding)
    return unique


def _project_digest(path: str, data: bytes) -> bytes:
    """For a file's cache key: a hash of the project files it imports, so a change
    there re-checks it (``dllint.project.prelude.digest``)."""
    from dllint.project.prelude import digest

    try:
        if path.endswith(".ipynb"):
            from dllint.notebook import notebook_source
            from dllint.source import decode

            text = notebook_source(decode(data))[0]
        else:
            text = data.decode("utf-8", "replace")
        return ("\0project:" + digest(path, text)).encode()
    except Exception:  # an unreadable notebook: its check reports it
        return b""


def _reportable(path: str, rules: list, settings: Settings | None) -> frozenset[str]:
    """The codes a file may report: the rules' and the engine's, less those the
    configuration disables or its per-file-ignores switch off here."""
    codes = [rule.code for rule in rules] + [PARSE_ERROR[0], INTERNAL_ERROR[0]]
    if settings is None:
        return frozenset(codes)
    codes.append(UNUSED_NOQA[0])  # off unless the configuration selects it
    ignored = settings.ignored_in(path)
    return frozenset(
        code
        for code in codes
        if settings.enabled(code) and not any(code.startswith(p) for p in ignored)
    )


def _rule_classes(rules: list) -> dict[str, type[Rule]]:
    """Code -> rule class, importing the registry for catalog entries."""
    from dllint.noqa import UnusedNoqa

    classes: dict = {UnusedNoqa.code: UnusedNoqa}  # run when the file may report DL003
    for rule in rules:
        if not isinstance(rule, type):
            from dllint.registry import rule_by_code

            rule = rule_by_code(rule.code)
        if rule is not None:
            classes[rule.code] = rule
    return classes


# Below this much source to check, worker processes (each importing libcst and the
# rules) cost more than they save: a warm re-run after editing a few files, say.
SERIAL_BYTES = 128 * 1024


def _check_pending(
    pending: list[_Pending],
    classes: dict[str, type[Rule]],
    jobs: int,
    cache: Cache | None,
    report: Report,
) -> None:
    tasks = [
        (file.path, [classes[c] for c in sorted(file.codes) if c in classes], file.data)
        for file in pending
    ]
    progress.expect(len(tasks))  # the terminal's progress line, if one is shown
    if jobs > 1:
        sizes = [len(file.data) if file.data is not None else _size(file.path) for file in pending]
        if sum(sizes) < SERIAL_BYTES:  # starting workers costs more than the work
            results = [_check_in_worker(task) for task in tasks]
        else:
            results = parallel_map(_check_in_worker, tasks, jobs, sizes)
    else:
        results = [_check_task(task) for task in tasks]
    for file, (findings, tracebacks) in zip(pending, results, strict=True):
        kept = [f for f in findings if f.code in file.codes]
        report.findings.extend(kept)
        report.tracebacks.extend(tracebacks)
        if cache is not None and file.key is not None and not tracebacks:
            cache.put(file.key, kept)


def _check_task(task: tuple[str, Sequence[type[Rule]], bytes | None]):
    path, rules, data = task
    report = Report()
    findings = check_file(path, rules, report, data)
    progress.tick()
    return findings, report.tracebacks


def _check_in_worker(task):
    """``_check_task`` in a worker process: fixes stay behind (they hold the tree)."""
    findings, tracebacks = _check_task(task)
    return [replace(f, edit=None) for f in findings], tracebacks


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
