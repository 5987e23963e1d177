"""``dllint server`` end to end: pytest-lsp starts it over stdio as an editor would
and drives it with real LSP messages (open, change, code actions applied, notebook
cells, configuration change, hover, shutdown and exit)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

PUBLISH = lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
TIMEOUT = 60

# 0-based line 7: optimizer.step() without zero_grad (DL401); line 10: a bare
# model.eval (DL503, with a safe fix).
TRAIN = """\
import torch
from torch import nn, optim

model = nn.Linear(10, 1)
optimizer = optim.SGD(model.parameters(), lr=0.1)
for xb, yb in zip(torch.randn(8, 10), torch.randn(8, 1)):
    nn.functional.mse_loss(model(xb), yb).backward()
    optimizer.step()
print("done")

model.eval
"""


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "dllint", "server"])
)
async def client(lsp_client: LanguageClient, tmp_path: Path):
    lsp_client.registrations = []

    @lsp_client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
    def register(params: lsp.RegistrationParams) -> None:  # as VS Code accepts it
        lsp_client.registrations.extend(params.registrations)

    await lsp_client.initialize_session(
        lsp.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=tmp_path.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=tmp_path.as_uri(), name="project")],
        )
    )
    yield
    await lsp_client.shutdown_session()


async def diagnostics(client: LanguageClient, uri: str, until=lambda found: True) -> list:
    """The diagnostics published for ``uri``, once ``until`` holds for them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        found = client.diagnostics.get(uri)
        if found is not None and until(found):
            return list(found)
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no matching diagnostics for {uri}: {found}")
        await asyncio.wait_for(client.wait_for_notification(PUBLISH), remaining)


def codes(found) -> list[tuple[int, str]]:
    return sorted((d.range.start.line, d.code) for d in found)


def open_file(client: LanguageClient, path: Path, text: str) -> str:
    path.write_text(text, "utf-8")
    uri = path.as_uri()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, text))
    )
    return uri


def apply_edit(text: str, edit: lsp.WorkspaceEdit) -> str:
    """Apply a workspace edit's text edits (whole-line ranges) as an editor would."""
    lines = text.split("\n")
    for change in edit.document_changes:
        for text_edit in sorted(change.edits, key=lambda e: e.range.start.line, reverse=True):
            start, end = text_edit.range.start, text_edit.range.end
            before = "\n".join(lines[: start.line] + [lines[start.line][: start.character]])
            after = "\n".join([lines[end.line][end.character :]] + lines[end.line + 1 :])
            lines = (before + text_edit.new_text + after).split("\n")
    return "\n".join(lines)


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


@pytest.mark.asyncio
async def test_findings_on_open_with_positions_code_and_link(client, tmp_path):
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    found = await diagnostics(client, uri)
    assert codes(found) == [(7, "DL401"), (10, "DL503")]
    step = next(d for d in found if d.code == "DL401")
    assert step.source == "dllint" and step.severity == lsp.DiagnosticSeverity.Error
    assert (step.range.start.line, step.range.start.character) == (7, 4)
    assert step.range.end.line == 7 and step.range.end.character > 4
    assert step.code_description.href.endswith("/DL401.md")
    assert "optimizer" in step.message
    hover = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), lsp.Position(7, 6))
    )
    shown = hover.contents.value
    page = (Path(__file__).parent.parent / "docs" / "rules" / "DL401.md").read_text("utf-8")
    why = page.split("## Why is this bad?")[1].split("\n## ")[0].strip()
    assert "**DL401 missing-zero-grad**" in shown and why.splitlines()[0] in shown
    nothing = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), lsp.Position(0, 2))
    )
    assert nothing is None


@pytest.mark.asyncio
async def test_quick_fix_and_noqa_actions_repair_the_buffer(client, tmp_path):
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    found = await diagnostics(client, uri)
    bare = next(d for d in found if d.code == "DL503")
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri), bare.range, lsp.CodeActionContext([bare])
        )
    )
    fix = next(a for a in actions if a.title.startswith("Fix DL503"))
    assert fix.kind == lsp.CodeActionKind.QuickFix and fix.is_preferred
    assert any(a.title == "Ignore DL503 on this line" for a in actions)
    fixed = apply_edit(TRAIN, fix.edit)
    assert fixed == TRAIN.replace("model.eval\n", "model.eval()\n")
    change(client, uri, 2, fixed)
    found = await diagnostics(client, uri, lambda d: "DL503" not in {x.code for x in d})
    assert codes(found) == [(7, "DL401")]
    # "ignore on this line" adds the directive, and the finding goes
    step = found[0]
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri), step.range, lsp.CodeActionContext([step])
        )
    )
    ignore = next(a for a in actions if a.title == "Ignore DL401 on this line")
    silenced = apply_edit(fixed, ignore.edit)
    assert "    optimizer.step()  # noqa: DL401\n" in silenced
    change(client, uri, 3, silenced)
    assert await diagnostics(client, uri, lambda d: not d) == []


@pytest.mark.asyncio
async def test_fix_all_source_action_and_typing_the_fix(client, tmp_path):
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    await diagnostics(client, uri)
    whole = lsp.Range(lsp.Position(0, 0), lsp.Position(11, 0))
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri),
            whole,
            lsp.CodeActionContext([], only=[lsp.CodeActionKind.SourceFixAll]),
        )
    )
    assert [a.kind for a in actions] == ["source.fixAll.dllint"]
    fixed = apply_edit(TRAIN, actions[0].edit)
    assert "model.eval()\n" in fixed
    # the user types the missing zero_grad(): the finding clears on that change
    typed = fixed.replace(
        "    nn.functional.mse_loss", "    optimizer.zero_grad()\n    nn.functional.mse_loss"
    )
    change(client, uri, 2, typed)
    assert await diagnostics(client, uri, lambda d: not d) == []


