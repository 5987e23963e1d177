"""DL101's fix: two adjacent `X = shuffle(X)` / `y = shuffle(y)` become one joint shuffle."""

from __future__ import annotations

import textwrap

import pytest

from dllint.autofix import fix_text
from dllint.engine import check_text
from dllint.registry import rule_by_code

RULES = [rule_by_code("DL101")]


def fixed(source: str) -> tuple[str, int]:
    return fix_text(textwrap.dedent(source), "train.py", RULES)


def test_adjacent_reassignments_become_one_joint_shuffle_keeping_comments():
    before = """\
        from sklearn.utils import shuffle

        # shuffle before splitting
        X = shuffle(X)  # features
        y = shuffle(y)  # labels
        model.fit(X, y)
        """
    after, applied = fixed(before)
    assert applied == 1
    assert after == textwrap.dedent(
        """\
        from sklearn.utils import shuffle

        # shuffle before splitting
        # labels
        X, y = shuffle(X, y)  # features
        model.fit(X, y)
        """
    )
    assert fix_text(after, "train.py", RULES) == (after, 0)
    assert [f for f in check_text(after, "train.py", RULES)] == []


def test_inside_a_function_with_an_alias_and_equal_keywords():
    before = """\
        from sklearn.utils import shuffle as skshuffle

        def prepare(train_x, train_y):
            train_x = skshuffle(train_x, n_samples=100)
            train_y = skshuffle(train_y, n_samples=100)
            return train_x, train_y
        """
    after, applied = fixed(before)
    assert applied == 1
    assert "    train_x, train_y = skshuffle(train_x, train_y, n_samples=100)\n" in after
    assert "train_y = skshuffle(train_y" not in after
    assert fix_text(after, "train.py", RULES) == (after, 0)


def test_the_second_lines_comment_is_kept_when_the_first_has_none():
    after, applied = fixed(
        """\
        from sklearn.utils import shuffle
        X = shuffle(X)
        y = shuffle(y)  # keep me
        clf.fit(X, y)
        """
    )
    assert applied == 1
    assert "X, y = shuffle(X, y)  # keep me\n" in after


@pytest.mark.parametrize(
    "source",
    [
        # different keyword arguments: the finding stands, no fix
        """\
        from sklearn.utils import shuffle
        X = shuffle(X, random_state=0)
        y = shuffle(y)
        """,
        # a statement between them
        """\
        from sklearn.utils import shuffle
        X = shuffle(X)
        print(X.shape)
        y = shuffle(y)
        """,
        # a new name for the shuffled copy
        """\
        from sklearn.utils import shuffle
        X_s = shuffle(X)
        y_s = shuffle(y)
        clf.fit(X_s, y_s)
        """,
        # numpy's in-place shuffle: not this fix
        """\
        import numpy as np
        np.random.shuffle(X)
        np.random.shuffle(y)
        """,
        # two statements on one line
        """\
        from sklearn.utils import shuffle
        X = shuffle(X); y = shuffle(y)
        """,
    ],
)
def test_no_fix_where_the_rewrite_is_not_certain(source):
    findings = check_text(textwrap.dedent(source), "train.py", RULES)
    assert findings and all(f.edit is None for f in findings)
