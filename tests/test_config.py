"""``[tool.dllint]`` in pyproject.toml: selection, excludes, per-file-ignores, and the
command line overriding the file the way ruff's does."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from dllint.cli import main
from dllint.config import Layer, resolve_codes

FIXTURES = Path(__file__).parent / "fixtures"
MARKER = re.compile(r"#\s*expect:\s*(DL\d{3})")


def positive(code: str) -> str:
    """Source of a fixture in which ``code`` (and no other code) must fire."""
    for path in sorted((FIXTURES / code).glob("pos_*.py")):
        text = path.read_text("utf-8")
        if set(MARKER.findall(text)) == {code}:
            return text
    raise AssertionError(f"no positive fixture for {code}")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project with a DL401 bug and a DL201 bug in src/, and a DL401 bug in tests/."""
    (tmp_path / "src").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "src" / "train.py").write_text(positive("DL401"), "utf-8")
    (tmp_path / "src" / "model.py").write_text(positive("DL201"), "utf-8")
    (tmp_path / "tests" / "test_train.py").write_text(positive("DL401"), "utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def configure(root: Path, body: str) -> None:
    text = "[project]\nname = 'demo'\n\n[tool.dllint]\n" + textwrap.dedent(body)
    (root / "pyproject.toml").write_text(text, "utf-8")


def found(capsys, *argv: str) -> set[tuple[str, str]]:
    """(file relative to the working folder, code) of every finding."""
    code = main(["check", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    return {(Path(d["path"]).as_posix().removeprefix("./"), d["code"]) for d in json.loads(out)}


EVERYTHING = {
    ("src/train.py", "DL401"),
    ("src/model.py", "DL201"),
    ("tests/test_train.py", "DL401"),
}


def test_without_a_config_everything_is_reported(project, capsys):
    assert found(capsys, ".") == EVERYTHING


def test_ignore_in_the_file(project, capsys):
    configure(project, 'ignore = ["DL401"]\n')
    assert found(capsys, ".") == {("src/model.py", "DL201")}


def test_command_line_select_overrides_the_files_ignore(project, capsys):
    configure(project, 'ignore = ["DL401"]\n')
    assert found(capsys, ".", "--select", "DL401") == EVERYTHING - {("src/model.py", "DL201")}


def test_select_extend_select_and_extend_ignore_layer(project, capsys):
    configure(project, 'select = ["DL4"]\n')
    assert found(capsys, ".") == EVERYTHING - {("src/model.py", "DL201")}
    assert found(capsys, ".", "--extend-select", "DL201") == EVERYTHING
    assert found(capsys, ".", "--extend-ignore", "DL401") == set()


def test_extend_ignore_on_the_command_line_beats_select_in_the_file(project, capsys):
    configure(project, 'select = ["DL401", "DL201"]\n')
    assert found(capsys, ".", "--extend-ignore", "DL401") == {("src/model.py", "DL201")}


def test_a_more_specific_select_beats_an_ignored_prefix():
    layer = Layer(select=("DL",), ignore=("DL4",), extend_select=("DL401",))
    codes = resolve_codes(["DL401", "DL402", "DL201"], ["DL401", "DL402", "DL201"], [layer])
    assert codes == {"DL401", "DL201"}


def test_per_file_ignores(project, capsys):
    configure(project, '[tool.dllint.per-file-ignores]\n"tests/*" = ["DL401"]\n')
    assert found(capsys, ".") == EVERYTHING - {("tests/test_train.py", "DL401")}


def test_per_file_ignores_are_relative_to_the_config_not_the_working_folder(
    project, capsys, monkeypatch
):
    configure(project, '[tool.dllint.per-file-ignores]\n"src/model.py" = ["DL2"]\n')
    monkeypatch.chdir(project / "src")
    assert found(capsys, ".") == {("train.py", "DL401")}


def test_extend_exclude_skips_folders_and_explicitly_named_files(project, capsys):
    configure(project, 'extend-exclude = ["tests"]\n')
    assert found(capsys, ".") == EVERYTHING - {("tests/test_train.py", "DL401")}
    # pre-commit passes file names: the user's excludes still apply to them
    assert found(capsys, "tests/test_train.py", "src/train.py") == {("src/train.py", "DL401")}


def test_exclude_replaces_the_default_excludes(project, capsys):
    (project / "build").mkdir()
    (project / "build" / "train.py").write_text(positive("DL401"), "utf-8")
    assert ("build/train.py", "DL401") not in found(capsys, ".")
    configure(project, 'exclude = ["src"]\n')
    assert found(capsys, ".") == {("build/train.py", "DL401"), ("tests/test_train.py", "DL401")}


def test_command_line_exclude_flags(project, capsys):
    configure(project, 'exclude = ["tests"]\n')
    assert found(capsys, ".", "--exclude", "src") == {("tests/test_train.py", "DL401")}
    configure(project, 'extend-exclude = ["tests"]\n')  # extends whatever --exclude says
    assert found(capsys, ".", "--exclude", "src") == set()
    assert found(capsys, ".", "--extend-exclude", "model.py") == {("src/train.py", "DL401")}


def test_the_nearest_config_with_a_dllint_table_governs(project, capsys):
    configure(project, 'ignore = ["DL401"]\n')
    (project / "src" / "pyproject.toml").write_text("[tool.black]\nline-length = 90\n")
    assert found(capsys, "src") == {("src/model.py", "DL201")}  # the table-less one is skipped
    configure(project / "src", 'ignore = ["DL201"]\n')
    assert found(capsys, "src") == {("src/train.py", "DL401")}
    assert found(capsys, "tests") == set()  # governed by the top-level file


def test_config_flag_and_isolated(project, capsys, tmp_path_factory):
    configure(project, 'ignore = ["DL401"]\n')
    assert found(capsys, ".", "--isolated") == EVERYTHING
    other = tmp_path_factory.mktemp("elsewhere") / "dllint.toml"
    other.write_text('ignore = ["DL201"]\n', "utf-8")
    assert found(capsys, ".", "--config", str(other)) == EVERYTHING - {("src/model.py", "DL201")}


def test_parse_errors_can_be_ignored_by_config(project, capsys):
    (project / "src" / "broken.py").write_text("x = (\n", "utf-8")
    assert ("src/broken.py", "DL001") in found(capsys, ".")
    configure(project, 'extend-ignore = ["DL001"]\n')
    assert found(capsys, ".") == EVERYTHING


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('selct = ["DL401"]\n', "'selct'"),
        ('select = "DL401"\n', "'select'"),
        ('ignore = ["DL999"]\n', "'ignore'"),
        ("extend-exclude = [1]\n", "'extend-exclude'"),
        ('per-file-ignores = ["tests"]\n', "'per-file-ignores'"),
        ('[tool.dllint.per-file-ignores]\n"tests/*" = "DL401"\n', "per-file-ignores.'tests/*'"),
        ("select = [\n", "not valid TOML"),
    ],
)
def test_a_bad_config_exits_2_naming_the_key(project, capsys, body, named):
    configure(project, body)
    code = main(["check", "."])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert named in err and "pyproject.toml" in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_a_missing_config_file_exits_2(project, capsys):
    code = main(["check", ".", "--config", "nope.toml"])
    assert code == 2 and "nope.toml" in capsys.readouterr().err


def test_a_default_off_rule_needs_its_full_code_or_all():
    from dllint.config import Layer, resolve_codes

    known, default = ["DL401", "DL407"], ["DL401"]
    assert resolve_codes(known, default, [Layer()]) == {"DL401"}
    assert resolve_codes(known, default, [Layer(select=("DL4",))]) == {"DL401"}
    assert resolve_codes(known, default, [Layer(select=("DL",))]) == {"DL401"}
    assert resolve_codes(known, default, [Layer(extend_select=("DL407",))]) == {"DL401", "DL407"}
    assert resolve_codes(known, default, [Layer(select=("ALL",))]) == {"DL401", "DL407"}
    assert resolve_codes(known, default, [Layer(select=("DL407",))]) == {"DL407"}
