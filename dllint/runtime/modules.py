"""Which modules the script built, where, and what its parameters are called.

For the length of the run ``nn.Module.__init__`` notes each module with the user's line
that built it (``self.aux_head = nn.Linear(64, 3)``, or ``model = Net()`` for the
script's own classes: the frames of the module's own ``__init__`` chain are passed
over). The roots (modules no other built module holds) name the parameters:
``aux_head.weight``. Modules are held weakly: the tracer keeps nothing alive.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import weakref
from collections.abc import Iterator

from torch import nn

from dllint.runtime.events import Place
from dllint.runtime.recorder import user_place

WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile's OptimizedModule, DDP


class Modules:
    """The modules built during the run, with their places and construction order."""

    def __init__(self) -> None:
        self.places: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._order: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._counter = itertools.count()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        original = nn.Module.__init__
        modules = self

        @functools.wraps(original)
        def noting_init(self, *args, **kwargs):
            try:
                modules._note(self)
            except Exception:  # noting is a courtesy; the module must still build
                pass
            return original(self, *args, **kwargs)

        nn.Module.__init__ = noting_init
        try:
            yield
        finally:
            nn.Module.__init__ = original

    def _note(self, module: nn.Module) -> None:
        if module in self._order:
            return
        self._order[module] = next(self._counter)

        def own_init(frame) -> bool:
            return frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is module

        place = user_place(own_init)
        if place is not None:
            self.places[module] = place

    def modules(self) -> list[nn.Module]:
        """The live modules built during the run, in construction order."""
        return sorted(self._order.keys(), key=lambda module: self._order[module])

    def roots(self) -> list[nn.Module]:
        """Built modules that no other built module holds, in construction order."""
        modules = self.modules()
        held = set()
        for module in modules:
            held.update(id(child) for child in module.children())
        return [module for module in modules if id(module) not in held]

    def parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter directly held by a built module."""
        for module in self.modules():
            for parameter in module._parameters.values():
                if parameter is not None:
                    yield parameter

    def names(self) -> dict[int, tuple[str, nn.Module, nn.Module]]:
        """id(parameter) -> (qualified name in its root, the module holding it, the root)."""
        found: dict[int, tuple[str, nn.Module, nn.Module]] = {}
        for root in self.roots():
            for prefix, module in root.named_modules(remove_duplicate=True):
                for name, parameter in module._parameters.items():
                    if parameter is None or id(parameter) in found:
                        continue
                    qualified = _strip(f"{prefix}.{name}" if prefix else name)
                    found[id(parameter)] = (qualified, module, root)
        return found

    def place(self, module: nn.Module, root: nn.Module | None = None) -> Place | None:
        """Where ``module`` was built; its root's place when it was built out of sight."""
        place = self.places.get(module)
        if place is None and root is not None:
            place = self.places.get(root)
        return place


def _strip(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name