@pytest.mark.asyncio
async def test_notebook_cells_are_one_module_and_findings_land_on_their_cell(client, tmp_path):
    notebook_uri = (tmp_path / "explore.ipynb").as_uri()
    sources = {
        "md": "# Training\n",
        "setup": "import torch\nfrom torch import nn, optim\n%matplotlib inline\n"
        "model = nn.Linear(10, 1)\noptimizer = optim.SGD(model.parameters(), lr=0.1)\n",
        "loop": "for xb, yb in zip(torch.randn(8, 10), torch.randn(8, 1)):\n"
        "    nn.functional.mse_loss(model(xb), yb).backward()\n"
        "    optimizer.step()\n",
    }
    cell_uri = {name: f"{notebook_uri}#cell-{name}" for name in sources}
    kinds = {"md": lsp.NotebookCellKind.Markup}
    client.notebook_document_did_open(
        lsp.DidOpenNotebookDocumentParams(
            notebook_document=lsp.NotebookDocument(
                uri=notebook_uri,
                notebook_type="jupyter-notebook",
                version=1,
                cells=[
                    lsp.NotebookCell(kinds.get(name, lsp.NotebookCellKind.Code), cell_uri[name])
                    for name in sources
                ],
            ),
            cell_text_documents=[
                lsp.TextDocumentItem(
                    cell_uri[name], "markdown" if name == "md" else "python", 1, source
                )
                for name, source in sources.items()
            ],
        )
    )
    found = await diagnostics(client, cell_uri["loop"])
    assert codes(found) == [(2, "DL401")]  # the optimizer comes from the setup cell
    assert await diagnostics(client, cell_uri["setup"]) == []
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(cell_uri["loop"]),
            found[0].range,
            lsp.CodeActionContext(found),
        )
    )
    [ignore] = actions  # notebooks get no fixes, as with dllint check --fix
    assert ignore.title == "Ignore DL401 on this line"
    assert apply_edit(sources["loop"], ignore.edit).endswith("optimizer.step()  # noqa: DL401\n")
    # the user adds zero_grad() in the loop cell: its finding clears
    client.notebook_document_did_change(
        lsp.DidChangeNotebookDocumentParams(
            notebook_document=lsp.VersionedNotebookDocumentIdentifier(version=2, uri=notebook_uri),
            change=lsp.NotebookDocumentChangeEvent(
                cells=lsp.NotebookDocumentCellChanges(
                    text_content=[
                        lsp.NotebookDocumentCellContentChanges(
                            document=lsp.VersionedTextDocumentIdentifier(
                                uri=cell_uri["loop"], version=2
                            ),
                            changes=[
                                lsp.TextDocumentContentChangePartial(
                                    range=lsp.Range(lsp.Position(1, 0), lsp.Position(1, 0)),
                                    text="    optimizer.zero_grad()\n",
                                )
                            ],
                        )
                    ]
                )
            ),
        )
    )
    assert await diagnostics(client, cell_uri["loop"], lambda d: not d) == []


@pytest.mark.asyncio
async def test_configuration_is_read_again_when_pyproject_changes(client, tmp_path):
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    assert codes(await diagnostics(client, uri)) == [(7, "DL401"), (10, "DL503")]
    watched = [r for r in client.registrations if r.method == "workspace/didChangeWatchedFiles"]
    assert "pyproject.toml" in str(watched[0].register_options)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.dllint]\nignore = ["missing-zero-grad"]\n', "utf-8")
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(
            [lsp.FileEvent(pyproject.as_uri(), lsp.FileChangeType.Created)]
        )
    )
    found = await diagnostics(client, uri, lambda d: len(d) == 1)
    assert codes(found) == [(10, "DL503")]


@pytest.mark.asyncio
async def test_cross_file_finding_points_at_the_other_file(client, tmp_path):
    project = Path(__file__).parent / "fixtures" / "projects" / "pos_softmax_head_in_model_py"
    for source in project.iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    uri = open_file(client, tmp_path / "train.py", (tmp_path / "train.py").read_text("utf-8"))
    found = await diagnostics(client, uri)
    loss = next(d for d in found if d.code == "DL301")
    [related] = loss.related_information
    assert related.location.uri == (tmp_path / "model.py").as_uri()
    model = (tmp_path / "model.py").read_text("utf-8").splitlines()
    line = related.location.range.start.line
    assert "Softmax" in model[line] and "applied here" in related.message
    # the user drops the softmax from model.py and saves it: train.py is checked again
    fixed = (tmp_path / "model.py").read_text("utf-8").replace(", nn.Softmax(dim=1)", "")
    assert "Softmax" not in fixed
    model_uri = open_file(client, tmp_path / "model.py", fixed)
    client.text_document_did_save(
        lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(model_uri))
    )
    await diagnostics(client, uri, lambda d: "DL301" not in {x.code for x in d})


@pytest.mark.asyncio
async def test_a_broken_configuration_is_reported_and_the_defaults_apply(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.dllint]\nselect = ["DL999"]\n', "utf-8")
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    assert codes(await diagnostics(client, uri)) == [(7, "DL401"), (10, "DL503")]
    assert any("DL999" in m.message for m in client.messages)


@pytest.mark.asyncio
async def test_shutdown_and_exit_end_the_process(client, tmp_path):
    uri = open_file(client, tmp_path / "train.py", TRAIN)
    await diagnostics(client, uri)
    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.wait_for(client._server.wait(), TIMEOUT)
    assert client._server.returncode == 0
    client.capabilities = None  # the fixture's own shutdown has nothing left to do
