"""``dllint server``: a language server over stdio (``pip install "dllint[lsp]"``).

Diagnostics for Python files on open, change (debounced) and save, and for
notebooks through LSP 3.17 notebook document sync: a notebook's code cells are
checked as one module, as ``dllint check`` does, and each diagnostic is published
on its own cell's document. Code actions: each safe fix as a preferred quick fix,
an unsafe one as a plain quick fix, "ignore DLxxx on this line" (a ``# noqa``), and
the source action "fix all" (``source.fixAll.dllint``). Hover on a flagged range
shows the rule's summary and why it matters. Configuration is the project's
``pyproject.toml`` ``[tool.dllint]``, read again when it changes. The rules, libcst
and the project index stay loaded in the process between requests.

The protocol side only: what to check and how to edit is ``dllint.editing``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from dllint import __version__
from dllint.editing import Linter, hover_text, is_unsafe, line_edit, with_noqa
from dllint.finding import Finding
from dllint.report.rules import docs_url

DEBOUNCE_SECONDS = 0.05  # a change this soon after another waits for the typing to pause
SOURCE = "dllint"
FIX_ALL = f"{lsp.CodeActionKind.SourceFixAll.value}.dllint"
SEVERITY = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "note": lsp.DiagnosticSeverity.Information,
}
log = logging.getLogger(__name__)


@dataclass
class Checked:
    """The last check of a document: the text it saw and its findings, by the
    document (a cell's URI for a notebook) each is shown on."""

    texts: dict[str, str] = field(default_factory=dict)
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    notebook: str | None = None  # the notebook's URI, for a cell


class DllintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "dllint",
            __version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            notebook_document_sync=lsp.NotebookDocumentSyncOptions(
                notebook_selector=[
                    lsp.NotebookDocumentFilterWithCells(
                        cells=[lsp.NotebookCellLanguage(language="python")], notebook="*"
                    )
                ],
                save=True,
            ),
        )
        self.linter: Linter | None = None
        self.checked: dict[str, Checked] = {}  # by the URI of each shown document
        self.pending: dict[str, asyncio.Task] = {}
        self.changed_at: dict[str, float] = {}  # when each document last changed
        self.locks: dict[str, asyncio.Lock] = {}
        self.running: set[asyncio.Task] = set()  # the checks under way
        self.opened: set[str] = set()  # Python files and notebooks open in the editor
        self.shown_error: str | None = None

    def lint(self) -> Linter:
        if self.linter is None:
            import dllint.source
            from dllint.incremental import StatementCache

            dllint.source.STATEMENT_CACHE = StatementCache()  # edits re-parse what changed
            self.linter = Linter()
        return self.linter

    # scheduling -------------------------------------------------------------------

    def schedule(self, uri: str, debounce: bool = False) -> None:
        """Check the document (a file or notebook URI); a newer request for it
        replaces one still waiting. ``debounce`` (a change): at once after a pause
        in typing, else once the typing pauses for ``DEBOUNCE_SECONDS``."""
        delay = 0.0
        if debounce:
            now = asyncio.get_running_loop().time()
            previous = self.changed_at.get(uri)
            self.changed_at[uri] = now
            if previous is not None and now - previous < DEBOUNCE_SECONDS:
                delay = DEBOUNCE_SECONDS
        waiting = self.pending.get(uri)
        if waiting is not None and not waiting.done() and waiting not in self.running:
            waiting.cancel()  # not started yet: this request supersedes it
        self.pending[uri] = asyncio.ensure_future(self._check_later(uri, delay))

    async def _check_later(self, uri: str, delay: float) -> None:
        """One check at a time per document: a request made while one runs waits
        for it (which then publishes nothing, being stale) and checks the newest text."""
        if delay:
            await asyncio.sleep(delay)
        lock = self.locks.setdefault(uri, asyncio.Lock())
        async with lock:
            task = asyncio.current_task()
            self.running.add(task)
            try:
                if self.workspace.get_notebook_document(notebook_uri=uri) is not None:
                    await self._check_notebook(uri)
                else:
                    await self._check_text(uri)
            except Exception:  # one document's failure must not stop the server
                log.exception("dllint: checking %s failed", uri)
            finally:
                self.running.discard(task)

    async def _check_text(self, uri: str) -> None:
        document = self.workspace.get_text_document(uri)
        version, text = document.version, document.source
        path = to_fs_path(uri) or uri
        loop = asyncio.get_running_loop()
        findings = await loop.run_in_executor(None, self.lint().check, text, path)
        if self.workspace.get_text_document(uri).version != version:
            return  # edited meanwhile: the newer check publishes
        self._config_problem()
        self.checked[uri] = Checked({uri: text}, {uri: findings})
        self._publish(uri, text, findings, version)

    async def _check_notebook(self, uri: str) -> None:
        notebook = self.workspace.get_notebook_document(notebook_uri=uri)
        if notebook is None:
            return
        version = notebook.version
        cells, texts, uris = [], {}, {}
        for number, cell in enumerate(notebook.cells, start=1):
            if cell.kind != lsp.NotebookCellKind.Code:
                continue
            document = self.workspace.get_text_document(cell.document)
            if document.language_id not in (None, "python"):
                continue
            cells.append((number, document.source))
            texts[cell.document], uris[number] = document.source, cell.document
        path = to_fs_path(uri) or uri
        loop = asyncio.get_running_loop()
        findings = await loop.run_in_executor(None, self.lint().check_cells, cells, path)
        now = self.workspace.get_notebook_document(notebook_uri=uri)
        if now is None or now.version != version:
            return
        self._config_problem()
        by_cell: dict[str, list[Finding]] = {cell_uri: [] for cell_uri in texts}
        for finding in findings:
            cell_uri = uris.get(finding.cell)
            if cell_uri is not None:
                by_cell[cell_uri].append(finding)
        previous = self.checked.get(uri)
        for gone in set(previous.texts if previous else ()) - set(texts):
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(gone, []))
        self.checked[uri] = Checked(texts, by_cell)
        for cell_uri, cell_findings in by_cell.items():
            self.checked[cell_uri] = Checked(texts, by_cell, notebook=uri)
            self._publish(cell_uri, texts[cell_uri], cell_findings, None)

    def _publish(self, uri: str, text: str, findings: list[Finding], version) -> None:
        lines = text.split("\n")
        diagnostics = [self._diagnostic(finding, lines) for finding in findings]
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    def _config_problem(self) -> None:
        """Say once that the configuration does not load (the defaults apply)."""
        error = self.lint().config_error
        if error and error != self.shown_error:
            self.window_show_message(
                lsp.ShowMessageParams(
                    lsp.MessageType.Error, f"dllint: {error}; the default rules apply"
                )
            )
        self.shown_error = error

    # diagnostics --------------------------------------------------------------------

    def _range(self, lines: list[str], finding: Finding) -> lsp.Range:
        """The finding's span in the client's units (dllint counts code points, from 1)."""
        codec = self.workspace.position_codec
        line = max(finding.line - 1, 0)
        start = lsp.Position(line, max(finding.column - 1, 0))
        end_line = finding.end_line - 1 if finding.end_line >= finding.line else line
        end = lsp.Position(end_line, max(finding.end_column - 1, 0))
        if (end.line, end.character) <= (start.line, start.character):
            width = len(lines[line]) if line < len(lines) else start.character
            end = lsp.Position(line, max(width, start.character))
        return lsp.Range(
            codec.position_to_client_units(lines, start), codec.position_to_client_units(lines, end)
        )

    def _diagnostic(self, finding: Finding, lines: list[str]) -> lsp.Diagnostic:
        related = []
        for place in getattr(finding, "related", ()) or ():
            try:
                position = lsp.Position(int(place["line"]) - 1, int(place.get("column", 1)) - 1)
                where = os.path.abspath(str(place["path"]))  # relative to this process
                location = lsp.Location(
                    from_fs_path(where) or where,
                    lsp.Range(position, position),
                )
                related.append(lsp.DiagnosticRelatedInformation(location, str(place["message"])))
            except (KeyError, TypeError, ValueError):
                continue
        return lsp.Diagnostic(
            range=self._range(lines, finding),
            message=finding.message,
            severity=SEVERITY.get(finding.severity, lsp.DiagnosticSeverity.Warning),
            code=finding.code,
            code_description=lsp.CodeDescription(href=docs_url(finding.code)),
            source=SOURCE,
            related_information=related or None,
            data={"line": finding.line, "column": finding.column, "fix": finding.fix},
        )

    # code actions and hover -------------------------------------------------------------

    def findings_at(self, uri: str, wanted: lsp.Range) -> list[Finding]:
        checked = self.checked.get(uri)
        if checked is None:
            return []
        document = self.workspace.get_text_document(uri)
        if checked.texts.get(uri) != document.source:
            return []  # stale: the next check will answer
        lines = document.source.split("\n")
        found = []
        for finding in checked.findings.get(uri, []):
            span = self._range(lines, finding)
            if _overlaps(span, wanted):
                found.append(finding)
        return found

    def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        checked = self.checked.get(uri)
        if checked is None:
            return []
        document = self.workspace.get_text_document(uri)
        text = document.source
        path = to_fs_path(checked.notebook or uri) or uri
        only = params.context.only
        actions: list[lsp.CodeAction] = []
        findings = self.findings_at(uri, params.range)
        if _wants(only, lsp.CodeActionKind.QuickFix):
            for finding in findings:
                diagnostic = self._diagnostic(finding, text.split("\n"))
                if finding.fix and checked.notebook is None:
                    fixed = self.lint().fix_one(text, path, finding)
                    if fixed is not None:
                        unsafe = is_unsafe(finding)
                        title = f"Fix {finding.code}: {finding.fix}"
                        actions.append(
                            lsp.CodeAction(
                                title=title + (" (unsafe)" if unsafe else ""),
                                kind=lsp.CodeActionKind.QuickFix,
                                diagnostics=[diagnostic],
                                is_preferred=not unsafe,
                                edit=_workspace_edit(uri, document, text, fixed),
                            )
                        )
                noqa = with_noqa(
                    text, finding.line, finding.code, cell=checked.notebook is not None
                )
                if noqa is not None:
                    actions.append(
                        lsp.CodeAction(
                            title=f"Ignore {finding.code} on this line",
                            kind=lsp.CodeActionKind.QuickFix,
                            diagnostics=[diagnostic],
                            edit=_workspace_edit(uri, document, text, noqa),
                        )
                    )
        if checked.notebook is None and _wants(only, FIX_ALL):
            fixed = self.lint().fix_all(text, path)
            if fixed is not None:
                actions.append(
                    lsp.CodeAction(
                        title="dllint: fix all safe fixes",
                        kind=FIX_ALL,
                        edit=_workspace_edit(uri, document, text, fixed),
                    )
                )
        return actions

    def hover(self, params: lsp.HoverParams) -> lsp.Hover | None:
        position = params.position
        wanted = lsp.Range(position, position)
        findings = self.findings_at(params.text_document.uri, wanted)
        if not findings:
            return None
        parts = []
        for finding in findings:
            parts.append(f"{hover_text(finding.code)}\n\n---\n\n{finding.message}")
        return lsp.Hover(
            contents=lsp.MarkupContent(lsp.MarkupKind.Markdown, "\n\n---\n\n".join(parts))
        )

    def recheck_all(self, configs: bool = True) -> None:
        """Check every open document again: the configuration (``configs``) or a
        saved file that others import may have changed."""
        if configs:
            self.lint().forget_configs()
        for uri in sorted(self.opened):  # URIs as the client wrote them
            self.schedule(uri)

    def is_python_document(self, uri: str) -> bool:
        """An open Python file or notebook (not a cell: its notebook is checked)."""
        return uri in self.opened


