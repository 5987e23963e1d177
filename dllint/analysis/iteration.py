"""One loop iteration as the ordered list of what it runs.

``iteration_of(facts).events(loop)`` walks a loop body statement by statement, in the
order Python runs it, and lists its calls and the small statements that touch
gradients (``p.grad = None``, ``del p.grad``, ``p.grad += g``). A call of a
same-module function (``train_step(batch)``, ``self.update()``) is followed by that
function's events, in place. Nested function and class bodies and lambdas are not
run where they are written, so they are skipped.

Each event carries its *guards*: for every branch it sits in (an ``if``/``elif``/
``else`` arm, a ``try`` body or handler, a ``match`` case, a conditional expression,
the right side of ``and``/``or``), the set of arms it runs in. Statements after an
``if`` whose arm ends the iteration (``continue``, ``break``, ``return``, ``raise``)
are guarded by the other arms. Two events can run in the same iteration unless a
branch puts them in different arms (``may_run_with``); one runs whenever the other
does when its guards are a subset of the other's (``runs_whenever``). Loops are not
guards: a nested loop's body is taken to run, in its textual order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

MAX_HELPER_DEPTH = 4
EXITS = (cst.Return, cst.Raise, cst.Continue, cst.Break)
# Small statements that are events themselves (after the calls inside them).
STATEMENT_EVENTS = (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Del)

Guards = tuple[tuple[int, frozenset], ...]


@dataclass(frozen=True)
class Event:
    """A call or statement one iteration runs, in order, with the branches it needs."""

    node: cst.CSTNode
    index: int
    guards: Guards = ()
    via: tuple[cst.Call, ...] = ()  # the helper calls it was reached through

    def _arms(self) -> dict[int, frozenset]:
        return dict(self.guards)

    def may_run_with(self, other: Event) -> bool:
        """No branch puts the two in different arms."""
        mine = self._arms()
        return all(not (key in mine and not (mine[key] & arms)) for key, arms in other.guards)

    def runs_whenever(self, other: Event) -> bool:
        """Whenever ``other`` runs, so does this (its guards are implied by ``other``'s)."""
        theirs = other._arms()
        return all(key in theirs and theirs[key] <= arms for key, arms in self.guards)


class Iteration:
    """Iteration events of the loops of one module; ask through ``iteration_of(facts)``."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self._events: dict[cst.CSTNode, list[Event]] = {}

    def events(self, loop: cst.For | cst.While) -> list[Event]:
        """What one iteration of ``loop`` runs, in order (see the module docstring)."""
        if loop not in self._events:
            found: list[Event] = []
            self._block(loop.body, (), (), found, [loop])
            self._events[loop] = found
        return self._events[loop]

    # -- walking ------------------------------------------------------------------------
    def _block(self, block, guards: Guards, via, found, stack) -> None:
        statements = block.body if isinstance(block, cst.IndentedBlock) else [block]
        for statement in statements:
            self._statement(statement, guards, via, found, stack)
            exits = self._exiting_arms(statement)
            if exits:
                key, arms, total = exits
                guards = _add_guard(guards, key, frozenset(range(total)) - arms)

    def _statement(self, statement, guards, via, found, stack) -> None:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            return
        if isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in statement.body:
                self._expression(small, guards, via, found, stack)
                if isinstance(small, STATEMENT_EVENTS):
                    found.append(Event(small, len(found), guards, via))
            return
        if isinstance(statement, cst.If):
            arms = _if_arms(statement)
            key = id(statement)
            total = len(arms)
            for number, (test, body) in enumerate(arms):
                if test is not None:
                    # each test runs only when the earlier ones were false
                    test_guards = _add_guard(guards, key, frozenset(range(number, total)))
                    self._expression(test, test_guards, via, found, stack)
                self._block(body, _add_guard(guards, key, frozenset({number})), via, found, stack)
            return
        if isinstance(statement, cst.Try) or type(statement).__name__ == "TryStar":
            key = id(statement)
            body_guards = _add_guard(guards, key, frozenset({0}))
            self._block(statement.body, body_guards, via, found, stack)
            if statement.orelse is not None:
                self._block(statement.orelse.body, body_guards, via, found, stack)
            for number, handler in enumerate(statement.handlers, start=1):
                handler_guards = _add_guard(guards, key, frozenset({number}))
                self._block(handler.body, handler_guards, via, found, stack)
            if statement.finalbody is not None:
                self._block(statement.finalbody.body, guards, via, found, stack)
            return
        if isinstance(statement, cst.For):
            self._expression(statement.iter, guards, via, found, stack)
            self._block(statement.body, guards, via, found, stack)
            if statement.orelse is not None:
                self._block(statement.orelse.body, guards, via, found, stack)
            return
        if isinstance(statement, cst.While):
            self._expression(statement.test, guards, via, found, stack)
            self._block(statement.body, guards, via, found, stack)
            if statement.orelse is not None:
                self._block(statement.orelse.body, guards, via, found, stack)
            return
        if isinstance(statement, cst.With):
            for item in statement.items:
                self._expression(item.item, guards, via, found, stack)
            self._block(statement.body, guards, via, found, stack)
            return
        if isinstance(statement, cst.Match):
            self._expression(statement.subject, guards, via, found, stack)
            key = id(statement)
            for number, case in enumerate(statement.cases):
                self._block(
                    case.body, _add_guard(guards, key, frozenset({number})), via, found, stack
                )
            return
        # anything else: its calls, in order, unguarded
        self._expression(statement, guards, via, found, stack)

    def _expression(self, node, guards, via, found, stack) -> None:
        """The calls in ``node`` in the order they finish (arguments before the call)."""
        tree = self.facts.tree
        calls = [
            call for call in tree.descendants(node, cst.Call) if not self._deferred(call, node)
        ]
        calls.sort(key=tree.last.__getitem__)
        for call in calls:
            call_guards = guards
            for key, arm in self._expression_guards(call, node):
                call_guards = _add_guard(call_guards, key, frozenset({arm}))
            found.append(Event(call, len(found), call_guards, via))
            function = self.facts.loops.callee(call)
            if function is not None and function not in stack and len(stack) <= MAX_HELPER_DEPTH:
                stack.append(function)
                self._block(function.body, call_guards, (*via, call), found, stack)
                stack.pop()

    def _deferred(self, call: cst.Call, root: cst.CSTNode) -> bool:
        """Inside a lambda (or a nested def) under ``root``: not run here."""
        for ancestor in self.facts.tree.ancestors(call):
            if ancestor is root:
                return False
            if isinstance(ancestor, (cst.Lambda, cst.FunctionDef, cst.ClassDef)):
                return True
        return False

    def _expression_guards(self, call: cst.Call, root: cst.CSTNode):
        """Arms of conditional expressions and short-circuit operators around ``call``."""
        tree = self.facts.tree
        child: cst.CSTNode = call
        for ancestor in tree.ancestors(call):
            if isinstance(ancestor, cst.IfExp):
                if child is ancestor.body:
                    yield id(ancestor), 0
                elif child is ancestor.orelse:
                    yield id(ancestor), 1
            elif isinstance(ancestor, cst.BooleanOperation) and child is ancestor.right:
                yield id(ancestor), 1
            if ancestor is root:
                return
            child = ancestor

    def _exiting_arms(self, statement):
        """For an ``if`` some of whose arms end the iteration: (key, those arms, arm count)."""
        if not isinstance(statement, cst.If):
            return None
        arms = _if_arms(statement)
        exiting = frozenset(number for number, (_test, body) in enumerate(arms) if _ends(body))
        if not exiting:
            return None
        return id(statement), exiting, len(arms)


def _if_arms(statement: cst.If) -> list[tuple[cst.BaseExpression | None, cst.BaseSuite]]:
    """(test, body) for ``if``, each ``elif`` and ``else`` (test None); a missing
    ``else`` is an empty arm."""
    arms: list = []
    current: cst.If | cst.Else | None = statement
    while current is not None:
        if isinstance(current, cst.If):
            arms.append((current.test, current.body))
            current = current.orelse
        else:
            arms.append((None, current.body))
            current = None
    if arms[-1][0] is not None:
        arms.append((None, cst.IndentedBlock(body=[])))
    return arms


def _ends(block: cst.BaseSuite) -> bool:
    """The block ends with ``continue``/``break``/``return``/``raise`` (at its top level)."""
    statements = block.body if isinstance(block, cst.IndentedBlock) else [block]
    for statement in statements:
        if isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            if any(isinstance(small, EXITS) for small in statement.body):
                return True
    return False


def _add_guard(guards: Guards, key: int, arms: frozenset) -> Guards:
    merged = dict(guards)
    merged[key] = merged[key] & arms if key in merged else arms
    return tuple(merged.items())


def iteration_of(facts: ModuleFacts) -> Iteration:
    """The module's ``Iteration`` analysis, computed once per module."""
    cached = facts.__dict__.get("_iteration")
    if cached is None:
        cached = facts.__dict__["_iteration"] = Iteration(facts)
    return cached


__all__ = ["Event", "Iteration", "iteration_of"]
