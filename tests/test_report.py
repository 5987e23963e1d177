"""Output formats: SARIF 2.1.0 for code scanning, GitHub workflow commands, statistics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dllint.cli import main
from dllint.finding import Finding
from dllint.registry import all_rules, rule_by_code
from dllint.report.github import github_command
from dllint.report.rules import DOCS_BASE_URL

ROOT = Path(__file__).parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MARKER = re.compile(r"#\s*expect:\s*(DL\d{3})")


def positives() -> list[Path]:
    """One positive fixture per rule code that has fixtures."""
    chosen = []
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("pos_*.py")):
            if set(MARKER.findall(path.read_text("utf-8"))) == {folder.name}:
                chosen.append(path)
                break
    return chosen


@pytest.fixture
def inputs(tmp_path, monkeypatch) -> list[str]:
    """Relative paths of buggy fixtures, an unparsable file and a notebook."""
    monkeypatch.chdir(tmp_path)
    names = []
    for path in positives():
        target = Path("src") / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text("utf-8"), "utf-8")
        names.append(str(target))
    Path("broken file.py").write_text("x = (\n", "utf-8")
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# notes"},
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "source": "import torch\nopt = torch.optim.SGD(params)\nfor x in data:\n"
                "    f(x).backward()\n    opt.step()",
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    Path("nb.ipynb").write_text(json.dumps(notebook), "utf-8")
    return [*names, "broken file.py", "nb.ipynb"]


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


# SARIF ----------------------------------------------------------------------------


def check_sarif_structure(log: dict) -> None:
    """The SARIF 2.1.0 required properties, and what GitHub code scanning reads."""
    assert log["$schema"].endswith("sarif-2.1.0.json")
    assert log["version"] == "2.1.0"
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run_ = log["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "dllint"
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["id"] and rule["shortDescription"]["text"]
        assert rule["helpUri"] == f"{DOCS_BASE_URL}{rule['id']}.md"
    assert isinstance(run_["results"], list)
    for result in run_["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        assert uri and not uri.startswith("/") and ":" not in uri and " " not in uri
        region = physical["region"]
        assert region["startLine"] >= 1
        assert region.get("startColumn", 1) >= 1
        end_line = region.get("endLine", region["startLine"])
        assert end_line >= region["startLine"]
        if end_line == region["startLine"] and "endColumn" in region:
            assert region["endColumn"] >= region.get("startColumn", 1)


def test_sarif_has_the_required_structure(capsys, inputs):
    code, out = run(capsys, "check", *inputs, "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    check_sarif_structure(log)
    results = log["runs"][0]["results"]
    on_by_default = {rule.code for rule in all_rules() if rule.default_enabled}
    assert {r["ruleId"] for r in results} >= {
        folder for folder in {Path(p).parent.name for p in inputs[:-2]} if folder in on_by_default
    }
    assert "DL001" in {r["ruleId"] for r in results}


def test_sarif_levels_and_locations_match_the_findings(capsys, inputs):
    _, out = run(capsys, "check", *inputs, "--format", "json")
    findings = json.loads(out)
    _, out = run(capsys, "check", *inputs, "--format", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    assert len(results) == len(findings)
    levels = {"error": "error", "warning": "warning", "note": "note"}
    for finding, result in zip(findings, results, strict=True):
        assert result["ruleId"] == finding["code"]
        assert result["level"] == levels[finding["severity"]]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == finding["path"].replace(" ", "%20")
        if "cell" in finding:  # a notebook: the cell and its line are in the message
            assert result["message"]["text"].startswith(
                f"cell {finding['cell']}, line {finding['line']}: "
            )
            continue
        assert location["region"]["startLine"] == finding["line"]
        assert location["region"]["startColumn"] == finding["column"]
    for code in {f["code"] for f in findings} - {"DL001", "DL002"}:
        assert rule_by_code(code) is not None  # its page is checked by test_rule_catalog


def test_sarif_of_a_clean_run_is_still_a_valid_log(capsys, tmp_path):
    clean = tmp_path / "clean.py"
    clean.write_text("import torch\n", "utf-8")
    code, out = run(capsys, "check", str(clean), "--format", "sarif")
    log = json.loads(out)
    check_sarif_structure(log)
    assert code == 0 and log["runs"][0]["results"] == []


# GitHub workflow commands ---------------------------------------------------------

COMMAND = re.compile(
    r"^::(error|warning|notice) ((?:[a-zA-Z]+=[^,:\r\n]*)(?:,[a-zA-Z]+=[^,:\r\n]*)*)::(.*)$"
)
PROPERTIES = {"file", "line", "col", "endLine", "endColumn", "title"}


def unescape(text: str) -> str:
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    match = COMMAND.match(line)
    assert match, line
    props = dict(part.split("=", 1) for part in match.group(2).split(","))
    assert set(props) <= PROPERTIES
    assert "%" not in re.sub(r"%(25|0D|0A|3A|2C)", "", match.group(3) + match.group(2))
    return match.group(1), {k: unescape(v) for k, v in props.items()}, unescape(match.group(3))


def test_github_lines_are_valid_workflow_commands(capsys, inputs):
    code, out = run(capsys, "check", *inputs, "--format", "github")
    assert code == 1
    _, as_json = run(capsys, "check", *inputs, "--format", "json")
    findings = json.loads(as_json)
    lines = out.splitlines()
    assert len(lines) == len(findings)
    for line, finding in zip(lines, findings, strict=True):
        command, props, message = parse_command(line)
        assert (
            command
            == {"error": "error", "warning": "warning", "note": "notice"}[finding["severity"]]
        )
        assert props["file"] == finding["path"]
        assert props["title"] == f"{finding['code']} [{finding['name']}]"
        if "cell" in finding:
            assert "line" not in props and message.startswith(f"cell {finding['cell']}, ")
        else:
            assert (int(props["line"]), int(props["col"])) == (finding["line"], finding["column"])
            assert message == finding["message"]


def test_github_escapes_what_the_runner_requires():
    finding = Finding(
        path="odd, dir/a:b.py",
        line=3,
        column=5,
        code="DL401",
        name="missing-zero-grad",
        message="100% sure:\r\nline two, really",
        end_line=3,
        end_column=9,
        severity="warning",
    )
    line = github_command(finding)
    assert "\n" not in line and "\r" not in line
    command, props, message = parse_command(line)
    assert command == "warning"
    assert props == {
        "file": "odd, dir/a:b.py",
        "line": "3",
        "col": "5",
        "endLine": "3",
        "endColumn": "9",
        "title": "DL401 [missing-zero-grad]",
    }
    assert message == "100% sure:\r\nline two, really"
    assert line.endswith("::100%25 sure:%0D%0Aline two, really")


# Statistics -----------------------------------------------------------------------


def test_statistics_as_json(capsys, inputs):
    _, out = run(capsys, "check", *inputs, "--format", "json")
    findings = json.loads(out)
    code, out = run(capsys, "check", *inputs, "--statistics", "--format", "json")
    assert code == 1
    rows = json.loads(out)
    assert {r["code"]: r["count"] for r in rows} == {
        c: sum(f["code"] == c for f in findings) for c in {f["code"] for f in findings}
    }
    counts = [r["count"] for r in rows]
    assert counts == sorted(counts, reverse=True)


def test_github_paths_are_relative_to_the_workspace(capsys, inputs):
    absolute = str(Path(inputs[0]).resolve())
    _, out = run(capsys, "check", absolute, "--format", "github")
    assert out and all(parse_command(line)[1]["file"] == inputs[0] for line in out.splitlines())
