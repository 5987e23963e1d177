"""``--fix`` on notebooks: the code cells' sources are fixed, everything else (outputs,
metadata, markdown, the JSON layout) is written back as it was."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dllint.cli import main
from dllint.engine import check_file
from dllint.registry import all_rules

FIXTURES = Path(__file__).parent / "fixtures"
RULES = list(all_rules())

CELLS = [
    {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {"tags": ["setup"]},
        "outputs": [{"output_type": "stream", "name": "stdout", "text": ["héllo\n"]}],
        "source": [
            "import torch\n",
            "import torch.nn as nn\n",
            "%matplotlib inline\n",
            "\n",
            "model = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5))\n",
            "criterion = nn.CrossEntropyLoss()\n",
            "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)",
        ],
    },
    {"cell_type": "markdown", "metadata": {}, "source": ["# Train: loss.backward"]},
    {
        "cell_type": "code",
        "execution_count": 2,
        "metadata": {},
        "outputs": [],
        "source": [
            "    for x, y in loader:\n",  # a common indent, which IPython removes
            "        optimizer.zero_grad()\n",
            "        loss = criterion(model(x), y)\n",
            "        %time loss.backward\n",
            "        optimizer.step()",
        ],
    },
]
DOCUMENT = {
    "cells": CELLS,
    "metadata": {"kernelspec": {"name": "python3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def write(path: Path, document: dict, **layout) -> Path:
    layout = layout or {"indent": 1, "ensure_ascii": False}
    path.write_text(json.dumps(document, **layout) + "\n", "utf-8")
    return path


def run(capsys, *argv: str) -> int:
    code = main(["check", *argv, "--isolated", "--no-cache"])
    capsys.readouterr()
    return code


def test_fix_rewrites_the_cell_source_and_nothing_else(tmp_path, capsys):
    path = write(tmp_path / "train.ipynb", DOCUMENT)
    (finding,) = [f for f in check_file(str(path), RULES) if f.code == "DL503"]
    assert (finding.cell, finding.line, finding.fix_safety) == (3, 4, "safe")
    run(capsys, "--fix", str(path))
    expected = copy.deepcopy(DOCUMENT)
    expected["cells"][2]["source"][3] = "        %time loss.backward()\n"
    assert path.read_text("utf-8") == json.dumps(expected, indent=1, ensure_ascii=False) + "\n"
    assert [f.code for f in check_file(str(path), RULES) if f.code == "DL503"] == []
    before = path.read_bytes()
    run(capsys, "--fix", str(path))
    assert path.read_bytes() == before


def test_the_layout_of_the_json_is_kept(tmp_path, capsys):
    path = write(tmp_path / "compact.ipynb", DOCUMENT, indent=2, ensure_ascii=True)
    run(capsys, "--fix", str(path))
    text = path.read_text("utf-8")
    assert "loss.backward()" in text and "h\\u00e9llo" in text
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=True) + "\n"


def test_an_unusual_layout_is_left_alone(tmp_path, capsys):
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps(DOCUMENT, indent=3, separators=(",", " : ")), "utf-8")
    before = path.read_bytes()
    run(capsys, "--fix", str(path))
    assert path.read_bytes() == before


NOTEBOOKS = [
    path
    for path in sorted(FIXTURES.rglob("*.ipynb"))
    if any(f.fixable() for f in check_file(str(path), RULES))
]


@pytest.mark.parametrize("fixture", NOTEBOOKS, ids=lambda p: p.name)
def test_fixture_notebooks_keep_everything_but_code(fixture, tmp_path, capsys):
    path = tmp_path / fixture.name
    path.write_bytes(fixture.read_bytes())
    run(capsys, "--fix", str(path))
    old, new = json.loads(fixture.read_text("utf-8")), json.loads(path.read_text("utf-8"))
    assert new != old
    for document in (old, new):
        for cell in document["cells"]:
            if cell["cell_type"] == "code":
                cell["source"] = None
    assert new == old
