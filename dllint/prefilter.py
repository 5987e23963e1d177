"""The text test that decides, before parsing, whether a rule can fire on a file.

A rule's ``needs`` names the tokens a file must contain for the rule to possibly
fire. Two spellings:

- a tuple of strings, ``("softmax", "sigmoid")``: at least one of them;
- a tuple of groups, ``(("backward",), ("step",))``: every group, and at least one
  token of each group.

A file no selected rule needs is never parsed, and one that passes goes to the
precheck (``dllint.precheck``: CPython's tree, then each rule's condition) before
libcst. A token must be one that appears
in *every* file where the rule can fire (the import that a qualified name resolves
through, the method name a check matches): a wrong token silently hides findings.
``tests/test_speed_modes.py`` runs every fixture with and without this test.

Kept free of libcst so that a run whose files all come from the cache imports
nothing heavy.
"""

from __future__ import annotations

Needs = tuple[str, ...] | tuple[tuple[str, ...], ...]


def groups(needs: Needs) -> tuple[tuple[str, ...], ...]:
    """``needs`` as a tuple of groups (a flat tuple of strings is one group)."""
    if all(isinstance(token, str) for token in needs):
        return (tuple(needs),) if needs else ()
    if all(isinstance(group, tuple) and group for group in needs):
        return tuple(needs)
    raise TypeError(f"needs must be strings or non-empty tuples of strings, got {needs!r}")


def applies(needs: Needs, text: str) -> bool:
    """True when ``text`` holds a token of every group (always, with no ``needs``)."""
    return all(any(token in text for token in group) for group in groups(needs))
