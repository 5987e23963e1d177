"""api_test_module: a test of the package the file sits in, which trains nothing."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from dllint.analysis import ModuleFacts
from dllint.analysis.test_suites import api_test_module, imported_packages

CHECKS_TYPES = """
    import numpy as np
    from randlib.core import default_generator

    default_generator(0).shuffle([1, 2, 3])
"""
TRAINS = """
    import torch
    import randlib

    def test_fit(model, X, y, opt):
        for _ in range(3):
            loss = torch.nn.functional.mse_loss(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
"""
GRADIENT_CHECK = """
    import torch
    import randlib

    def test_gradient(x):
        y = randlib.logsigmoid(x)
        y.sum().backward()
        torch.testing.assert_close(x.grad, torch.sigmoid(-x))
"""
KERAS_FIT = """
    import randlib

    def test_fit(model, X, y):
        model.fit(X, y, epochs=5)
"""


def facts(path: str, source: str) -> ModuleFacts:
    text = textwrap.dedent(source)
    return ModuleFacts(path, text, cst.parse_module(text))


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("/site/randlib/tests/test_types.py", CHECKS_TYPES, True),
        ("/site/randlib/typing/tests/data/pass/random.py", CHECKS_TYPES, True),
        ("/site/randlib/testing/check.py", CHECKS_TYPES, True),
        # not in a test folder, or the folder above it is not a package it imports
        ("/site/randlib/test_types.py", CHECKS_TYPES, False),
        ("/home/me/project/tests/test_types.py", CHECKS_TYPES, False),
        ("/site/randlib/tests_data/test_types.py", CHECKS_TYPES, False),
        # a gradient check's lone backward() is no training
        ("/site/randlib/tests/test_grad.py", GRADIENT_CHECK, True),
        # a test that trains is training code
        ("/site/randlib/tests/test_train.py", TRAINS, False),
        ("/site/randlib/tests/test_keras.py", KERAS_FIT, False),
    ],
)
def test_api_test_module(path, source, expected):
    assert api_test_module(facts(path, source)) is expected


def test_imported_packages_are_absolute_top_levels():
    source = """
        import numpy.random as npr
        from sklearn.preprocessing import scale
        from . import helpers
        from .core import thing
    """
    assert imported_packages(facts("x.py", source)) == {"numpy", "sklearn"}
