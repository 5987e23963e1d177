"""DL603 batch-not-overfit (``dllint trace --overfit-batch``): can the model learn one batch?

For the length of the run every ``DataLoader`` yields its first batch again and again,
as many times per pass as it has batches. For a map-style dataset the first batch's
indices are fetched again each time (``dataset[i]`` and the loader's collate function,
in this process), so random augmentation stays as the script has it; other loaders
repeat the first batch they made. Dropout is left as the model has it. The loss passed
to ``backward()`` is read every step (the runtime checks read it anyway) and the run
stops when it has fallen below ``threshold`` times its first value, or after the steps.
"""

from __future__ import annotations

import contextlib
import functools
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from dllint.runtime.events import Place

THRESHOLD = 0.1
SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40
TINY_LEARNING_RATE = 1e-6


@dataclass
class Ranges:
    """The prediction's and the target's range over the run's elementwise losses."""

    op: str
    pred: list[float] = field(default_factory=lambda: [math.inf, -math.inf])
    target: list[float] = field(default_factory=lambda: [math.inf, -math.inf])

    def widen(self, pred: list[float], target: list[float]) -> None:
        self.pred = [min(self.pred[0], pred[0]), max(self.pred[1], pred[1])]
        self.target = [min(self.target[0], target[0]), max(self.target[1], target[1])]

    def out_of_reach(self) -> str | None:
        """The targets lie where the prediction never went (a sigmoid against 130)."""
        (plow, phigh), (tlow, thigh) = self.pred, self.target
        span = max(thigh - tlow, abs(thigh), abs(tlow), 1e-12)
        if thigh - phigh > 0.5 * span or plow - tlow > 0.5 * span:
            return (
                f"the model's output stayed within [{plow:.4g}, {phigh:.4g}] while the "
                f"targets of `{self.op}` reach [{tlow:.4g}, {thigh:.4g}]: an output "
                "activation (sigmoid, tanh, softmax) or a scale that cannot reach them"
            )
        return None


