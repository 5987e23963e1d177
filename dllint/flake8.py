"""The flake8 plugin: the same engine, reporting through flake8.

flake8 reads and decodes the file and hands over its ``lines``; this adapter joins
them, runs ``dllint.engine.check_text`` with the default rules and yields every
finding. flake8 itself then applies ``--select``, ``--extend-ignore``,
``--per-file-ignores`` and ``# noqa``, so the adapter leaves ``# noqa`` to it.

flake8 counts columns from 0 and adds 1 when it prints; dllint's columns start at
1, so the adapter subtracts 1 and both front ends print the same position.
"""

from __future__ import annotations

from collections.abc import Iterator

from dllint import __version__
from dllint.engine import check_text
from dllint.registry import all_rules


class DllintChecker:
    """Registered under flake8's ``flake8.extension`` entry point as ``DL``."""

    name = "dllint"
    version = __version__

    def __init__(self, tree: object, filename: str, lines: list[str]) -> None:
        # flake8 classifies a plugin by its parameters: ``tree`` makes it an AST
        # plugin, run once per file (and not on files that do not parse: E999).
        self.filename = filename
        self.lines = lines

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        text = "".join(self.lines)
        if text.startswith("\ufeff"):
            text = text[1:]
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        rules = [rule for rule in all_rules() if rule.default_enabled]
        for finding in check_text(text, self.filename, rules, noqa=False):
            if finding.path != self.filename:  # in another file of the project: its own run
                continue
            # as ``dllint check`` prints it, less the ``[*]`` (flake8 cannot fix)
            message = f"{finding.code} [{finding.name}] {finding.severity}: {finding.message}"
            yield finding.line, max(finding.column - 1, 0), message, type(self)
