"""Traced events: one operation at one place in the user's code, with its shapes.

Events are deduplicated: a training loop that runs ``pred - y`` two hundred times with
the same shapes makes one event with ``count == 200``. No torch here.
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass, field

from dllint.runtime.shapes import (
    ShapeT,
    broadcast,
    suspicious_broadcast,
    suspicious_loss,
    text,
)

ELEMENTWISE = "elementwise"
COMPARISON = "comparison"
WHERE = "where"
LOSS = "loss"
LARGE_BATCH = 7919  # a prime no model dimension is likely to equal


@dataclass(frozen=True)
class Place:
    """Where in the user's code: 1-based lines and columns, end column exclusive, as in
    findings. Columns are 0 when the interpreter does not record them."""

    path: str
    line: int
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    def within(self, path: str, line: int, column: int, end_line: int, end_column: int) -> bool:
        """Inside the span ``(line, column)``-``(end_line, end_column)`` of ``path``."""
        if path != self.path:
            return False
        end_line = end_line or line
        if not self.column or not column or not end_column:
            return line <= self.line <= end_line
        start, end = (self.line, self.column), (self.end_line or self.line, self.end_column)
        return (line, column) <= start and end <= (end_line, end_column)

    def source(self) -> str:
        """The code of the traced expression (its first line when it spans several)."""
        line = linecache.getline(self.path, self.line).rstrip("\n")
        if self.column and self.end_column and (self.end_line or self.line) == self.line:
            return line[self.column - 1 : self.end_column - 1].strip()
        return line.strip()


@dataclass(frozen=True)
class Event:
    """One traced operation: ``op`` (``sub``, ``mse_loss``...) of ``kind`` (elementwise,
    comparison, where, loss), its operands' shapes (None for a Python number), the
    result's shape (None when the operation raised or returned no tensor)."""

    kind: str
    op: str
    place: Place
    operands: tuple[ShapeT | None, ...]
    result: ShapeT | None
    count: int = field(default=1, compare=False)

    @property
    def path(self) -> str:
        return self.place.path

    @property
    def line(self) -> int:
        return self.place.line

    @property
    def crossed(self) -> int | None:
        """For a broadcast, the size crossed with itself (the batch, usually)."""
        if self.kind == LOSS:
            return None
        return suspicious_broadcast(self.operands)

    @property
    def suspicious(self) -> bool:
        if self.kind == LOSS:
            return len(self.operands) >= 2 and suspicious_loss(*self.operands[:2])
        return self.crossed is not None

    @property
    def hidden_by_batch_of_one(self) -> bool:
        """Every operand has a leading axis of 1 (a batch of one) and with a real batch
        there the event would be suspicious: ``(1, 1)`` against ``(1,)``."""
        tensors = [shape for shape in self.operands if shape]
        if len(tensors) < 2 or any(shape[0] != 1 for shape in tensors):
            return False
        grown = tuple((LARGE_BATCH, *shape[1:]) if shape else shape for shape in self.operands)
        if self.kind == LOSS:
            return len(grown) >= 2 and suspicious_loss(*grown[:2])
        return suspicious_broadcast(grown) is not None

    @property
    def broadcast(self) -> ShapeT | None:
        """The shape the operands broadcast to (for a loss: the shape of its terms)."""
        return broadcast(*self.operands)

    def describe(self) -> str:
        """``sub((7, 1), (7,)) -> (7, 7)``."""
        operands = ", ".join(text(shape) for shape in self.operands)
        result = "raised" if self.result is None else text(self.result)
        if self.kind == LOSS and self.suspicious and self.broadcast is not None:
            result += f", terms {text(self.broadcast)}"
        return f"{self.op}({operands}) -> {result}"

    def shapes_json(self) -> dict:
        """The ``shapes`` entry of ``dllint trace --format json``."""
        joint = self.broadcast

        def plain(shape):
            return None if shape is None else list(shape)

        return {
            "op": self.op,
            "operands": [plain(shape) for shape in self.operands],
            "result": plain(self.result),
            "broadcast": plain(joint),
        }

    def __str__(self) -> str:
        return f"{self.place.path}:{self.place.line}: {self.describe()}"