class Overfit:
    """Repeats the first batch of every DataLoader and keeps the loss curve."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self.curve: list[float] = []
        self.place: Place | None = None  # the backward() call
        self.loaders = 0
        self.ranges: dict[str, Ranges] = {}
        self._indices: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._batches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @property
    def reached(self) -> bool:
        first = self.curve[0] if self.curve else None
        if first is None or not math.isfinite(first) or first <= 0:
            return False
        return min(self.curve) <= self.threshold * first

    def on_loss(self, value: float | None, place: Place | None) -> None:
        if value is None:
            return
        self.curve.append(value)
        if self.place is None:
            self.place = place

    def after_loss(self, op: str, args, kwargs) -> None:
        """The prediction's and target's ranges of an elementwise loss (one sync)."""
        pred = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if not (isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor)):
            return
        if not pred.numel() or not target.numel():
            return
        with torch.no_grad():
            values = torch.stack(
                [pred.amin().float(), pred.amax().float(),
                 target.amin().float(), target.amax().float()]
            ).tolist()  # fmt: skip
        self.ranges.setdefault(op, Ranges(op)).widen(values[:2], values[2:])

    @contextlib.contextmanager
    def repeating(self, steps: int) -> Iterator[None]:
        original = DataLoader.__iter__
        overfit = self

        @functools.wraps(original)
        def repeat(loader):
            overfit.loaders += 1
            return overfit._repeat(loader, original, steps)

        DataLoader.__iter__ = repeat
        try:
            yield
        finally:
            DataLoader.__iter__ = original

    def _repeat(self, loader, original, steps: int) -> Iterator:
        try:
            count = len(loader)
        except TypeError:
            count = steps + 1
        fetch = self._fetcher(loader, original)
        for _ in range(max(1, count)):
            yield fetch()

    def _fetcher(self, loader, original):
        map_style = not isinstance(loader.dataset, torch.utils.data.IterableDataset)
        sampler = loader.batch_sampler
        if map_style and sampler is not None and loader.collate_fn is not None:
            try:
                indices = self._indices.get(loader)
                if indices is None:
                    indices = self._indices[loader] = list(next(iter(sampler)))

                def again():
                    return loader.collate_fn([loader.dataset[i] for i in indices])

                first = again()  # a dataset that cannot be fetched this way: repeat instead
            except Exception:
                pass
            else:
                fetched = [first]
                return lambda: fetched.pop() if fetched else again()
        batch = self._batches.get(loader)
        if batch is None:
            batch = self._batches[loader] = next(iter(original(loader)))
        return lambda: batch

    # -- the verdict -------------------------------------------------------------------
    def best(self) -> tuple[int, float]:
        index = min(range(len(self.curve)), key=lambda i: self.curve[i])
        return index + 1, self.curve[index]


def sparkline(curve: list[float], width: int = SPARK_WIDTH) -> str:
    """The curve in ``width`` block characters (each the mean of its stretch)."""
    finite = [value for value in curve if math.isfinite(value)]
    if not finite:
        return ""
    buckets = []
    size = max(1, math.ceil(len(finite) / width))
    for start in range(0, len(finite), size):
        part = finite[start : start + size]
        buckets.append(sum(part) / len(part))
    low, high = min(buckets), max(buckets)
    if high == low:
        return SPARKS[len(SPARKS) // 2] * len(buckets)
    top = len(SPARKS) - 1
    return "".join(SPARKS[round((value - low) / (high - low) * top)] for value in buckets)


def verdict(
    overfit: Overfit, steps: int, reasons: list[str], display, wanted: int | None = None
) -> tuple:
    """(a DL603 RuntimeFinding or None, the one-line summary). ``steps``: the optimizer
    steps taken; ``wanted``: the steps asked for (a script that ends before them, its
    loss still high, gets no verdict: it was not given the steps)."""
    from dllint.runtime.codes import NOT_OVERFIT
    from dllint.runtime.findings import RuntimeFinding

    share = f"{overfit.threshold:g}x"
    if overfit.threshold * 100 >= 1:
        share = f"{overfit.threshold:.0%}"
    if not overfit.loaders:
        return None, (
            "--overfit-batch repeats the batches of torch DataLoaders, and the script drew "
            "none from one, so there was no batch to repeat and there is no verdict; make "
            "the batches with a DataLoader, or train on one fixed batch by hand."
        )
    if not overfit.curve:
        return None, "--overfit-batch: no loss reached backward(), so there is no verdict."
    first, last = overfit.curve[0], overfit.curve[-1]
    if not math.isfinite(first) or first <= 0:
        return None, (
            f"--overfit-batch: the first loss was {first:.4g}; a fall to {share} of it means "
            "nothing for a loss that is not positive, so there is no verdict."
        )
    if overfit.reached:
        return None, (
            f"--overfit-batch: the loss fell from {first:.4g} to {last:.4g} (below {share} "
            f"of its first value) in {steps} optimizer step{'s' * (steps != 1)}: the model "
            "can learn one batch."
        )
    if wanted is not None and steps < wanted:
        return None, (
            f"--overfit-batch: the script ended after {steps} optimizer "
            f"step{'s' * (steps != 1)}, before the {wanted} asked for, with the loss at "
            f"{last / first:.0%} of its first value ({first:.4g} to {last:.4g}), so there is "
            f"no verdict; let it run longer (more epochs), or judge on what it runs with "
            f"--steps {max(steps, 1)}."
        )
    if overfit.place is None:
        return None, "--overfit-batch: the loss did not fall, but its backward() call was not seen."
    at, best = overfit.best()
    why = (
        "; ".join(reasons)
        if reasons
        else (
            "none the tracer saw; look at the loss (the right target, the right reduction), "
            "the learning rate, and whether the optimizer holds the model's parameters"
        )
    )
    message = (
        f"on one batch repeated for {steps} optimizer step{'s' * (steps != 1)} the loss went "
        f"from {first:.4g} to {last:.4g} (best {best:.4g} at step {at}) and never fell below "
        f"{share} of its first value: a model that cannot learn one batch has a bug "
        f"somewhere. Likely reasons: {why}."
    )
    curve = [value if math.isfinite(value) else None for value in overfit.curve]
    spark = sparkline(overfit.curve)
    lines = (f"loss: {spark}  first {first:.4g}, best {best:.4g}, last {last:.4g}",)
    finding = RuntimeFinding.at(
        NOT_OVERFIT, overfit.place, message, display, {"loss_curve": curve}, lines
    )
    return finding, f"--overfit-batch: the loss did not fall below {share} of {first:.4g}."
