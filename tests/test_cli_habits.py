"""The command-line habits ruff users bring, each through the installed ``dllint``:
stdin, the summary line, --output-file, -q, --show-fixes, --add-noqa, DL003,
--statistics marking fixable codes, ``rules --format json``, rule names as codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "dllint"

# Line 8: optimizer.step() without zero_grad (DL401); line 11: a bare model.eval (DL503, fixable).
TRAIN = """\
import torch
from torch import nn, optim

model = nn.Linear(10, 1)
optimizer = optim.SGD(model.parameters(), lr=0.1)
for xb, yb in zip(torch.randn(8, 10), torch.randn(8, 1)):
    nn.functional.mse_loss(model(xb), yb).backward()
    optimizer.step()
print("done")

model.eval
"""
DL401_LINE, DL503_LINE = 8, 11


def dllint(*argv: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *argv],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TERM": "dumb"},
    )


def found(stdout: str) -> set[tuple[int, str]]:
    return {(d["line"], d["code"]) for d in json.loads(stdout)}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dllint]\nper-file-ignores = { "scripts/*" = ["DL401"] }\n', "utf-8"
    )
    (tmp_path / "train.py").write_text(TRAIN, "utf-8")
    return tmp_path


# stdin ------------------------------------------------------------------------------


def test_stdin_is_checked_as_the_file_it_names(project):
    result = dllint("check", "-", "--format", "json", cwd=project, stdin=TRAIN)
    assert result.returncode == 1, result.stderr
    assert found(result.stdout) == {(DL401_LINE, "DL401"), (DL503_LINE, "DL503")}
    assert {d["path"] for d in json.loads(result.stdout)} == {"-"}
    named = dllint(
        "check", "--stdin-filename", "src/train.py", "--format", "json", cwd=project, stdin=TRAIN
    )
    assert {d["path"] for d in json.loads(named.stdout)} == {"src/train.py"}
    # the per-file-ignores of the project apply to the name given
    ignored = dllint(
        "check", "-", "--stdin-filename", "scripts/train.py", "--format", "json",
        cwd=project, stdin=TRAIN,
    )  # fmt: skip
    assert found(ignored.stdout) == {(DL503_LINE, "DL503")}


def test_stdin_with_fix_writes_the_fixed_source_to_stdout(project):
    result = dllint("check", "-", "--fix", cwd=project, stdin=TRAIN)
    assert result.stdout == TRAIN.replace("model.eval\n", "model.eval()\n")
    assert "fixed 1 finding" in result.stderr
    assert result.returncode == 1  # DL401 is left


def test_stdin_cannot_be_mixed_with_paths(project):
    result = dllint("check", "-", "train.py", cwd=project, stdin=TRAIN)
    assert result.returncode == 2 and "cannot be combined" in result.stderr


# the summary, --output-file, -q -------------------------------------------------------


def test_text_mode_ends_with_a_summary_on_stderr(project):
    result = dllint("check", "train.py", cwd=project)
    assert result.returncode == 1
    assert result.stderr == "Found 2 findings (1 fixable).\n"
    assert len(result.stdout.splitlines()) == 3  # two findings and the [*] hint
    (project / "clean.py").write_text("import torch\n", "utf-8")
    clean = dllint("check", "clean.py", cwd=project)
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "All checks passed!\n")
    as_json = dllint("check", "train.py", "--format", "json", cwd=project)
    assert as_json.stderr == ""


def test_output_file_gets_the_report_and_stdout_stays_empty(project):
    result = dllint(
        "check", "train.py", "--format", "json", "--output-file", "out/report.json", cwd=project
    )
    assert result.returncode == 1 and result.stdout == ""
    report = (project / "out" / "report.json").read_text("utf-8")
    assert found(report) == {(DL401_LINE, "DL401"), (DL503_LINE, "DL503")}


def test_quiet_prints_the_findings_only(project):
    result = dllint("check", "train.py", "-q", cwd=project)
    assert result.returncode == 1 and result.stderr == ""
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["DL401", "DL503"]
    fixed = dllint("check", "train.py", "--fix", "--quiet", cwd=project)
    assert fixed.stderr == "" and "DL503" not in fixed.stdout


# --show-fixes ----------------------------------------------------------------------------


def test_show_fixes_lists_each_fix_and_after_fix_what_was_fixed(project):
    shown = dllint("check", "train.py", "--show-fixes", cwd=project)
    assert f"train.py:{DL503_LINE}: DL503 " in shown.stdout
    assert "Available fixes (1):" in shown.stdout
    fixed = dllint("check", "train.py", "--fix", "--show-fixes", cwd=project)
    assert "Fixed 1 finding:\n- train.py:\n    1 × DL503 (method-not-called)\n" in fixed.stderr
    assert "model.eval()\n" in (project / "train.py").read_text("utf-8")


# --add-noqa ------------------------------------------------------------------------------


def test_add_noqa_silences_every_finding_and_extends_existing_directives(project):
    source = TRAIN.replace('print("done")', 'print("done")  # noqa: E501').replace(
        "    optimizer.step()", "    optimizer.step()  # noqa: E731"
    )
    (project / "train.py").write_text(source, "utf-8")
    result = dllint("check", "train.py", "--add-noqa", cwd=project)
    assert result.returncode == 0 and "Added 2 noqa directives." in result.stderr
    lines = (project / "train.py").read_text("utf-8").splitlines()
    assert lines[DL401_LINE - 1] == "    optimizer.step()  # noqa: E731, DL401"
    assert lines[DL503_LINE - 1] == "model.eval  # noqa: DL503"
    assert lines[DL401_LINE] == 'print("done")  # noqa: E501'  # untouched
    again = dllint("check", "train.py", cwd=project)
    assert again.returncode == 0 and again.stderr == "All checks passed!\n"
    twice = dllint("check", "train.py", "--add-noqa", cwd=project)
    assert "Added 0 noqa directives." in twice.stderr


def test_add_noqa_leaves_lines_inside_a_multiline_string(tmp_path):
    source = 'import torch\nmodel = torch.nn.Linear(2, 2)\nmodel.eval; note = """a\nb"""\n'
    (tmp_path / "m.py").write_text(source, "utf-8")
    result = dllint("check", "m.py", "--add-noqa", "--isolated", cwd=tmp_path)
    assert "Added 0 noqa directives." in result.stderr and "cannot take a comment" in result.stderr
    assert (tmp_path / "m.py").read_text("utf-8") == source


def test_add_noqa_edits_notebook_cells(tmp_path):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Training\n"]},
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": TRAIN.splitlines(keepends=True)[:5],
        },
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "".join(TRAIN.splitlines(keepends=True)[5:]),
        },
    ]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook, indent=1) + "\n", "utf-8")
    before = dllint("check", "nb.ipynb", "--format", "json", "--isolated", cwd=tmp_path)
    assert {(d["cell"], d["line"], d["code"]) for d in json.loads(before.stdout)} == {
        (3, DL401_LINE - 5, "DL401"),
        (3, DL503_LINE - 5, "DL503"),
    }
    result = dllint("check", "nb.ipynb", "--add-noqa", "--isolated", cwd=tmp_path)
    assert "Added 2 noqa directives." in result.stderr
    written = (tmp_path / "nb.ipynb").read_text("utf-8")
    assert written.startswith('{\n "cells": [')  # Jupyter's one-space indent kept
    cell = json.loads(written)["cells"][2]["source"]
    assert "    optimizer.step()  # noqa: DL401\n" in cell.splitlines(keepends=True)
    assert cell.endswith("model.eval  # noqa: DL503\n")
    after = dllint("check", "nb.ipynb", "--isolated", cwd=tmp_path)
    assert after.returncode == 0


# DL003 unused-noqa -------------------------------------------------------------------------


def test_unused_noqa_is_off_by_default_and_reports_only_what_it_can_judge(tmp_path):
    source = (
        TRAIN.replace('print("done")', 'print("done")  # noqa: DL401, E501')
        .replace("    optimizer.step()", "    optimizer.step()  # noqa: DL401")
        .replace("model.eval\n", "model.eval()  # noqa: DL504, DL503\n")
    )
    (tmp_path / "t.py").write_text(source, "utf-8")
    default = dllint("check", "t.py", "--isolated", "--format", "json", cwd=tmp_path)
    assert default.returncode == 0 and json.loads(default.stdout) == []
    result = dllint(
        "check", "t.py", "--isolated", "--format", "json", "--extend-select", "DL003",
        cwd=tmp_path,
    )  # fmt: skip
    reported = json.loads(result.stdout)
    # line 9: DL401 silences nothing (E501 is another tool's); line 11: DL503 no longer
    # fires (DL504 is judged too: it is on by default and ran)
    assert [(d["line"], d["code"]) for d in reported] == [(9, "DL003"), (11, "DL003")]
    assert "DL401 does not fire on this line; remove DL401 from it" in reported[0]["message"]
    assert reported[0]["column"] == len('print("done")  ') + 1
    assert "DL503, DL504 do not fire" in reported[1]["message"]
    # a rule that did not run is not judged
    narrow = dllint(
        "check", "t.py", "--isolated", "--format", "json", "--select", "DL4,unused-noqa",
        cwd=tmp_path,
    )  # fmt: skip
    assert [d["line"] for d in json.loads(narrow.stdout)] == [9]


# --statistics, rules --format json, names ------------------------------------------------


def test_statistics_marks_fixable_codes_in_text_and_json(project):
    text = dllint("check", "train.py", "--statistics", "-q", cwd=project)
    rows = {line.split()[1]: line for line in text.stdout.splitlines()}
    assert rows["DL503"].endswith("[method-not-called] [*]")
    assert rows["DL401"].endswith("[missing-zero-grad]")
    as_json = dllint("check", "train.py", "--statistics", "--format", "json", cwd=project)
    counts = {r["code"]: (r["count"], r["fixable"]) for r in json.loads(as_json.stdout)}
    assert counts == {"DL401": (1, 0), "DL503": (1, 1)}
    sarif = dllint("check", "train.py", "--statistics", "--format", "sarif", cwd=project)
    assert sarif.returncode == 2 and sarif.stdout == ""
    assert "--statistics prints text or JSON" in sarif.stderr


def test_rules_as_json(tmp_path):
    result = dllint("rules", "--format", "json", cwd=tmp_path)
    rows = {row["code"]: row for row in json.loads(result.stdout)}
    assert rows["DL401"]["name"] == "missing-zero-grad" and rows["DL401"]["default_enabled"]
    assert rows["DL503"]["fixable"] and rows["DL503"]["url"].endswith("/DL503.md")
    assert rows["DL003"]["default_enabled"] is False
    table = dllint("rules", cwd=tmp_path).stdout.splitlines()
    assert [line.split()[0] for line in table] == sorted(rows)
    page = dllint("explain", "unused-noqa", cwd=tmp_path).stdout
    assert page.startswith("# DL003 unused-noqa") and "## Look-alikes it leaves alone" in page


def test_rule_names_work_wherever_codes_do(project):
    by_name = dllint(
        "check", "train.py", "--select", "missing-zero-grad", "--format", "json", cwd=project
    )
    assert found(by_name.stdout) == {(DL401_LINE, "DL401")}
    (project / "pyproject.toml").write_text(
        '[tool.dllint]\nignore = ["method-not-called"]\n', "utf-8"
    )
    configured = dllint("check", "train.py", "--format", "json", cwd=project)
    assert found(configured.stdout) == {(DL401_LINE, "DL401")}
    typo = dllint("check", "train.py", "--select", "missing-zero-grd", cwd=project)
    assert typo.returncode == 2 and "'missing-zero-grd'" in typo.stderr


# progress --------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_line_on_a_terminal_is_erased_at_the_end(project):
    import pty

    for number in range(30):
        (project / f"m{number}.py").write_text(TRAIN, "utf-8")
    master, slave = pty.openpty()
    env = {**os.environ, "DLLINT_PROGRESS_AFTER": "0"}  # no need to wait a second here
    process = subprocess.Popen(
        [str(SCRIPT), "check", ".", "--no-cache", "-j", "2", "--format", "json"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        shown += chunk
    stdout, _ = process.communicate(timeout=120)
    os.close(master)
    assert len(json.loads(stdout)) == 2 * 31  # the report is untouched
    text = shown.decode()
    assert re.search(r"\rdllint: \d+/31 files", text)
    assert text.endswith("\r\x1b[K")  # erased: nothing stays on the terminal


def test_no_progress_line_when_stderr_is_not_a_terminal(project):
    for number in range(30):
        (project / f"m{number}.py").write_text(TRAIN, "utf-8")
    result = dllint("check", ".", "--no-cache", cwd=project)
    assert "\r" not in result.stderr
    assert re.fullmatch(r"Found \d+ findings \(\d+ fixable\)\.\n", result.stderr)


def test_server_without_the_lsp_extra_says_how_to_install_it(tmp_path):
    hide_pygls = (
        "import sys; sys.modules['pygls'] = None\n"
        "from dllint.cli import main\n"
        "sys.exit(main(['server']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_pygls], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert 'pip install "dllint[lsp]"' in result.stderr and "pygls is missing" in result.stderr
