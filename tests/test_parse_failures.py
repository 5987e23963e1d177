"""The parse stage never ends a run: Python's newer statements are handled, and a bug
in dllint's own parsing becomes DL002 for that one file."""

from __future__ import annotations

import json

from dllint.cli import main

LONG_SUBJECT = "(" + " + ".join(f"value_{i}" for i in range(60)) + ")"
MATCH = f"""import torch

match {LONG_SUBJECT}:
    case 0:
        pass
    case _:
        pass
"""
BUG = """import torch

model = torch.nn.Linear(4, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""


def run(capsys, *paths) -> tuple[int, list[dict]]:
    code = main(["check", "--isolated", "--no-cache", "--format", "json", *map(str, paths)])
    return code, json.loads(capsys.readouterr().out)


def test_a_match_statement_with_a_long_head_is_checked(tmp_path, capsys):
    source = tmp_path / "matching.py"
    source.write_text(MATCH + BUG, "utf-8")
    code, found = run(capsys, source)
    assert code == 1
    assert [f["code"] for f in found] == ["DL401"]


def test_a_parser_bug_is_dl002_for_that_file_and_the_others_are_checked(
    tmp_path, capsys, monkeypatch
):
    import dllint.source

    original = dllint.source.parse_for_check

    def flaky(text, slim=True):
        if "poison" in text:
            raise AttributeError("'match_case' object has no attribute 'lineno'")
        return original(text, slim)

    monkeypatch.setattr(dllint.source, "parse_for_check", flaky)
    (tmp_path / "a_poison.py").write_text("# poison\n" + BUG, "utf-8")
    (tmp_path / "b_fine.py").write_text(BUG, "utf-8")
    code, found = run(capsys, tmp_path)
    assert code == 2  # an internal error, as docs/usage.md says
    by_file = {(f["path"].rsplit("/", 1)[-1], f["code"]) for f in found}
    assert by_file == {("a_poison.py", "DL002"), ("b_fine.py", "DL401")}
    message = next(f["message"] for f in found if f["code"] == "DL002")
    assert "AttributeError" in message and "\n" not in message