def _is_python(uri: str) -> bool:
    return uri.endswith((".py", ".pyi"))


def _wants(only: list | None, kind) -> bool:
    """Does the client's ``only`` filter ask for actions of ``kind``?"""
    if not only:
        return True
    value = kind.value if hasattr(kind, "value") else str(kind)
    return any(value == (o.value if hasattr(o, "value") else str(o)) for o in only) or any(
        value.startswith((o.value if hasattr(o, "value") else str(o)) + ".") for o in only
    )


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    start_a, end_a = (a.start.line, a.start.character), (a.end.line, a.end.character)
    start_b, end_b = (b.start.line, b.start.character), (b.end.line, b.end.character)
    return start_a <= end_b and start_b <= end_a


def _workspace_edit(uri: str, document, before: str, after: str) -> lsp.WorkspaceEdit | None:
    """A workspace edit replacing the changed lines of the document."""
    normal = before.replace("\r\n", "\n").replace("\r", "\n")
    change = line_edit(normal, after)
    if change is None:
        return None
    newline = "\r\n" if "\r\n" in before else "\n"
    text = change.text.replace("\n", newline)
    edit = lsp.TextEdit(lsp.Range(lsp.Position(change.start, 0), lsp.Position(change.end, 0)), text)
    versioned = lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=document.version)
    return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(versioned, [edit])])


