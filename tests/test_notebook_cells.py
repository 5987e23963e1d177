"""Notebooks as Jupyter runs them: each cell compiled on its own (one broken exercise
cell is reported and the others checked), a cell's common indent removed, other
languages' notebooks skipped, nbformat 3 read."""

from __future__ import annotations

import json
from pathlib import Path

from dllint.engine import check_file
from dllint.registry import all_rules

RULES = [rule for rule in all_rules() if rule.default_enabled]

SETUP = """\
import torch
import torch.nn as nn

model = nn.Linear(4, 2)
criterion = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""
# DL401 on its last line (line 5 of the cell): gradients never cleared.
LOOP = """\
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
    # the optimizer steps here
    opt.step()
"""


def notebook(tmp_path: Path, sources: list[str], metadata: dict | None = None) -> Path:
    cells = [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": source.splitlines(keepends=True),
        }
        for source in sources
    ]
    cells.insert(1, {"cell_type": "markdown", "metadata": {}, "source": ["# Exercise"]})
    document = {"cells": cells, "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "exercise.ipynb"
    path.write_text(json.dumps(document, indent=1))
    return path


def found(path: Path) -> list[tuple]:
    return sorted((f.cell, f.line, f.column, f.code) for f in check_file(str(path), RULES))


def cpython_says(source: str) -> str:
    try:
        compile(source, "<cell>", "exec")
    except SyntaxError as exc:
        return f"syntax error: {exc.msg}"
    raise AssertionError("it compiles")


def test_one_broken_cell_is_reported_and_the_others_checked(tmp_path):
    path = notebook(tmp_path, [SETUP, "model = # TODO\n", LOOP])
    assert found(path) == [(3, 1, 9, "DL001"), (4, 5, 5, "DL401")]
    (error,) = [f for f in check_file(str(path), RULES) if f.code == "DL001"]
    assert error.message == cpython_says("model = # TODO\n")


def test_the_message_is_cpythons_for_that_cell(tmp_path):
    broken = "x = 1\n    y = 2\n"
    path = notebook(tmp_path, [SETUP, broken, LOOP])
    (error,) = [f for f in check_file(str(path), RULES) if f.code == "DL001"]
    assert error.message == cpython_says(broken) == "syntax error: unexpected indent"
    assert (error.cell, error.line) == (3, 2)


def test_a_cell_with_a_common_indent_runs_as_in_jupyter(tmp_path):
    indented = "".join("    " + line for line in LOOP.splitlines(keepends=True))
    path = notebook(tmp_path, [SETUP, indented])
    assert found(path) == [(3, 5, 9, "DL401")]  # the column of the cell as written


def test_r_and_julia_notebooks_are_skipped(tmp_path):
    for metadata in (
        {"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}},
        {"language_info": {"name": "julia"}},
    ):
        path = notebook(tmp_path, ["library(torch)\nx <- c(1, 2)\n", "f(x) = 2x\n"], metadata)
        assert found(path) == []


def test_a_python_kernel_is_still_checked(tmp_path):
    metadata = {"kernelspec": {"name": "python3", "language": "python"}}
    path = notebook(tmp_path, [SETUP, LOOP], metadata)
    assert found(path) == [(3, 5, 5, "DL401")]


def test_nbformat_3_worksheets_are_read(tmp_path):
    cells = [
        {"cell_type": "code", "language": "python", "input": SETUP.splitlines(True)},
        {"cell_type": "markdown", "source": ["notes"]},
        {"cell_type": "code", "language": "python", "input": LOOP.splitlines(True)},
    ]
    document = {"worksheets": [{"cells": cells}], "metadata": {}, "nbformat": 3}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(document))
    assert found(path) == [(3, 5, 5, "DL401")]


def test_an_unknown_format_is_refused_plainly(tmp_path):
    path = tmp_path / "ancient.ipynb"
    path.write_text(json.dumps({"nbformat": 2, "metadata": {}}))
    (error,) = check_file(str(path), RULES)
    assert error.code == "DL001" and "nbformat 2" in error.message
    assert "3 and 4 are supported" in error.message
