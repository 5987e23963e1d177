"""The ``dllint`` command's contract: output formats, selection, noqa, exit codes, and
bad input reported as DL001 without stopping the run or showing a traceback."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dllint.cli
from dllint import __version__
from dllint.cli import main
from dllint.registry import all_rules

FIXTURES = Path(__file__).parent / "fixtures"
MARKER = re.compile(r"#\s*expect:\s*([A-Z]{2}\d{3}(?:\s*,\s*[A-Z]{2}\d{3})*)")
TEXT_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>DL\d{3}) \[(?P<name>[a-z-]+)\] \S"
)


def markers(path: Path) -> set[tuple[int, str]]:
    found = set()
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        for match in MARKER.finditer(line):
            found.update((number, code.strip()) for code in match.group(1).split(","))
    return found


def positive(code: str) -> Path:
    """A fixture where ``code`` must fire (and only markers of that one code)."""
    for path in sorted((FIXTURES / code).glob("pos_*.py")):
        found = markers(path)
        if found and {c for _, c in found} == {code}:
            return path
    raise AssertionError(f"no positive fixture for {code}")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run in-process; ``check`` runs ``--isolated`` so that a ``[tool.dllint]`` this
    repository may grow cannot change what the fixtures report (test_config covers it)."""
    if argv[:1] == ("check",):
        argv = (*argv, "--isolated")
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


DL401 = positive("DL401")
PASSED = "All checks passed!\n"  # the summary on stderr of a clean text-mode run
CLEAN = sorted((FIXTURES / "DL401").glob("neg_*.py"))[0]


# Text, JSON and exit codes ------------------------------------------------------


