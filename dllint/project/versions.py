"""Facts about a file, computed once per version of it (its size and modification
time), for the run of one process: the project index asks about the same imported
modules for every file that imports them."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PerVersion:
    """``compute(path, size)`` remembered until the file's size or mtime changes;
    None for a file that cannot be looked at."""

    def __init__(self, compute: Callable[[str, int], T | None]) -> None:
        self.compute = compute
        self.known: dict[str, tuple[tuple[int, int], T | None]] = {}

    def __call__(self, path: str) -> T | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        stamp = (stat.st_size, stat.st_mtime_ns)
        known = self.known.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        value = self.compute(path, stat.st_size)
        self.known[path] = (stamp, value)
        return value
