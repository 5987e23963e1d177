"""Every shipped rule is documented, fixture-tested both ways, and named as the catalog says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dllint.registry import all_rules

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
MARKER = re.compile(r"#\s*expect:\s*([A-Z]{2}\d{3}(?:\s*,\s*[A-Z]{2}\d{3})*)")
RULES = all_rules()


def test_codes_and_names_are_unique():
    assert len({r.code for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_metadata(rule):
    assert re.fullmatch(r"DL[1-9]\d\d", rule.code)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
    assert rule.summary and not rule.summary.endswith(".")
    assert rule.severity in ("error", "warning", "note")


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_has_a_docs_page_with_the_standard_sections(rule):
    page = (ROOT / "docs" / "rules" / f"{rule.code}.md").read_text("utf-8")
    assert page.startswith(f"# {rule.code} {rule.name}")
    for section in (
        "## What it does",
        "## Why is this bad?",
        "## Example",
        "## Use instead",
        "## Look-alikes it leaves alone",
    ):
        assert section in page, f"{rule.code}.md lacks {section!r}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_has_five_positive_and_five_negative_fixtures(rule):
    folder = FIXTURES / rule.code
    files = [p for p in folder.glob("*") if p.suffix in (".py", ".ipynb")]
    positive = [
        p
        for p in files
        if rule.code
        in {
            code.strip()
            for m in MARKER.finditer(p.read_text("utf-8"))
            for code in m.group(1).split(",")
        }
    ]
    negative = [p for p in files if p.name.startswith("neg")]
    assert len(positive) >= 5, f"{rule.code}: {len(positive)} positive fixtures"
    assert len(negative) >= 5, f"{rule.code}: {len(negative)} negative fixtures"
    for path in negative:
        markers = {
            c.strip()
            for m in MARKER.finditer(path.read_text("utf-8"))
            for c in m.group(1).split(",")
        }
        assert rule.code not in markers, f"{path.name} is negative but expects {rule.code}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_readme_lists_the_rule_with_its_level_and_fix(rule):
    readme = (ROOT / "README.md").read_text("utf-8")
    row = next((line for line in readme.splitlines() if line.startswith(f"| [{rule.code}]")), None)
    assert row is not None, f"README.md has no row for {rule.code}"
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == rule.name and cells[2].startswith(rule.severity)
    assert (cells[3] == "yes") == rule.fixable
    assert ("off by default" in cells[2]) == (not rule.default_enabled)
