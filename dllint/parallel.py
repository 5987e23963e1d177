"""Run one function over many items in worker processes, results in input order.

Items are handed out one at a time, the largest first, so one big file at the end
does not leave the other workers idle. On Linux the workers are forked, so they
start with everything the parent already imported (rules, libcst) and with any
monkeypatching a test did; elsewhere they are spawned and import what they need.

A worker that dies (killed, out of memory) does not hang the run: the items it and
its siblings had not finished are handed to a fresh pool, and an item lost that way
twice is computed in this process. Workers leave SIGINT and SIGTERM to the parent,
so interrupting a run prints no traceback per worker.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

POOL_ROUNDS = 2  # pools tried before the items still lost are computed here


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
    results: dict[int, Result] = {}
    waiting = list(order)
    for _ in range(POOL_ROUNDS):
        if not waiting:
            break
        waiting = _pool_round(function, items, waiting, min(jobs, len(waiting)), results)
    for index in waiting:  # lost in every pool: this process computes them
        results[index] = function(items[index])
    return [results[index] for index in range(len(items))]


def _pool_round(function, items, order: list[int], jobs: int, results: dict) -> list[int]:
    """Compute ``order``'s items in one pool; the indexes left undone when a worker
    died (empty when none did)."""
    import multiprocessing  # here: a run served from the cache never needs it
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_quiet_worker)
    futures = {}
    try:
        futures = {pool.submit(function, items[index]): index for index in order}
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        lost = []
        for future, index in futures.items():
            if future in done and future.exception() is None:
                results[index] = future.result()
            elif future in done and not isinstance(future.exception(), BrokenProcessPool):
                raise future.exception()  # the function's own error, as a serial run
            else:
                lost.append(index)
        return lost
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _quiet_worker() -> None:
    """In each worker: Ctrl-C and SIGTERM are the parent's business (it ends the
    pool); a worker neither prints a KeyboardInterrupt traceback nor dies half-way
    through writing a result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
