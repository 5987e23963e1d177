"""Test suites of a library's own API: code that calls the API to check its types and
results (``rng.shuffle([1, 2, 3])`` in numpy's typing tests, a discretizer fit on all of
``X`` to make data for scikit-learn's tests), not training code.

A file is such a test module when all of these hold:

- it sits in a test folder (``tests``, ``test`` or ``testing``) inside the package it
  tests: a folder above that test folder has the name of a top-level package the file
  imports absolutely (``xarray/tests/test_missing.py`` importing ``xarray``,
  ``sklearn/preprocessing/tests/...`` importing from ``sklearn``);
- it trains nothing: no loop with ``backward()`` and an optimizer step, and no
  ``fit(..., epochs=...)``.

A training script named ``test_*.py`` outside a package's test folder, or one inside it
that trains, is still training code. Rules about how data is prepared for training
(DL101, DL103, DL106) stay quiet in these files, and so does DL303 (a test compares a
fused op with the naive formula, ``i.sigmoid().log()``, on purpose).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.tree import call_name, dotted, keyword

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

TEST_FOLDERS = frozenset({"tests", "test", "testing"})
EPOCH_KEYWORDS = ("epochs", "nb_epoch", "max_epochs")


def api_test_module(facts: ModuleFacts) -> bool:
    """Whether the file is a test of the package it sits in and trains nothing."""
    cached = facts.__dict__.get("_api_test_module")
    if cached is None:
        cached = facts.__dict__["_api_test_module"] = _in_own_test_folder(facts) and not (
            _trains(facts)
        )
    return cached


def _in_own_test_folder(facts: ModuleFacts) -> bool:
    parts = os.path.abspath(facts.path).replace("\\", "/").split("/")[:-1]
    tests = [i for i, part in enumerate(parts) if part in TEST_FOLDERS]
    if not tests:
        return False
    above = set(parts[: tests[-1]])
    return bool(above & imported_packages(facts))


def imported_packages(facts: ModuleFacts) -> set[str]:
    """Top-level packages the file imports absolutely (``numpy`` for ``import
    numpy.random as r`` or ``from numpy import random``)."""
    found = set()
    for node in facts.tree.nodes(cst.Import, cst.ImportFrom):
        if isinstance(node, cst.Import):
            for alias in node.names:
                name = dotted(alias.name)
                if name:
                    found.add(name.split(".")[0])
        elif not node.relative and node.module is not None:
            name = dotted(node.module)
            if name:
                found.add(name.split(".")[0])
    return found


def _trains(facts: ModuleFacts) -> bool:
    """A training loop (``backward()`` and an optimizer step in one loop) or a Keras-style
    ``fit(..., epochs=...)``; a gradient check's lone ``backward()`` is not training."""
    if facts.training.training_loops:
        return True
    for call in facts.calls():
        if call_name(call) in ("fit", "fit_generator") and any(
            keyword(call, word) is not None for word in EPOCH_KEYWORDS
        ):
            return True
    return False
