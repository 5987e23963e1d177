"""The definitions a file imports from its own project, put in front of it.

``from model import Classifier`` in ``train.py``: the analysis of ``train.py``
must know what ``Classifier`` holds and returns, which ``model.py`` says. Rather
than teach every fact in ``dllint.analysis`` to cross files, the statements that
define the imported names (and, transitively, what those read: base classes,
blocks, helpers, constants, and the third-party imports they use) are copied,
whole, in front of the file, and the file's own imports of those names are
blanked to ``pass`` (same lines and columns). The rules then see one module and
answer with the same code as for a single file; the engine maps every finding
back to the file and line it came from (``Prelude.origin``).

Bounded so that big libraries stay cheap: at most ``MAX_LINES`` copied lines,
no statement longer than ``MAX_STATEMENT_LINES``, ``MAX_HOPS`` re-exports deep,
and only modules of the project (``roots``).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import os
from collections import deque
from dataclasses import dataclass, field

from dllint.project.roots import imported_modules, installed, module_file, resolve
from dllint.project.summary import Import, ImportFrom, Summary, source_lines, summary_of
from dllint.project.versions import PerVersion

MAX_LINES = 2000
MAX_STATEMENT_LINES = 400  # a longer class or function is a library's, not a model to follow
MAX_HOPS = 3
MAX_READS = 2  # a model, the blocks it builds, the layers those build: no deeper


@dataclass(frozen=True)
class Chunk:
    """Prelude lines ``first .. first + count - 1`` are lines ``origin_line ..`` of
    ``origin`` (None for a line dllint wrote, such as an alias)."""

    first: int
    count: int
    origin: str | None
    origin_line: int


@dataclass
class Prelude:
    text: str  # the prelude followed by the file, imports blanked
    lines: int  # how many lines the prelude takes
    chunks: list[Chunk] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)  # the files it copied from
    renames: dict[str, str] = field(default_factory=dict)  # ``model_Net`` -> ``model.Net``

    def origin(self, line: int) -> tuple[str, int] | None:
        """(file, line) of a prelude line, or None."""
        for chunk in self.chunks:
            if chunk.first <= line < chunk.first + chunk.count:
                if chunk.origin is None:
                    return None
                return chunk.origin, chunk.origin_line + line - chunk.first
        return None


@dataclass
class _Selection:
    """What is copied from one module: statement indices and alias lines."""

    summary: Summary
    statements: set[int] = field(default_factory=set)
    aliases: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)  # modules it reads from, in order


class _Builder:
    def __init__(self) -> None:
        self.selected: dict[str, _Selection] = {}
        self.seen: set[tuple[str, str]] = set()
        self.kinds: dict[tuple[str, str], str | None] = {}
        self.budget = MAX_LINES

    def request(self, module: str, name: str, hops: int = 0) -> str | None:
        """Copy what binds ``name`` in ``module``, and what that reads; the kind of
        statement that binds it ("class", "def", "assign"), or None."""
        queue = deque([(module, name, hops, 0)])
        first: str | None = None
        while queue:
            module, name, hops, depth = queue.popleft()
            kind = self._bind(module, name, hops, depth, queue)
            if first is None:
                first = kind or ""
        return first or None

    def _bind(self, module: str, name: str, hops: int, depth: int, queue: deque) -> str | None:
        if (module, name) in self.seen:
            return self.kinds.get((module, name))
        self.seen.add((module, name))
        summary = summary_of(module)
        if summary is None:
            return None
        if name not in summary.bound:
            kind = self._through_star_imports(module, summary, name, hops)
            self.kinds[(module, name)] = kind
            return kind
        index = summary.bound[name]
        statement = summary.statements[index]
        if statement.kind == "import":
            kind = self._follow_import(module, summary, statement.imports, name, hops)
            self.kinds[(module, name)] = kind
            return kind
        if statement.kind not in ("def", "class", "assign"):
            return None
        if statement.kind == "assign" and _changed_elsewhere(summary, name):
            return None  # ``model = Net()`` then ``model.eval()`` at top level: not the whole story
        size = statement.end - statement.start + 1
        if size > MAX_STATEMENT_LINES:
            return None
        selection = self._selection(module, summary)
        if index not in selection.statements:
            if size > self.budget:
                return None
            self.budget -= size
            selection.statements.add(index)
        if depth < MAX_READS:
            for read in sorted(statement.reads):
                if read != name and read in summary.bound:
                    queue.append((module, read, hops, depth + 1))
        self.kinds[(module, name)] = statement.kind
        return statement.kind

    def _follow_import(self, module, summary, info, name, hops) -> str | None:
        """``name`` is imported in ``module``: copy it from the project file it comes
        from (a re-export, ``from .layers import Block``); third-party imports come
        along with the module's own imports."""
        if hops >= MAX_HOPS or not isinstance(info, ImportFrom):
            return None
        imported = next((orig for orig, local in info.names if local == name), None)
        if imported is None or imported == "*":
            return None
        target = resolve(module, info.level, info.module)
        if target is None:
            return None
        kind = self.request(target, imported, hops + 1)
        if kind is None:
            return None
        selection = self._selection(module, summary)
        if target not in selection.needs:
            selection.needs.append(target)
        if imported != name:
            selection.aliases.append(alias(name, imported, kind))
        return kind

    def _through_star_imports(self, module, summary, name, hops) -> str | None:
        """``name`` re-exported by ``from .resnet import *`` in a package's
        ``__init__``: copied from the first project module that binds it."""
        if hops >= MAX_HOPS:
            return None
        for statement in summary.statements:
            info = statement.imports
            if not isinstance(info, ImportFrom) or info.names != (("*", "*"),):
                continue
            target = resolve(module, info.level, info.module)
            if target is None:
                continue
            kind = self.request(target, name, hops + 1)
            if kind is not None:
                selection = self._selection(module, summary)
                if target not in selection.needs:
                    selection.needs.append(target)
                return kind
        return None

    def _selection(self, module: str, summary: Summary) -> _Selection:
        if module not in self.selected:
            self.selected[module] = _Selection(summary)
        return self.selected[module]


