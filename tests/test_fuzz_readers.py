"""Fuzzing the notebook reader and the configuration reader: whatever the bytes, each
either returns or raises its documented error (ParseFailure, which becomes DL001;
ConfigError, which the CLI shows as one line with exit 2), never anything else."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dllint.cli import main
from dllint.config import ConfigError, load_config
from dllint.engine import check_file, read_source
from dllint.notebook import notebook_source
from dllint.registry import all_rules
from dllint.source import ParseFailure, decode

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
KNOWN = [rule.code for rule in all_rules()] + ["DL001", "DL002"]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
cell_sources = st.one_of(
    st.text(max_size=80),
    st.lists(st.text(alphabet=string.printable + "%!?", max_size=30), max_size=5),
    json_values,
)
cells = st.fixed_dictionaries(
    {"cell_type": st.sampled_from(["code", "markdown", "raw", 3, None]), "source": cell_sources},
    optional={"metadata": json_values, "outputs": json_values},
)
notebooks = st.one_of(
    st.fixed_dictionaries(
        {"cells": st.lists(cells, max_size=4)}, optional={"nbformat": json_values}
    ),
    st.fixed_dictionaries({"cells": json_values}),
    json_values,
)


def _read_notebook(data: bytes) -> None:
    try:
        text, origin = notebook_source(decode(data))
    except ParseFailure:
        return
    assert isinstance(text, str) and len(origin) <= text.count("\n")


@FUZZ
@given(notebooks)
def test_notebook_reader_takes_any_json(document):
    _read_notebook(json.dumps(document).encode())


@FUZZ
@given(st.binary(max_size=300))
def test_notebook_reader_takes_any_bytes(data):
    _read_notebook(data)


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b'{"cells": ' + b"[" * 50_000, b"\xff\xfe{}", b"\xef\xbb\xbf{}", b"null"],
)
def test_notebook_reader_hostile_documents(data):
    _read_notebook(data)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.fixed_dictionaries({"cells": st.lists(cells, min_size=1, max_size=3)}))
def test_checking_any_notebook_gives_findings_not_exceptions(tmp_path, document):
    path = tmp_path / "fuzz.ipynb"
    path.write_text(json.dumps(document), "utf-8")
    findings = check_file(str(path), all_rules())
    assert all(f.code != "DL002" for f in findings), findings


toml_keys = st.sampled_from(
    [
        "select",
        "ignore",
        "extend-select",
        "extend-ignore",
        "exclude",
        "extend-exclude",
        "per-file-ignores",
        "selct",
        "line-length",
    ]
)
toml_values = st.sampled_from(
    [
        '["DL4"]',
        '["DL401", "ALL"]',
        '["NOPE"]',
        '"DL4"',
        "1",
        "[1, 2]",
        "{}",
        '{ "tests/*" = ["DL4"] }',
        '{ "a" = "DL4" }',
        "[[[[]]]]",
        '["**/gen/*", "[!a]"]',
        "true",
    ]
)
toml_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.tuples(toml_keys, toml_values), max_size=5).map(
        lambda pairs: "[tool.dllint]\n" + "".join(f"{k} = {v}\n" for k, v in pairs)
    ),
)


def _load(tmp_path, data: bytes, name: str = "pyproject.toml") -> None:
    path = tmp_path / name
    path.write_bytes(data)
    try:
        config = load_config(path, KNOWN)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip() or str(path) in str(exc)
        return
    assert config.source == path


@FUZZ
@given(toml_texts, st.sampled_from(["pyproject.toml", "dllint.toml"]))
def test_config_reader_takes_any_text(tmp_path, text, name):
    _load(tmp_path, text.encode("utf-8", "surrogatepass"), name)


@FUZZ
@given(st.binary(max_size=200))
def test_config_reader_takes_any_bytes(tmp_path, data):
    _load(tmp_path, b"[tool.dllint]\n" + data)


@pytest.mark.parametrize(
    "data",
    [b"[tool.dllint]\nselect = " + b"[" * 50_000, b"[tool.dllint]\nselect = ['\xff']\n", b"\x00"],
)
def test_config_reader_hostile_files(tmp_path, data):
    _load(tmp_path, data)


def test_a_broken_config_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.dllint]\nselect = ['\xff']\n")
    (tmp_path / "train.py").write_text("import torch\n", "utf-8")
    config = str(tmp_path / "pyproject.toml")
    code = main(["check", str(tmp_path / "train.py"), "--no-cache", "--config", config])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "pyproject.toml" in err


def test_read_source_of_a_notebook_with_bad_bytes(tmp_path):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(b'{"cells": [\xff]}')
    with pytest.raises(ParseFailure):
        read_source(str(path))
