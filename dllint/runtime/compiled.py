"""``torch.compile`` under the tracer: compiled code runs with the recorder set aside.

Dynamo traces a ``TorchFunctionMode`` on the mode stack into the graph and guards on
its state; the recorder's state changes with every recorded operation, so a compiled
model recompiles or fails a guard ("Guard failed on the same frame it was created").
For the length of the run, ``torch.compile`` hands back its compiled callable wrapped
so that each call takes the tracer's modes off the stack and puts them back after:
the compiled region runs exactly as it would without the tracer, unrecorded, and the
eager code around it (the loss, the targets, the optimizer) is recorded as before.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch
from torch import nn

NOTE = "the compiled model's inside was not traced (code under torch.compile runs unrecorded)"


class CompiledRegions:
    """Counts the calls into compiled code, and sets ``modes`` aside during each."""

    def __init__(self) -> None:
        self.modes: list = []  # the tracer's TorchFunctionModes, innermost last
        self.calls = 0

    @contextlib.contextmanager
    def set_aside(self) -> Iterator[None]:
        """Pop the stack down to (and including) the outermost of ``modes``, push it back."""
        popped = []
        try:
            if any(mode in _stack() for mode in self.modes):
                while torch._C._len_torch_function_stack():
                    mode = torch._C._pop_torch_function_stack()
                    popped.append(mode)
                    if mode is self.modes[0]:
                        break
            yield
        finally:
            for mode in reversed(popped):
                torch._C._push_on_torch_function_stack(mode)

    def wrap(self, compiled: Callable) -> Callable:
        """The compiled callable (a function, or an ``OptimizedModule``), called untraced."""
        if isinstance(compiled, nn.Module):
            forward = compiled.__dict__.get("forward")
            if callable(forward):
                compiled.forward = self._untraced(forward)
            return compiled
        if callable(compiled):
            return self._untraced(compiled)
        return compiled

    def _untraced(self, function: Callable) -> Callable:
        regions = self

        @functools.wraps(function)
        def untraced(*args, **kwargs):
            if torch.compiler.is_compiling():  # called from inside another compiled region
                return function(*args, **kwargs)
            regions.calls += 1
            with regions.set_aside():
                return function(*args, **kwargs)

        return untraced


def _stack() -> list:
    return [torch._C._get_function_stack_at(i) for i in range(torch._C._len_torch_function_stack())]


@contextlib.contextmanager
def untraced_compile(regions: CompiledRegions) -> Iterator[None]:
    """``torch.compile`` (and so ``nn.Module.compile``) returns callables that run
    with the tracer set aside, for the length of the block."""
    original = torch.compile

    @functools.wraps(original)
    def compile(model=None, *args, **kwargs):
        if model is None:  # @torch.compile(...) used as a decorator factory
            return lambda function: compile(function, *args, **kwargs)
        return regions.wrap(original(model, *args, **kwargs))

    torch.compile = compile
    try:
        yield
    finally:
        torch.compile = original
