"""The flake8 plugin, through the real ``flake8`` command: the same findings as
``dllint check``, and flake8's own selection and ``# noqa`` honoured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
BIN = Path(sys.executable).parent
MARKER = re.compile(r"#\s*expect:\s*(DL\d{3})")
PROJECTS = FIXTURES / "projects"
# Single-file fixtures: flake8 checks one file at a time, and a finding that one file
# causes in another (a helper's) is reported only by ``dllint check`` (see below).
PY_FIXTURES = sorted(str(p) for p in FIXTURES.rglob("*.py") if PROJECTS not in p.parents)


def flake8(*args: str, cwd: Path | None = None) -> list[str]:
    result = subprocess.run(
        [str(BIN / "flake8"), "--isolated", "--select", "DL", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert result.returncode in (0, 1), result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def dllint(*args: str, cwd: Path | None = None) -> list[str]:
    result = subprocess.run(
        [str(BIN / "dllint"), "check", "--isolated", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert result.returncode in (0, 1), result.stderr
    # flake8 cannot fix: compare without the fixable marks and their summary line
    lines = [line.replace(" [*] ", " ", 1) for line in result.stdout.splitlines()]
    return [line for line in lines if not line.startswith("[*] ")]


def line_and_code(lines: list[str]) -> set[tuple[str, int, str]]:
    found = set()
    for line in lines:
        path, number, _, rest = line.split(":", 3)
        found.add((path, int(number), rest.split()[0]))
    return found


@pytest.fixture(scope="module")
def both() -> tuple[list[str], list[str]]:
    return flake8(*PY_FIXTURES), dllint(*PY_FIXTURES)


def test_flake8_reports_what_dllint_check_reports(both):
    from_flake8, from_dllint = both
    assert any(" DL401 " in line for line in from_dllint)  # the fixtures do hold bugs
    unparsable = {line.split(":")[0] for line in from_dllint if " DL001 " in line}
    expected = [line for line in from_dllint if line.split(":")[0] not in unparsable]
    assert line_and_code(from_flake8) == line_and_code(expected)


def test_same_columns_and_messages_as_dllint_check(both):
    """flake8 prints ``col + 1``: a plugin yielding 1-based columns is one column off."""
    from_flake8, from_dllint = both
    assert set(from_flake8) <= set(from_dllint)
    assert len(from_flake8) == len(set(from_flake8))


def test_extend_ignore_removes_a_code(both):
    from_flake8, _ = both
    ignored = flake8("--extend-ignore=DL401", *PY_FIXTURES)
    assert {c for _, _, c in line_and_code(ignored)} == (
        {c for _, _, c in line_and_code(from_flake8)} - {"DL401"}
    )
    assert ignored


def _positive(code: str) -> Path:
    for path in sorted((FIXTURES / code).glob("pos_*.py")):
        if set(MARKER.findall(path.read_text("utf-8"))) == {code}:
            return path
    raise AssertionError(code)


def test_noqa_and_per_file_ignores_are_flake8s(tmp_path):
    source = _positive("DL401").read_text("utf-8")
    (tmp_path / "train.py").write_text(source, "utf-8")
    (tmp_path / "quiet.py").write_text(
        re.sub(r"#\s*expect:\s*DL401", "# noqa: DL401", source), "utf-8"
    )
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "train.py").write_text(source, "utf-8")
    found = line_and_code(flake8(".", "--per-file-ignores=scripts/*:DL401", cwd=tmp_path))
    assert {path for path, _, _ in found} == {"./train.py"}
    assert {(n, c) for _, n, c in found} == {
        (n, "DL401") for n, line in enumerate(source.splitlines(), 1) if MARKER.search(line)
    }


def test_flake8_sees_the_project_of_the_file_it_checks():
    """train.py imports a model that ends in softmax from model.py: flake8, given
    train.py alone, reports the loss call there, and nothing in model.py."""
    project = PROJECTS / "pos_softmax_head_in_model_py"
    found = line_and_code(flake8("train.py", cwd=project))
    assert found == {("train.py", 14, "DL301")}
    assert line_and_code(flake8("model.py", cwd=project)) == set()
