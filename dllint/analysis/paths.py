"""How a path in another file of the project is shown next to a reported one."""

from __future__ import annotations

import os


def display_path(other: str, reported: str) -> str:
    """``other`` as the user would write it next to ``reported``: relative to the
    working folder when ``reported`` is relative, else absolute."""
    if os.path.isabs(reported):
        return os.path.abspath(other)
    try:
        return os.path.relpath(other)
    except ValueError:  # another drive
        return os.path.abspath(other)
