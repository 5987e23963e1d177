"""What an editor asks of dllint, without the protocol (``dllint.server`` speaks it).

Findings for a buffer or a notebook's cells under the configuration of the project
it belongs to (the nearest ``pyproject.toml`` with ``[tool.dllint]``, re-read when
it changes on disk), the new text after one fix, after every safe fix, or with a
``# noqa`` added, and what to show on hover. Buffers are checked as they are, not as
saved; a file the configuration excludes gets no findings, as ``dllint check``
gives none for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from dllint.config import ConfigError, FileConfig, Overrides, find_config, load_config
from dllint.config import settings_for as merge_settings
from dllint.finding import Finding


@dataclass(frozen=True)
class Edit:
    """Replace lines ``start`` to ``end`` (0-based, ``end`` exclusive) by ``text``."""

    start: int
    end: int
    text: str


def line_edit(before: str, after: str) -> Edit | None:
    """The smallest run of whole lines that turns ``before`` into ``after``."""
    if before == after:
        return None
    old, new = before.split("\n"), after.split("\n")
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(old), len(new)) - head
        and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]
    ):
        tail += 1
    replaced = new[head : len(new) - tail]
    text = "".join(line + "\n" for line in replaced)
    return Edit(head, len(old) - tail, text)


class Linter:
    """dllint for one editor session: the rule catalog loaded once, configurations
    read once per change of their file."""

    def __init__(self) -> None:
        from dllint.cache import rule_catalog
        from dllint.engine import ENGINE_CODES, ENGINE_OFF_BY_DEFAULT

        self.catalog = rule_catalog()
        engine = [code for code, _, _ in ENGINE_CODES]
        self.known = [rule.code for rule in self.catalog] + engine
        self.default = [rule.code for rule in self.catalog if rule.default_enabled] + [
            code for code in engine if code not in ENGINE_OFF_BY_DEFAULT
        ]
        self._configs: dict[Path, tuple[tuple[int, int], FileConfig]] = {}
        self.config_error: str | None = None  # the last configuration that did not load

    # configuration ----------------------------------------------------------------

    def settings(self, path: str):
        """The settings governing ``path``: its project's ``[tool.dllint]``, or the
        defaults (when there is none, or it has an error: ``config_error`` says it)."""
        config = FileConfig(root=Path(os.path.dirname(os.path.abspath(path))))
        try:
            source = find_config(path)
            if source is not None:
                config = self._load(source)
            self.config_error = None
        except ConfigError as exc:
            self.config_error = str(exc)
        return merge_settings(config, Overrides(), self.known, self.default)

    def _load(self, source: Path) -> FileConfig:
        stat = source.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._configs.get(source)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        config = load_config(source, self.known)
        self._configs[source] = (stamp, config)
        return config

    def forget_configs(self) -> None:
        """A configuration file changed: read each again on next use."""
        self._configs.clear()

    def _rules(self, path: str):
        from dllint.stdin import selected_rules

        settings = self.settings(path)
        if settings.is_user_excluded(path):
            return frozenset(), []
        return selected_rules(path, self.catalog, settings)

    # checking ---------------------------------------------------------------------

    def check(self, text: str, path: str) -> list[Finding]:
        """The findings of a Python buffer (fixes attached where rules offer them)."""
        from dllint.engine import check_text

        codes, rules = self._rules(path)
        if not codes:
            return []
        found = check_text(_normalised(text), path, rules)
        return sorted((f for f in found if f.code in codes), key=Finding.sort_key)

    def check_cells(self, cells: list[tuple[int, str]], path: str) -> list[Finding]:
        """A notebook's code cells, given as (cell number among all cells, source),
        checked as one module; each finding carries its cell and the cell's line.
        Notebooks are not fixed (as by ``dllint check --fix``)."""
        from dllint.engine import check_cells
        from dllint.notebook import cells_source

        codes, rules = self._rules(path)
        if not codes:
            return []
        text, origin = cells_source((number, _normalised(source)) for number, source in cells)
        found = check_cells(text, origin, path, rules)
        return sorted(
            (replace(f, fix=None, edit=None) for f in found if f.code in codes and f.cell),
            key=Finding.sort_key,
        )

    # edits ------------------------------------------------------------------------

    def fix_one(self, text: str, path: str, finding: Finding) -> str | None:
        """The buffer with this one finding's fix applied; None when it no longer
        applies (the text moved on) or the result would not parse."""
        from dllint.engine import check_text
        from dllint.fixes import apply
        from dllint.registry import rule_by_code
        from dllint.source import ParseFailure, parse

        rule = rule_by_code(finding.code)
        if rule is None:
            return None
        text = _normalised(text)
        for candidate in check_text(text, path, [rule], exact=True):
            same = (candidate.line, candidate.column) == (finding.line, finding.column)
            if same and candidate.edit is not None:
                module = candidate.edit.module
                fixed, applied = apply(module, [candidate.edit])
                if not applied:
                    return None
                try:
                    parse(fixed)
                except ParseFailure:
                    return None
                return fixed
        return None

    def fix_all(self, text: str, path: str) -> str | None:
        """The buffer with every safe fix applied (as ``dllint check --fix``); None
        when nothing changes."""
        from dllint.autofix import fix_text

        codes = {f.code for f in self.check(text, path) if f.fix and not is_unsafe(f)}
        if not codes:
            return None
        from dllint.registry import rule_by_code

        rules = [rule for rule in map(rule_by_code, sorted(codes)) if rule is not None]
        text = _normalised(text)
        fixed, applied = fix_text(text, path, rules)
        return fixed if applied and fixed != text else None


def with_noqa(text: str, line: int, code: str, cell: bool = False) -> str | None:
    """``text`` with ``code`` added to the ``# noqa`` of ``line`` (1-based); None
    when that line cannot take a comment. ``cell``: the text is a notebook cell."""
    from dllint.addnoqa import with_directives

    text = _normalised(text)
    python = None
    if cell:
        from dllint.notebook import cell_lines

        python = "\n".join(cell_lines(text)[0])
    new, added, _ = with_directives(text, {line: {code}}, python)
    return new if added else None


def is_unsafe(finding: Finding) -> bool:
    """The finding's fix may change behaviour (``--unsafe-fixes`` in the CLI)."""
    if getattr(finding, "fix_safety", None) == "unsafe":
        return True
    return getattr(finding.edit, "safe", True) is False


def hover_text(code: str) -> str:
    """Markdown for a flagged range: the rule's code, name and summary, and why."""
    from dllint.report.rules import describe, docs_url

    name, summary, level = describe(code)
    text = f"**{code} {name}** ({level}): {summary}\n"
    why = _section(code, "## Why is this bad?")
    if why:
        text += f"\n{why}\n"
    return text + f"\n[{code} documentation]({docs_url(code)})"


def _section(code: str, heading: str) -> str:
    """One section of the rule's docs page, if the page ships with dllint."""
    from dllint.cli import _docs_page

    page = _docs_page(code) or ""
    start = page.find(heading)
    if start < 0:
        return ""
    body = page[start + len(heading) :]
    end = body.find("\n## ")
    return (body if end < 0 else body[:end]).strip()


def _normalised(text: str) -> str:
    """Line endings as dllint reads files (an editor may hold CRLF)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")