def alias(local: str, name: str, kind: str) -> str:
    """A definition that makes ``local`` stand for ``name``. A class alias is a
    subclass with nothing of its own, which the analysis follows to the layers and
    ``forward`` of the class; other names are assigned."""
    if kind == "class":
        return f"class {local}({name}):\n    pass\n"
    return f"{local} = {name}\n"


alias_line = alias  # the name ``alias`` is taken by ast's loop variable in ``build``


def _changed_elsewhere(summary: Summary, name: str) -> bool:
    """Does a top-level statement that is not copied (a call, a loop, a branch) change
    what ``name`` holds? Then its assignment alone would tell a wrong story."""
    return any(name in s.changes for s in summary.statements if s.kind == "other")


def _third_party_imports(summary: Summary) -> list[int]:
    """Indices of a module's top-level imports that are not of the project."""
    kept = []
    for index, statement in enumerate(summary.statements):
        info = statement.imports
        if isinstance(info, ImportFrom):
            if info.module == "__future__" or info.level:
                continue
            if resolve(summary.path, 0, info.module) is not None:
                continue
            kept.append(index)
        elif isinstance(info, Import):
            if all(resolve(summary.path, 0, dotted) is None for dotted, _ in info.names):
                kept.append(index)
    return kept


def build(path: str, text: str) -> Prelude | None:
    """The prelude for the file at ``path`` holding ``text``; None when it imports
    nothing from its project (or cannot be parsed: the check reports that)."""
    if "import" not in text or installed(path):
        return None
    try:
        tree = ast.parse(text, path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    builder = _Builder()
    blank: list[ast.stmt] = []
    direct: list[str] = []
    aliases: list[str] = []
    modules: dict[str, str] = {}  # local name -> project file, for ``import model``
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if _module_imports(path, node, modules):
                blank.append(node)
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.module == "__future__":
            blank.append(node)
            continue
        target = resolve(path, node.level or 0, node.module or "")
        if target is None:
            continue
        summary = summary_of(target)
        if summary is None:
            continue
        copied = False
        for alias in node.names:
            names = [alias.name]
            if alias.name == "*":  # what the file uses and does not bind itself
                names = sorted(_free_names(tree))
            elif alias.name not in summary.bound and target.endswith("__init__.py"):
                submodule = module_file(os.path.dirname(target), alias.name)
                if submodule is not None:  # ``from package import model``
                    modules[alias.asname or alias.name] = submodule
                    copied = True
                    continue
            for name in names:
                kind = builder.request(target, name)
                if kind is not None:
                    copied = True
                    if alias.asname and alias.asname != name:
                        aliases.append(alias_line(alias.asname, name, kind))
        if copied:
            blank.append(node)
            if target not in direct:
                direct.append(target)
    renames = _module_attributes(tree, text, modules, builder, direct, aliases)
    if not builder.selected or not any(s.statements for s in builder.selected.values()):
        return None
    return _assemble(path, text, builder, direct, aliases, blank, renames)


def _free_names(tree: ast.Module) -> set[str]:
    """Names the module reads but never binds: what a star import may provide."""
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return {name for name in read - bound if not hasattr(builtins, name)}


def _module_imports(path: str, node: ast.Import, modules: dict[str, str]) -> bool:
    """Record ``import model``, ``import pkg.model as m`` and ``import pkg.model``
    of project files under the dotted name their uses start with (``model``, ``m``,
    ``pkg.model``); True when every module the statement imports is one."""
    found = 0
    for alias in node.names:
        target = resolve(path, 0, alias.name)
        if target is not None:
            modules[alias.asname or alias.name] = target
            found += 1
    return found == len(node.names) and found > 0


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _module_attributes(tree, text, modules, builder, direct, aliases) -> list[Rename]:
    """``model.Classifier`` where ``model`` is a project module: the definition is
    copied under the name ``model_Classifier``, which has the same length, so the
    use is rewritten in place and every column stays where it was."""
    if not modules:
        return []
    renames: list[Rename] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, ast.Load):
            continue
        local, attribute = _dotted(node.value), node.attr
        if local not in modules:
            continue
        target = modules[local]
        kind = builder.request(target, attribute)
        if kind is None:
            continue
        mangled = f"{local.replace('.', '_')}_{attribute}"
        rename = Rename(node.lineno, node.col_offset, f"{local}.{attribute}", mangled)
        renames.append(rename)
        if target not in direct:
            direct.append(target)
        definition = alias_line(mangled, attribute, kind)
        if definition not in aliases:
            aliases.append(definition)
    return renames


