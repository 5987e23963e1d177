"""Discover the rule classes shipped in ``dllint.rules`` and select them by code."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from dllint.rule import Rule


@cache
def all_rules() -> tuple[type[Rule], ...]:
    import dllint.rules as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Rule)
                and value is not Rule
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return tuple(sorted(found, key=lambda rule: rule.code))


def matches(code: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """A code matches a pattern equal to it or a prefix of it (``DL4`` matches ``DL401``)."""
    return any(code.startswith(pattern) for pattern in patterns)


def select_rules(
    select: list[str] | None = None, ignore: list[str] | None = None
) -> list[type[Rule]]:
    chosen = []
    for rule in all_rules():
        if select:
            if not matches(rule.code, select):
                continue
        elif not rule.default_enabled:
            continue
        if ignore and matches(rule.code, ignore):
            continue
        chosen.append(rule)
    return chosen


def rule_by_code(code: str) -> type[Rule] | None:
    for rule in all_rules():
        if rule.code == code.upper() or rule.name == code.lower():
            return rule
    return None
