"""Every fixture: the (line, code) pairs dllint reports equal the ``# expect:`` markers.

A marker ``# expect: DL401`` (or ``# expect: DL401, DL301``) sits on the line where the
finding must be reported. In notebooks the markers sit in cells and lines count
within the cell. A missing finding and an extra finding both fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dllint.engine import check_file
from dllint.registry import all_rules

FIXTURES = Path(__file__).parent / "fixtures"
MARKER = re.compile(r"#\s*expect:\s*([A-Z]{2}\d{3}(?:\s*,\s*[A-Z]{2}\d{3})*)")
PROJECTS = FIXTURES / "projects"  # multi-file projects: test_project_fixtures.py
FILES = sorted(
    p for p in FIXTURES.rglob("*") if p.suffix in (".py", ".ipynb") and PROJECTS not in p.parents
)


def expected_markers(path: Path) -> set[tuple]:
    expected = set()
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text("utf-8"))["cells"]
        for number, cell in enumerate(cells, start=1):
            source = cell["source"]
            source = "".join(source) if isinstance(source, list) else source
            for line_no, line in enumerate(source.split("\n"), start=1):
                for match in MARKER.finditer(line):
                    for code in match.group(1).split(","):
                        expected.add((number, line_no, code.strip()))
        return expected
    text = path.read_bytes().decode("utf-8", errors="replace")
    for line_no, line in enumerate(text.splitlines(), start=1):
        for match in MARKER.finditer(line):
            for code in match.group(1).split(","):
                expected.add((line_no, code.strip()))
    return expected


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture(path: Path) -> None:
    rules = [rule for rule in all_rules()]  # every rule, default-off ones included
    findings = check_file(str(path), rules)
    if path.suffix == ".ipynb":
        reported = {(f.cell, f.line, f.code) for f in findings}
    else:
        reported = {(f.line, f.code) for f in findings}
    expected = expected_markers(path)
    details = "\n".join(f"  {f.line}:{f.column} {f.code} {f.message}" for f in findings)
    assert reported == expected, (
        f"missing: {sorted(expected - reported)}\nextra: {sorted(reported - expected)}\n"
        f"reported:\n{details}"
    )


def test_there_are_fixtures() -> None:
    assert len(FILES) >= 10
