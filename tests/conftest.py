"""Every test gets its own empty dllint cache, so findings cached by one test (or by
a run before a rule changed) never answer for another, and nothing is written into
the repository or the user's home."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_dllint_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DLLINT_CACHE_DIR", str(tmp_path_factory.mktemp("dllint-cache")))
