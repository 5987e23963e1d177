"""Notebooks: cells checked as one module, IPython syntax neutralised in place,
findings reported at (cell, line in cell, column)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from dllint.cli import main
from dllint.notebook import cell_lines

IMPORTS = """%matplotlib inline
!pip install -q torch torchvision
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset"""

MODEL = """class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))"""

SETUP = """model = Net()
nn.init.kaiming_normal_(model.fc1.weight)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
loader = DataLoader(TensorDataset(torch.randn(64, 784), torch.randint(0, 10, (64,))), 8)
files = !ls data
Net?
?optimizer"""

TRAIN = """%%time
for epoch in range(3):
    for x, y in loader:
        out = model(x)
        loss = criterion(out, y)
        loss.backward()
        %time optimizer.step()
    print(epoch, loss.item())"""

FINE_TUNE = """head_opt = torch.optim.Adam(model.fc2.parameters())
for x, y in loader:
    criterion(model(x), y).backward()
    head_opt.step()  # noqa: DL401"""

SHELL = """%%bash
for f in data/*; do echo "$f"; done"""


def notebook(*cells: tuple[str, str]) -> dict:
    return {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for kind, source in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write(path: Path, *cells: tuple[str, str]) -> None:
    path.write_text(json.dumps(notebook(*cells), indent=1), "utf-8")


TRAINING_NOTEBOOK = notebook(
    ("markdown", "# Train an MNIST classifier"),  # cell 1
    ("code", IMPORTS),  # cell 2
    ("code", MODEL),  # cell 3
    ("raw", "not python at all: ("),  # cell 4
    ("code", SETUP),  # cell 5
    ("markdown", "## Training"),  # cell 6
    ("code", TRAIN),  # cell 7
    ("code", FINE_TUNE),  # cell 8
    ("code", SHELL),  # cell 9
)


def position(source: str, text: str) -> tuple[int, int]:
    """1-based (line, column) of ``text`` in a cell's source."""
    for number, line in enumerate(source.splitlines(), start=1):
        if text in line:
            return number, line.index(text) + 1
    raise AssertionError(text)


def check(capsys, path: Path, *flags: str) -> tuple[int, list[dict]]:
    code = main(["check", str(path), "--format", "json", *flags])
    out, err = capsys.readouterr()
    assert err == ""
    return code, json.loads(out)


@pytest.fixture
def training(tmp_path) -> Path:
    path = tmp_path / "train.ipynb"
    path.write_text(json.dumps(TRAINING_NOTEBOOK, indent=1), "utf-8")
    return path


def test_bugs_spanning_cells_are_reported_at_their_cell_line_and_column(capsys, training):
    code, found = check(capsys, training)
    assert code == 1
    reported = {(d["cell"], d["line"], d["column"], d["code"]) for d in found}
    # the class from cell 3 tells DL201 that fc1 feeds tanh; the loop in cell 7 steps the
    # optimizer from cell 5 (on a `%time` line: the column is the code's, after the magic)
    assert reported == {
        (5, *position(SETUP, "nn.init.kaiming_normal_"), "DL201"),
        (7, *position(TRAIN, "optimizer.step()"), "DL401"),
    }


def test_text_output_names_the_cell(capsys, training):
    assert main(["check", str(training), "--select", "DL401"]) == 1
    line, column = position(TRAIN, "optimizer.step()")
    out = capsys.readouterr().out
    assert out.startswith(f"{training}:cell 7:{line}:{column}: DL401 [missing-zero-grad] ")


def test_end_position_is_in_the_cell_too(capsys, training):
    _, found = check(capsys, training, "--select", "DL401")
    (finding,) = found
    assert finding["end_line"] == finding["line"]
    assert finding["end_column"] == finding["column"] + len("optimizer.step()")


def test_noqa_inside_a_cell(capsys, tmp_path):
    loop = FINE_TUNE.replace("  # noqa: DL401", "")
    path = tmp_path / "nb.ipynb"
    path.write_text(
        json.dumps(
            notebook(("code", IMPORTS), ("code", MODEL + "\n"), ("code", SETUP), ("code", loop))
        )
    )
    _, found = check(capsys, path, "--select", "DL401")
    assert [(d["cell"], d["line"]) for d in found] == [(4, position(loop, "head_opt.step")[0])]
    path.write_text(
        json.dumps(
            notebook(
                ("code", IMPORTS), ("code", MODEL + "\n"), ("code", SETUP), ("code", FINE_TUNE)
            )
        )
    )
    assert check(capsys, path, "--select", "DL401") == (0, [])


def test_a_syntax_error_is_dl001_in_its_cell(capsys, tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text(
        json.dumps(
            notebook(
                ("markdown", "x"),
                ("code", IMPORTS),
                ("code", "a = 1\nb = (2,\n"),
                ("code", "c = 3"),
            )
        )
    )
    code, found = check(capsys, path)
    assert code == 1
    assert [(d["code"], d["cell"]) for d in found] == [("DL001", 3)]
    assert found[0]["line"] == 2


@pytest.mark.parametrize(
    ("data", "words", "line"),
    [
        ('{"cells": [', "not a valid notebook", 1),
        ('{\n "cells": 3}', "no list of cells", 1),
        ('{\n  "cells": [\n    {"cell_type": "code" "source": ""}]}', "not a valid notebook", 3),
    ],
)
def test_a_notebook_that_is_not_valid_json_is_dl001(capsys, tmp_path, data, words, line):
    path = tmp_path / "bad.ipynb"
    path.write_text(data, "utf-8")
    code, found = check(capsys, path)
    assert code == 1
    (finding,) = found
    assert finding["code"] == "DL001" and words in finding["message"]
    assert finding["line"] == line and "cell" not in finding


def test_an_empty_notebook_and_one_without_code_are_fine(capsys, tmp_path):
    empty = tmp_path / "empty.ipynb"
    empty.write_text(json.dumps(notebook()))
    prose = tmp_path / "prose.ipynb"
    prose.write_text(json.dumps(notebook(("markdown", "# only words"))))
    assert check(capsys, empty) == (0, [])
    assert check(capsys, prose) == (0, [])


# Neutralising IPython syntax, line by line --------------------------------------


@pytest.mark.parametrize(
    ("line", "python"),
    [
        ("%matplotlib inline", "pass  # %matplotlib inline"),
        ("!pip install torch", "pass  # !pip install torch"),
        ("!!ls", "pass  # !!ls"),
        ("?model", "pass  # ?model"),
        ("model.forward??", "pass  # model.forward??"),
        ("np.*load*?", "pass  # np.*load*?"),
        ("%timeit -n 3 f(x)", "pass  # %timeit -n 3 f(x)"),
        ("files = !ls data", "files = __ipython__  # !ls data"),
        ("a, b = %sx echo 1", "a, b = __ipython__  # %sx echo 1"),
        ("%time model = fit(x)", "model = fit(x)"),
        ("/print 1 2", "pass  # /print 1 2"),
        ("    %time step(i)", "step(i)"),  # a cell's common indent goes, as in IPython
        ("    !nvidia-smi", "pass  # !nvidia-smi"),
        ("x = 1  # why?", "x = 1  # why?"),
        ("y = a % b", "y = a % b"),
        ("print('?')", "print('?')"),
    ],
)
def test_one_line(line, python):
    assert cell_lines(line)[0] == [python]


def test_shift_is_the_magic_prefix_removed():
    assert cell_lines("for i in r:\n    %time step(i)")[1] == [0, len("%time ")]


def test_python_inside_brackets_and_strings_is_left_alone():
    source = 'total = (a\n         % b)\ndoc = """\n?not help\n%not magic\n"""\nx = [1,\n!= 2]'
    assert cell_lines(source)[0] == source.split("\n")


def test_a_shell_command_continued_with_a_backslash():
    lines, _ = cell_lines("!pip install \\\n    torch\nimport torch")
    assert lines == ["pass  # !pip install \\", "", "import torch"]


def test_cell_magics_keep_python_bodies_and_blank_others():
    assert cell_lines("%%time\nx = f()\n!ls")[0] == ["pass  # %%time", "x = f()", "pass  # !ls"]
    assert cell_lines("%%bash\nif [ -f x ]; then\n  echo (\nfi")[0] == [
        "pass  # %%bash",
        "",
        "",
        "",
    ]


def test_every_neutralised_cell_parses_and_keeps_its_line_count():
    for cell in (IMPORTS, MODEL, SETUP, TRAIN, FINE_TUNE, SHELL):
        lines, shifts = cell_lines(cell)
        assert len(lines) == len(shifts) == len(cell.split("\n"))
        ast.parse("\n".join(lines))


def test_line_numbers_in_messages_are_the_cells(capsys, training):
    _, found = check(capsys, training, "--select", "DL401")
    loop_line, _ = position(TRAIN, "for x, y in loader")
    assert f"loop on line {loop_line} " in found[0]["message"]


def test_a_line_in_another_cell_is_named_with_its_cell():
    from dllint.notebook import Origin, _message

    origin = [Origin(2, 1), Origin(2, 2), Origin(4, 1), Origin(4, 2)]
    assert _message("see line 2 and line 4; line 9", 4, origin) == (
        "see line 2 of cell 2 and line 2; line 9"
    )
