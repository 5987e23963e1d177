"""DL602 parameter-without-gradient: trainable parameters the backward pass never
reached, and parameters that get gradients but belong to no optimizer.

Gradients are looked at after every ``backward()`` and before every optimizer step;
the verdict comes when the run ends:

- a parameter of an optimizer that stepped, with ``requires_grad=True``, whose
  ``.grad`` was ``None`` every time: a layer never called, a branch cut by
  ``detach()``, a head built but unused (the optimizer steps it for nothing);
- a parameter that got a gradient but that no optimizer of the run holds (an
  optimizer missing a parameter group): it never learns;
- with no optimizer at all (gradient descent by hand), every trainable parameter of a
  model some of whose parameters did get gradients, that got none.

Frozen parameters (``requires_grad=False``) are never reported. Each finding is at the
user's line that built the module holding the parameters, which it names by their
qualified names (``aux_head.weight``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator

import torch

from dllint.runtime.codes import NO_GRADIENT
from dllint.runtime.findings import RuntimeFinding
from dllint.runtime.modules import Modules

SHOWN = 3  # parameter names a message lists before "and N more"


class Gradients:
    """Watches gradients during the run; ``findings()`` gives the verdict."""

    def __init__(self, modules: Modules) -> None:
        self.modules = modules
        self.optimizers: list[weakref.ref] = []
        self.stepped: weakref.WeakSet = weakref.WeakSet()
        self.backwards = 0
        self._seen: set[int] = set()  # ids of parameters seen with a gradient
        self._alive: dict[int, weakref.ref] = {}

    # -- during the run ----------------------------------------------------------------
    def note_optimizer(self, optimizer) -> None:
        self.optimizers.append(weakref.ref(optimizer))

    def after_backward(self) -> None:
        self.backwards += 1
        self._look(self.modules.parameters())

    def before_step(self, optimizer, args, kwargs) -> None:
        self.stepped.add(optimizer)
        self._look(_optimizer_parameters(optimizer))

    def _look(self, parameters) -> None:
        for parameter in parameters:
            if parameter.grad is not None and id(parameter) not in self._seen:
                self._seen.add(id(parameter))
                self._alive[id(parameter)] = weakref.ref(parameter)

    def _had_gradient(self, parameter) -> bool:
        ref = self._alive.get(id(parameter))
        return ref is not None and ref() is parameter

    # -- the verdict -------------------------------------------------------------------
    def findings(self, display: Callable[[str], str]) -> list[RuntimeFinding]:
        if not self.backwards:
            return []
        names = self.modules.names()
        optimizers = [opt for opt in (ref() for ref in self.optimizers) if opt is not None]
        held = {id(p) for opt in optimizers for p in _optimizer_parameters(opt)}
        stepped = {
            id(p) for opt in optimizers if opt in self.stepped for p in _optimizer_parameters(opt)
        }
        learning_roots = {id(root) for key, (_, _, root) in names.items() if key in self._seen}
        unreached: dict[int, list] = {}
        unoptimized: dict[int, list] = {}
        for parameter in self._named_parameters(names):
            name, module, root = names[id(parameter)]
            if not parameter.requires_grad:
                continue
            got = self._had_gradient(parameter)
            if optimizers:
                if not got and id(parameter) in stepped:
                    unreached.setdefault(id(module), [module, root]).append(name)
                elif got and id(parameter) not in held:
                    unoptimized.setdefault(id(module), [module, root]).append(name)
            elif not got and id(root) in learning_roots:
                unreached.setdefault(id(module), [module, root]).append(name)
        results = []
        for module, root, *params in unreached.values():
            results.extend(self._finding(module, root, params, unreached_message, display))
        for module, root, *params in unoptimized.values():
            results.extend(self._finding(module, root, params, unoptimized_message, display))
        return results

    def _named_parameters(self, names) -> Iterator[torch.nn.Parameter]:
        seen = set()
        for root in self.modules.roots():
            for parameter in root.parameters():
                if id(parameter) in names and id(parameter) not in seen:
                    seen.add(id(parameter))
                    yield parameter

    def _finding(self, module, root, params, message, display) -> list[RuntimeFinding]:
        place = self.modules.place(module, root)
        if place is None:
            return []
        text = message(module, params, self.backwards)
        return [RuntimeFinding.at(NO_GRADIENT, place, text, display)]


def _optimizer_parameters(optimizer) -> Iterator[torch.Tensor]:
    for group in getattr(optimizer, "param_groups", ()):
        yield from group.get("params", ())


def listed(names: list[str]) -> str:
    shown = ", ".join(f"`{name}`" for name in names[:SHOWN])
    more = len(names) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _layer(module) -> str:
    """``nn.Linear`` for torch's layers, the class name for the script's own."""
    kind = type(module)
    return f"nn.{kind.__name__}" if kind.__module__.startswith("torch.") else kind.__name__


def unreached_message(module, params: list[str], backwards: int) -> str:
    calls = "the first backward()" if backwards == 1 else f"{backwards} backward() calls"
    return (
        f"{listed(params)} ({_layer(module)} built here) got no gradient from {calls}: the "
        "layer never ran in the forward pass, or its output was cut off from the loss "
        "(`.detach()`, `torch.no_grad()`, a branch whose result is unused), so the "
        "optimizer steps it for nothing; use it in the loss, remove it, or freeze it "
        "on purpose with `requires_grad_(False)`."
    )


def unoptimized_message(module, params: list[str], backwards: int) -> str:
    return (
        f"{listed(params)} ({_layer(module)} built here) got gradients but belong to no "
        "optimizer, so they never change; pass them to the optimizer (`model.parameters()`, "
        "or add a parameter group), or freeze them with `requires_grad_(False)` to save "
        "the backward work."
    )
