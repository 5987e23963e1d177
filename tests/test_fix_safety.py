"""Safe and unsafe fixes, as in ruff: ``--fix`` applies only the fixes that are certainly
what the author meant, ``--unsafe-fixes`` the others too, and a fix after which the file
reports something new is never safe."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from dllint.autofix import fix_text
from dllint.cli import main
from dllint.engine import check_file, check_text
from dllint.registry import all_rules, select_rules

FIXTURES = Path(__file__).parent / "fixtures"
RULES = list(select_rules())

HEADER = """\
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
"""

# Each bare method is a DL503 finding; adding its parentheses would create the finding
# named: the fix is right about the call and wrong about the place.
CREATES_A_FINDING = {
    "DL402": """\
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward(); optimizer.zero_grad; optimizer.step()
    """,
    "DL502": """\
    for epoch in range(3):
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval
        with torch.no_grad():
            for x, y in val_loader:
                print(criterion(model(x), y).item())
    """,
    "DL404": """\
    for epoch in range(3):
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            scheduler.step
            optimizer.step()
    """,
}


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "train.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv, "--isolated", "--no-cache"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("created", sorted(CREATES_A_FINDING))
def test_a_fix_that_creates_a_finding_is_unsafe(created, tmp_path, capsys):
    path = write(tmp_path, CREATES_A_FINDING[created])
    before = path.read_text()
    (finding,) = [f for f in check_file(str(path), RULES) if f.code == "DL503"]
    assert finding.fix is not None and finding.fix_safety == "unsafe"

    code, out, _ = run(capsys, str(path))
    assert " DL503 [method-not-called] [~] error:" in out
    assert "[~] 1 more fixable with `dllint check --fix --unsafe-fixes`" in out
    assert "[*]" not in out

    run(capsys, "--fix", str(path))
    assert path.read_text() == before, "--fix applied an unsafe fix"
    code, out, _ = run(capsys, "--diff", str(path))
    assert code == 0 and out == ""

    run(capsys, "--fix", "--unsafe-fixes", str(path))
    assert path.read_text() != before
    assert created in {f.code for f in check_file(str(path), RULES)}


def test_a_fix_that_creates_nothing_stays_safe(tmp_path, capsys):
    path = write(
        tmp_path,
        """\
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward
            optimizer.step()
        """,
    )
    (finding,) = [f for f in check_file(str(path), RULES) if f.code == "DL503"]
    assert finding.fix_safety == "safe"
    code, out, _ = run(capsys, "--format", "json", str(path))
    assert [entry["fix_safety"] for entry in json.loads(out)] == ["safe"]
    run(capsys, "--fix", str(path))
    assert "    loss.backward()\n" in path.read_text()


# -- DL403: .item() only where the total is certainly used like a number ------------------
DL403_HEADER = """\
import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Linear(4, 2)
criterion = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
"""

USED_AS_TENSOR = {
    "divided then itemed": """\
    total = 0.0
    for x, y in loader:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        total += loss
    avg = total / len(loader)
    print(round(avg.item(), 4))
    """,
    "returned to a caller that items it": """\
    def train_epoch():
        total = 0.0
        for x, y in loader:
            opt.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            opt.step()
            total += loss
        return total

    print(round(train_epoch().item(), 4))
    """,
    "max of the list itemed": """\
    losses = []
    for x, y in loader:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss)
    print(round(max(losses).item(), 4))
    """,
}


def dl403_fix(body: str) -> tuple[str, str]:
    text = DL403_HEADER + textwrap.dedent(body)
    fixed, applied = fix_text(text, "train.py", RULES)
    assert applied >= 1
    return text, fixed


@pytest.mark.parametrize("case", sorted(USED_AS_TENSOR))
def test_dl403_detaches_a_total_used_as_a_tensor(case):
    _, fixed = dl403_fix(USED_AS_TENSOR[case])
    assert ".detach()" in fixed and "loss.item()" not in fixed


@pytest.mark.parametrize("case", sorted(USED_AS_TENSOR))
def test_dl403_fixed_file_runs_as_before(case, tmp_path):
    pytest.importorskip("torch")
    before, after = dl403_fix(USED_AS_TENSOR[case])
    outputs = []
    for name, text in (("before.py", before), ("after.py", after)):
        (tmp_path / name).write_text(text)
        ran = subprocess.run(
            [sys.executable, str(tmp_path / name)], capture_output=True, text=True, timeout=120
        )
        assert ran.returncode == 0, ran.stderr[-2000:]
        outputs.append(ran.stdout)
    assert outputs[0] == outputs[1]


def test_dl403_items_a_total_only_printed_formatted_or_compared():
    _, fixed = dl403_fix(
        """\
        running, history = 0.0, []
        for x, y in loader:
            opt.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            opt.step()
            running += loss
            history.append(loss)
        print(f"{running / len(loader):.3f}", sum(history) / len(history), len(history))
        if running < 3:
            print("%.2f" % running)
        """
    )
    assert "running += loss.item()" in fixed and "history.append(loss.item())" in fixed


# -- the property: safe fixes never add an error and always leave Python ----------------
def _errors(findings) -> Counter:
    return Counter(f.code for f in findings if f.severity == "error")


FIXABLE = [
    path
    for path in sorted(FIXTURES.rglob("*.py"))
    if any(f.fixable() for f in check_file(str(path), list(all_rules())))
]


def test_some_fixtures_have_safe_fixes():
    assert len(FIXABLE) >= 10


@pytest.mark.parametrize("fixture", FIXABLE, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_safe_fixes_add_no_error_and_compile(fixture):
    rules = list(all_rules())
    text = fixture.read_text("utf-8")
    fixed, applied = fix_text(text, str(fixture), rules)
    assert applied >= 1 and fixed != text
    compile(fixed, str(fixture), "exec")
    grown = _errors(check_text(fixed, str(fixture), rules)) - _errors(
        check_text(text, str(fixture), rules)
    )
    assert not grown, f"safe fixes added {dict(grown)}"


@pytest.mark.parametrize("unsafe", [False, True])
def test_standard_input_fixes_follow_the_same_line(unsafe):
    source = HEADER + textwrap.dedent(CREATES_A_FINDING["DL402"])
    flags = ["--unsafe-fixes"] if unsafe else []
    run = subprocess.run(
        [sys.executable, "-m", "dllint", "check", "--isolated", "--no-cache", "--fix", *flags]
        + ["--stdin-filename", "train.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    fixed = "optimizer.zero_grad();" in run.stdout
    assert fixed == unsafe, run.stdout
