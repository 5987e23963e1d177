"""Run one function over many items in worker processes, results in input order.

Items are handed out one at a time, the largest first, so one big file at the end
does not leave the other workers idle. On Linux the workers are forked, so they
start with everything the parent already imported (rules, libcst) and with any
monkeypatching a test did; elsewhere they are spawned and import what they need.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def default_jobs() -> int:
    """The number of cores this process may run on."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def parallel_map(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    jobs: int,
    sizes: Sequence[int] | None = None,
) -> list[Result]:
    """``[function(item) for item in items]``, computed by up to ``jobs`` processes.

    ``function`` must be a module-level function and items and results picklable.
    ``sizes`` (one per item) decides the order work is handed out: largest first.
    """
    jobs = min(jobs, len(items))
    if jobs <= 1:
        return [function(item) for item in items]
    order = sorted(range(len(items)), key=lambda i: -sizes[i]) if sizes else range(len(items))
    results: list = [None] * len(items)
    import multiprocessing  # here: a run served from the cache never needs it

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
    with context.Pool(jobs) as pool:
        work = [(function, index, items[index]) for index in order]
        for index, result in pool.imap_unordered(_call, work, chunksize=1):
            results[index] = result
    return results


def _call(work: tuple) -> tuple[int, object]:
    function, index, item = work
    return index, function(item)
