"""What makes a traced shape suspicious. Pure Python: no torch, so it is cheap to test.

Two things are suspicious, and only these two:

- an elementwise operation (``-``, ``*``, ``==``, ``torch.where``...) whose operands have
  different ranks and whose broadcast crosses one size with itself: one operand alone
  brings a size ``n`` to one result axis, the other operand alone brings the same ``n``
  to another axis. ``(N, 1)`` against ``(N,)`` gives ``(N, N)`` exactly this way. A bias
  ``(B, C) + (C,)`` does not (the ``C`` axes line up), and an outer product written with
  equal ranks, ``(N, 1) * (1, M)``, is deliberate and never suspicious;
- an elementwise loss whose input and target differ in shape so that the loss runs over
  more elements than either holds (``(N, 1)`` against ``(N,)`` again: ``N * N`` terms).

Shapes are tuples of ints; ``None`` stands for a Python number (it broadcasts like ``()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

ShapeT = tuple[int, ...]


def broadcast(*shapes: ShapeT | None) -> ShapeT | None:
    """The broadcast shape, as torch computes it, or None when the shapes do not fit."""
    real = [tuple(shape) for shape in shapes if shape is not None]
    rank = max((len(shape) for shape in real), default=0)
    result = []
    for axis in range(rank):
        size = 1
        for shape in real:
            offset = axis - (rank - len(shape))
            if offset < 0 or shape[offset] == 1:
                continue
            if size not in (1, shape[offset]):
                return None
            size = shape[offset]
        result.append(size)
    return tuple(result)


def crossing(first: ShapeT, second: ShapeT) -> int | None:
    """The size that ``first`` and ``second`` cross with itself when broadcast, if any.

    Only for operands of different rank (an implicit rank promotion): the size ``n > 1``
    that one operand alone brings to one result axis and the other operand alone brings
    to another.
    """
    if len(first) == len(second) or not first or not second:
        return None
    rank = max(len(first), len(second))
    left = (1,) * (rank - len(first)) + tuple(first)
    right = (1,) * (rank - len(second)) + tuple(second)
    only_left = {a for a, b in zip(left, right, strict=True) if a > 1 and b == 1}
    only_right = {b for a, b in zip(left, right, strict=True) if b > 1 and a == 1}
    common = only_left & only_right
    return max(common) if common else None


def suspicious_broadcast(operands: Sequence[ShapeT | None]) -> int | None:
    """The crossed size of the first pair of tensor operands that crosses one, if any."""
    tensors = [shape for shape in operands if shape]
    if broadcast(*tensors) is None:
        return None
    for i, first in enumerate(tensors):
        for second in tensors[i + 1 :]:
            size = crossing(first, second)
            if size is not None:
                return size
    return None


def suspicious_loss(input_shape: ShapeT | None, target_shape: ShapeT | None) -> bool:
    """An elementwise loss whose two sides broadcast into more terms than either holds."""
    if not input_shape or not target_shape or tuple(input_shape) == tuple(target_shape):
        return False
    joint = broadcast(input_shape, target_shape)
    if joint is None:  # torch refuses these; the run fails and shows the shapes
        return True
    return prod(joint) > max(prod(input_shape), prod(target_shape))


def text(shape: ShapeT | None) -> str:
    """``(7, 1)``, ``(7,)``, ``()``, or ``scalar`` for a Python number."""
    if shape is None:
        return "scalar"
    shape = tuple(shape)
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(size) for size in shape) + ")"