@dataclass(frozen=True)
class Rename:
    """``dotted`` written at (line, byte column) is analysed as ``mangled``."""

    line: int
    column: int
    dotted: str
    mangled: str


def _order(builder: _Builder, direct: list[str]) -> list[str]:
    """Modules, each after the modules it reads from."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(module: str) -> None:
        if module in ordered or module in visiting or module not in builder.selected:
            return
        visiting.add(module)
        for needed in builder.selected[module].needs:
            visit(needed)
        visiting.discard(module)
        ordered.append(module)

    for module in [*direct, *builder.selected]:
        visit(module)
    return ordered


def _assemble(path, text, builder, direct, aliases, blank, renames=()) -> Prelude:
    out: list[str] = []
    chunks: list[Chunk] = []

    def emit(lines: list[str], origin: str | None, origin_line: int) -> None:
        lines = [part for line in lines for part in source_lines(line)]
        if not lines:
            return
        chunks.append(Chunk(len(out) + 1, len(lines), origin, origin_line))
        out.extend(line.rstrip("\r\n") + "\n" for line in lines)

    modules = _order(builder, direct)
    for module in modules:
        selection = builder.selected[module]
        summary = selection.summary
        wanted = set(selection.statements)
        if wanted:
            wanted.update(_third_party_imports(summary))
        for index in sorted(wanted):
            statement = summary.statements[index]
            emit(summary.lines[statement.start - 1 : statement.end], module, statement.start)
        emit(selection.aliases, None, 0)
    emit(aliases, None, 0)
    joined = "".join(out) + _blanked(text, blank, renames)
    prelude = Prelude(joined, len(out), chunks, list(modules))
    prelude.renames = {r.mangled: r.dotted for r in renames}
    return prelude


def _blanked(text: str, statements: list[ast.stmt], renames=()) -> str:
    """``text`` with each statement replaced by ``pass`` and spaces, and each
    ``module.Name`` of ``renames`` by its same-length mangled name: the same lines
    and columns everywhere else."""
    if not statements and not renames:
        return text
    lines = source_lines(text)
    for rename in renames:
        line = lines[rename.line - 1]
        start = _column(line, rename.column)
        if line[start : start + len(rename.dotted)] == rename.dotted:
            end = start + len(rename.dotted)
            lines[rename.line - 1] = line[:start] + rename.mangled + line[end:]
    for node in statements:
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        start = _column(lines[first], node.col_offset)
        end = _column(lines[last], node.end_col_offset or 0)
        for number in range(first, last + 1):
            line = lines[number]
            body = line.rstrip("\r\n")
            ending = line[len(body) :]
            left = start if number == first else 0
            right = end if number == last else len(body)
            filler = "pass".ljust(right - left) if number == first else " " * (right - left)
            lines[number] = body[:left] + filler + body[right:] + ending
    return "".join(lines)


def _column(line: str, byte_offset: int) -> int:
    """ast's UTF-8 byte column as a character column."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", "ignore"))


def digest(path: str, text: str) -> str:
    """A hash of everything a prelude for ``text`` could copy from: the project
    files it imports, MAX_HOPS deep, by content. Empty when it imports none.
    For cache keys: costs no parse."""
    if "import" not in text or installed(path):
        return ""
    seen: dict[str, str] = {}
    frontier = [(m, 0) for m in imported_modules(path, text)]
    while frontier:
        module, hops = frontier.pop()
        if module in seen:
            continue
        known = _module_facts(module)
        seen[module] = known[0] if known else "-"
        if known and hops < MAX_HOPS:
            frontier.extend((m, hops + 1) for m in known[1])
    if not seen:
        return ""
    return hashlib.sha256(
        "\n".join(f"{m}\0{h}" for m, h in sorted(seen.items())).encode("utf-8", "surrogateescape")
    ).hexdigest()


def _read_module_facts(path: str, size: int) -> tuple[str, list[str]] | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    body = data.decode("utf-8", "replace")
    return hashlib.sha256(data).hexdigest(), imported_modules(path, body)


# (content hash, project files it imports) of a module, once per version.
_module_facts = PerVersion(_read_module_facts)