def test_text_output_reports_each_marker_with_code_name_and_position(capsys):
    code, out, err = run(capsys, "check", str(DL401))
    assert code == 1 and err == f"Found {len(markers(DL401))} findings (0 fixable).\n"
    lines = out.splitlines()
    parsed = [TEXT_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert {(int(m["line"]), m["code"]) for m in parsed} == markers(DL401)
    assert {m["name"] for m in parsed} == {"missing-zero-grad"}
    assert {m["path"] for m in parsed} == {str(DL401)}


def test_clean_file_exits_zero_with_no_output(capsys):
    assert markers(CLEAN) == set()
    assert run(capsys, "check", str(CLEAN)) == (0, "", PASSED)


def test_json_output_has_the_documented_schema_sorted_by_position(capsys, tmp_path):
    second = tmp_path / "a_second.py"
    second.write_text(DL401.read_text("utf-8"), "utf-8")
    code, out, _ = run(capsys, "check", str(DL401), str(second), "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 2 * len(markers(DL401))
    keys = ["code", "name", "message", "path", "line", "column", "end_line", "end_column"]
    for item in data:
        assert list(item)[: len(keys)] == keys
        assert item["line"] <= item["end_line"] and item["column"] >= 1
    order = [(d["path"], d["line"], d["column"]) for d in data]
    assert order == sorted(order)
    assert {(d["line"], d["code"]) for d in data if d["path"] == str(second)} == markers(DL401)


def test_json_output_of_a_clean_run_is_an_empty_array(capsys):
    code, out, _ = run(capsys, "check", str(CLEAN), "--format", "json")
    assert (code, json.loads(out)) == (0, [])


def test_folders_are_walked(capsys, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text(DL401.read_text("utf-8"), "utf-8")
    (tmp_path / "pkg" / "notes.txt").write_text("optimizer.step()", "utf-8")
    code, out, _ = run(capsys, "check", str(tmp_path), "--format", "json")
    assert code == 1
    assert {Path(d["path"]).name for d in json.loads(out)} == {"train.py"}


# Selection ------------------------------------------------------------------------


def test_select_and_ignore_take_codes_and_prefixes(capsys):
    both = [str(DL401), str(positive("DL201"))]
    _, out, _ = run(capsys, "check", *both, "--format", "json")
    assert {d["code"] for d in json.loads(out)} == {"DL401", "DL201"}
    for flags, expected in [
        (["--select", "DL4"], {"DL401"}),
        (["--select", "DL401,DL2"], {"DL401", "DL201"}),
        (["--ignore", "DL4"], {"DL201"}),
        (["--select", "DL", "--ignore", "DL201"], {"DL401"}),
    ]:
        _, out, _ = run(capsys, "check", *both, "--format", "json", *flags)
        assert {d["code"] for d in json.loads(out)} == expected, flags


def test_ignoring_everything_found_exits_zero(capsys):
    assert run(capsys, "check", str(DL401), "--ignore", "DL401") == (0, "", PASSED)


@pytest.mark.parametrize("flag", ["--select", "--ignore", "--extend-select", "--extend-ignore"])
def test_a_pattern_matching_no_rule_is_a_usage_error(capsys, flag):
    code, out, err = run(capsys, "check", str(DL401), flag, "DL9")
    assert code == 2 and out == ""
    assert "DL9" in err and flag in err and "Traceback" not in err


# noqa -----------------------------------------------------------------------------


def _with_comment_on_marked_lines(tmp_path: Path, comment: str) -> Path:
    lines = DL401.read_text("utf-8").splitlines()
    for number, _ in markers(DL401):
        lines[number - 1] = MARKER.sub(comment, lines[number - 1])
    target = tmp_path / "train.py"
    target.write_text("\n".join(lines) + "\n", "utf-8")
    return target


@pytest.mark.parametrize(
    "comment", ["# noqa", "# noqa: DL401", "# NOQA:DL401,DL201", "# noqa: DL4"]
)
def test_noqa_silences_the_finding_on_its_line(capsys, tmp_path, comment):
    target = _with_comment_on_marked_lines(tmp_path, comment)
    assert run(capsys, "check", str(target)) == (0, "", PASSED)


def test_noqa_for_another_code_does_not_silence(capsys, tmp_path):
    target = _with_comment_on_marked_lines(tmp_path, "# noqa: DL201")
    code, out, _ = run(capsys, "check", str(target))
    assert code == 1 and len(out.splitlines()) == len(markers(DL401))


# Bad input ------------------------------------------------------------------------

BAD_FILES = {
    "syntax.py": (b"import torch\nx = (1,\ny = 2\n", 2, "never closed"),
    "python2.py": (b"import torch\nprint 'loss', loss\n", 2, "Missing parentheses"),
    "undecodable.py": (b"import torch\nname = '\xff\xfe'\n", 2, "cannot decode"),
    "nul.py": (b"import torch\nx = 1\x00\n", 2, "NUL byte"),
    "badcoding.py": (b"# -*- coding: klingon -*-\nx = 1\n", 1, "coding"),
}


def test_unparsable_files_are_dl001_with_message_and_position_and_the_run_goes_on(capsys, tmp_path):
    for name, (data, _, _) in BAD_FILES.items():
        (tmp_path / name).write_bytes(data)
    good = tmp_path / "z_train.py"
    good.write_text(DL401.read_text("utf-8"), "utf-8")
    code, out, err = run(capsys, "check", str(tmp_path), "--format", "json")
    assert code == 1 and err == ""
    found = json.loads(out)
    errors = {Path(d["path"]).name: d for d in found if d["code"] == "DL001"}
    assert set(errors) == set(BAD_FILES)
    for name, (_, line, words) in BAD_FILES.items():
        assert errors[name]["line"] == line, name
        assert words in errors[name]["message"], errors[name]["message"]
        assert errors[name]["name"] == "parse-error"
    assert {(d["line"], d["code"]) for d in found if d["path"] == str(good)} == markers(DL401)


def test_syntax_error_reports_the_parsers_message_and_column(capsys, tmp_path):
    source = "import torch\n\nloss = model(x) +* 2\n"
    with pytest.raises(SyntaxError) as python:
        ast.parse(source)
    target = tmp_path / "bad.py"
    target.write_text(source, "utf-8")
    code, out, _ = run(capsys, "check", str(target))
    assert code == 1
    where = f"{target}:3:{python.value.offset}"
    assert out == f"{where}: DL001 [parse-error] error: syntax error: {python.value.msg}\n"


def test_coding_declaration_and_bom_and_crlf_keep_lines_right(capsys, tmp_path):
    body = DL401.read_text("utf-8")
    latin = tmp_path / "latin.py"
    latin.write_bytes(
        ("# -*- coding: latin-1 -*-\n# café\n" + body).encode("latin-1", errors="replace")
    )
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(b"\xef\xbb\xbf" + body.replace("\n", "\r\n").encode("utf-8"))
    code, out, _ = run(capsys, "check", str(latin), str(crlf), "--format", "json")
    assert code == 1
    found = json.loads(out)
    assert {(d["line"], d["code"]) for d in found if d["path"] == str(crlf)} == markers(DL401)
    shifted = {(line + 2, c) for line, c in markers(DL401)}
    assert {(d["line"], d["code"]) for d in found if d["path"] == str(latin)} == shifted


def test_empty_file_is_fine(capsys, tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_bytes(b"")
    assert run(capsys, "check", str(empty)) == (0, "", PASSED)


def test_a_missing_path_is_a_usage_error(capsys, tmp_path):
    code, out, err = run(capsys, "check", str(tmp_path / "nope.py"))
    assert code == 2 and out == "" and "nope.py" in err


def test_an_unexpected_exception_is_one_line_and_exit_2(capsys, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(dllint.cli, "check_paths", explode)
    code, out, err = run(capsys, "check", str(DL401))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "RuntimeError: boom" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [[], ["check", "--format", "xml", "x.py"], ["check", "--no-such-flag"], ["explain"]],
)
def test_usage_errors_exit_2(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and err and "Traceback" not in err


# rules, explain, --version, --exit-zero, --statistics ----------------------------


def test_rules_lists_every_rule_with_code_name_and_summary(capsys):
    code, out, _ = run(capsys, "rules")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()}
    for rule in all_rules():
        assert rule.name in rows[rule.code] and rule.summary in rows[rule.code]
    assert "parse-error" in rows["DL001"]


def test_explain_prints_the_rules_page(capsys):
    code, out, _ = run(capsys, "explain", "DL401")
    assert code == 0 and out.startswith("# DL401 missing-zero-grad") and "## Example" in out
    assert run(capsys, "explain", "missing-zero-grad")[1] == out


def test_explain_an_unknown_code_exits_2(capsys):
    code, out, err = run(capsys, "explain", "DL999")
    assert code == 2 and out == "" and "DL999" in err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"dllint {__version__}")


def test_exit_zero_keeps_the_output(capsys):
    code, out, _ = run(capsys, "check", str(DL401), "--exit-zero")
    assert code == 0 and len(out.splitlines()) == len(markers(DL401))


def test_statistics_counts_per_code(capsys):
    code, out, _ = run(capsys, "check", str(DL401), str(positive("DL201")), "--statistics")
    assert code == 1
    counts = {line.split()[1]: int(line.split()[0]) for line in out.splitlines()}
    assert counts == {"DL401": len(markers(DL401)), "DL201": len(markers(positive("DL201")))}


# The installed script -------------------------------------------------------------


def test_installed_script_runs_as_a_subprocess(tmp_path):
    script = Path(sys.executable).parent / "dllint"
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"import torch\nx = (\n")
    result = subprocess.run(
        [str(script), "check", str(DL401), str(bad), "--format", "json", "--isolated"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    found = json.loads(result.stdout)
    assert {(d["line"], d["code"]) for d in found if d["path"] == str(DL401)} == markers(DL401)
    assert [d["code"] for d in found if d["path"] == str(bad)] == ["DL001"]
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"dllint {__version__}"


def test_select_all_runs_every_rule(capsys):
    default = run(capsys, "check", str(DL401), "--format", "json")
    assert run(capsys, "check", str(DL401), "--format", "json", "--select", "ALL") == default


def test_a_failing_rule_is_dl002_the_others_still_report_and_exit_is_2(capsys, monkeypatch):
    dl201 = next(rule for rule in all_rules() if rule.code == "DL201")

    def broken(self):
        raise ValueError("unexpected node")

    monkeypatch.setattr(dl201, "check", broken)
    inits = positive("DL201")
    code, out, err = run(capsys, "check", str(DL401), str(inits), "--format", "json")
    assert code == 2 and err == ""
    found = json.loads(out)
    assert {(d["line"], d["code"]) for d in found if d["path"] == str(DL401)} == markers(DL401)
    (failure,) = [d for d in found if d["code"] == "DL002"]
    assert failure["path"] == str(inits)
    assert "DL201" in failure["message"] and "ValueError: unexpected node" in failure["message"]


def test_selecting_a_runtime_code_says_that_only_trace_reports_it(capsys):
    """DL6xx are dllint trace's: --select names the reason instead of "no rule
    matches"; ignoring one is harmless (a command line shared with trace)."""
    code, out, err = run(capsys, "check", str(DL401), "--select", "DL601")
    assert code == 2 and out == ""
    assert "DL601 only a run shows: `dllint trace` reports it" in err
    code, _, err = run(capsys, "check", str(DL401), "--select", "batch-not-overfit")
    assert code == 2 and "DL603" in err
    code, _, err = run(capsys, "check", str(DL401), "--ignore", "DL602")
    assert code == 1 and "DL602" not in err
    code, _, err = run(capsys, "check", str(DL401), "--select", "DL999")
    assert code == 2 and "no rule matches 'DL999'" in err
