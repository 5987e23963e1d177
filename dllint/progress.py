"""A progress line for long runs: ``dllint: 130/512 files`` on a terminal's stderr.

It appears only when stderr is a terminal and the run has lasted a second
(``DLLINT_PROGRESS_AFTER`` changes the wait), is redrawn a few times a second, and
is erased when the run ends, so nothing of it stays in the terminal and nothing
ever reaches a file or a pipe. The engine says how many files it will check
(``expect``) and each one done (``tick``), also from forked worker processes: the
count lives in shared memory.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

_current: Progress | None = None


def expect(files: int) -> None:
    """The engine will check this many more files."""
    if _current is not None:
        _current.total += files


def tick() -> None:
    """One file checked (in this process or a worker forked from it)."""
    if _current is not None:
        with _current.done.get_lock():
            _current.done.value += 1


class Progress:
    def __init__(self, stream, after: float, interval: float = 0.2) -> None:
        import multiprocessing  # here: only a run on a terminal pays for it

        context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
        self.done = context.Value("i", 0)
        self.total = 0
        self.stream = stream
        self.after = after
        self.interval = interval
        self.shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dllint-progress", daemon=True)

    def _run(self) -> None:
        if self._stop.wait(self.after):
            return
        last = ""
        while not self._stop.is_set():
            line = f"\rdllint: {min(self.done.value, self.total)}/{self.total} files"
            if self.total and line != last:
                self._write(line)
                self.shown, last = True, line
            self._stop.wait(self.interval if self.total else 0.02)  # first draw: soon

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.shown:
            self._write("\r\x1b[K")  # erase the line


@contextmanager
def shown(stream=None, enabled: bool = True):
    """Show progress on ``stream`` (stderr) for the duration, if it is a terminal."""
    global _current
    stream = stream or sys.stderr
    try:
        terminal = enabled and stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if not terminal or _current is not None:
        yield
        return
    try:
        after = float(os.environ.get("DLLINT_PROGRESS_AFTER", "1"))
    except ValueError:
        after = 1.0
    progress = _current = Progress(stream, after)
    progress._thread.start()
    try:
        yield
    finally:
        _current = None
        progress.close()