def build_server() -> DllintServer:
    server = DllintServer()

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: DllintServer, params: lsp.InitializedParams) -> None:
        watch = ls.client_capabilities.workspace
        dynamic = watch and watch.did_change_watched_files
        if not (dynamic and dynamic.dynamic_registration):
            return
        try:
            await ls.client_register_capability_async(
                lsp.RegistrationParams(
                    [
                        lsp.Registration(
                            id="dllint-pyproject",
                            method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=lsp.DidChangeWatchedFilesRegistrationOptions(
                                [lsp.FileSystemWatcher(glob_pattern="**/pyproject.toml")]
                            ),
                        )
                    ]
                )
            )
        except Exception:  # a client that refuses: pyproject.toml saved in the editor still counts
            log.warning("dllint: the client did not accept watching pyproject.toml")

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: DllintServer, params: lsp.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        if ls.workspace.get_notebook_document(cell_uri=uri) is not None:
            return  # a cell: its notebook is checked
        if _is_python(uri) or params.text_document.language_id == "python":
            ls.opened.add(uri)
            ls.schedule(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: DllintServer, params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        notebook = ls.workspace.get_notebook_document(cell_uri=uri)
        if notebook is None and ls.is_python_document(uri):
            ls.schedule(uri, debounce=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: DllintServer, params: lsp.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri.endswith("pyproject.toml"):
            ls.recheck_all()
        elif ls.is_python_document(uri):
            # the others may import what was saved (the project index reads the disk;
            # a new module may have appeared, which the index remembers as missing)
            from dllint.project.roots import forget

            forget()
            ls.recheck_all(configs=False)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: DllintServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.opened.discard(uri)
        if ls.checked.pop(uri, None) is not None:
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_open(ls: DllintServer, params: lsp.DidOpenNotebookDocumentParams) -> None:
        ls.opened.add(params.notebook_document.uri)
        ls.schedule(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_change(ls: DllintServer, params: lsp.DidChangeNotebookDocumentParams) -> None:
        ls.schedule(params.notebook_document.uri, debounce=True)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_save(ls: DllintServer, params: lsp.DidSaveNotebookDocumentParams) -> None:
        ls.schedule(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_close(ls: DllintServer, params: lsp.DidCloseNotebookDocumentParams) -> None:
        ls.opened.discard(params.notebook_document.uri)
        checked = ls.checked.pop(params.notebook_document.uri, None)
        for cell_uri in checked.texts if checked else ():
            ls.checked.pop(cell_uri, None)
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(cell_uri, []))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(ls: DllintServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        if any(change.uri.endswith("pyproject.toml") for change in params.changes):
            ls.recheck_all()

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[
                lsp.CodeActionKind.QuickFix,
                lsp.CodeActionKind.SourceFixAll,
                FIX_ALL,
            ],
            resolve_provider=False,
        ),
    )
    def code_action(ls: DllintServer, params: lsp.CodeActionParams):
        return ls.code_actions(params) or None

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: DllintServer, params: lsp.HoverParams):
        return ls.hover(params)

    return server


def main() -> int:
    """Serve one editor over stdin and stdout until it says exit."""
    build_server().start_io()
    return 0
