"""DL601 non-finite-value: the first operation whose output held NaN or inf, or the
optimizer step that made the parameters non-finite.

Cost decides the design. Every torch call the script makes that returns a floating
tensor (views left out: they cannot make a new value; the optimizer's own updates too:
the parameters are checked after the step) gets one flag computed where the tensor
lives, the sum of the output in float32 at least (one reduction, no allocation: NaN and
inf make it non-finite; ``isfinite(out).all()`` costs a hundred times more on the CPU),
kept on that device with the call's name and the user's line; nothing is read back per
operation, so CUDA never waits. A sum that overflowed without a non-finite element is
told apart when the flags are read, if the output is still alive. Once per
step, when ``backward()`` is called, the loss is read (one host sync): when it is
finite the flags are dropped unread; when it is not, the flags are read once and
walked in the order the calls ran: the origin is the first call whose output was
non-finite while none of its inputs came from an earlier non-finite output. A call
that writes inf on purpose (``masked_fill(mask, float("-inf"))``) is passed over, and
what it feeds counts as inherited. For the operations that make NaN and inf from
finite inputs (``log``, ``sqrt``, division, ``exp``, ``pow``...) the operand's range is
kept too, as a few numbers on the device, so the report can say ``log`` got 0.0.

After each optimizer step the parameters are checked with one fused norm per device
(one host sync): the first step after which they are non-finite is reported at its
``step()`` call, with the learning rate and the loss over the steps seen.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dllint.runtime.codes import NON_FINITE
from dllint.runtime.events import Place
from dllint.runtime.findings import RuntimeFinding
from dllint.runtime.modules import Modules
from dllint.runtime.recorder import user_place

WINDOW = 20_000  # calls kept between two backward()s; more (an evaluation loop) are dropped
VIEWS = frozenset(
    {
        "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze",
        "unsqueeze", "transpose", "t", "permute", "expand", "expand_as", "narrow",
        "select", "getitem", "unbind", "split", "chunk", "tensor_split", "movedim",
        "swapaxes", "swapdims", "contiguous", "detach", "requires_grad", "as_strided",
        "unfold", "diagonal", "real", "imag", "mT", "T", "H", "mH", "cpu", "cuda",
        "pin_memory", "set", "get", "grad", "data", "align_to", "refine_names", "rename",
        "split_with_sizes", "zeros_like", "ones_like", "empty_like", "zeros", "ones",
        "empty", "arange", "linspace", "randn", "rand", "randint", "randperm", "normal",
        "eye", "shape", "size", "dim", "numel", "item", "tolist",
    }
)  # fmt: skip
LOGS = frozenset({"log", "log2", "log10", "log1p", "logit", "xlogy", "lgamma", "digamma"})
ROOTS = frozenset({"sqrt", "rsqrt", "acos", "asin", "acosh", "atanh", "erfinv"})
RECIPROCALS = frozenset({"reciprocal"})
DIVISIONS = frozenset({"div", "divide", "true_divide", "truediv", "floor_divide", "floordiv"})
RIGHT_DIVISIONS = frozenset({"rtruediv", "rdiv", "rfloordiv"})
POWERS = frozenset({"exp", "exp2", "expm1", "pow", "float_power", "cosh", "sinh", "ldexp"})
FLOAT32_EXP_LIMIT = 88.72  # exp overflows float32 above this


@dataclass
class _Call:
    """One checked torch call of the current step."""

    name: str
    place: Place | None
    flag: torch.Tensor  # the output's sum, on its device: non-finite if the output was
    sources: tuple[int, ...]  # earlier calls whose outputs it took
    inputs: tuple  # weak references to its tensor inputs from outside the step's calls
    output: weakref.ref
    deliberate: bool  # a non-finite Python number among its arguments (-inf masks)
    stats: torch.Tensor | None  # see _stats
    sizes: tuple[int, int] = (0, 0)  # the operand's and the output's element counts
    linked: tuple = ()  # weak references to its inputs made by earlier calls of the step


class NonFinite:
    """Watches every call for its step, reads once per step; ``found`` is the finding."""

    def __init__(self, modules: Modules, display: Callable[[str], str]) -> None:
        self.modules = modules
        self.display = display
        self.active = True
        self.found: RuntimeFinding | None = None
        self.paused = False  # inside an optimizer step
        self._names: dict = {}
        self._calls: list[_Call] = []
        self._outputs: dict[int, tuple[weakref.ref, int]] = {}

    # -- every call --------------------------------------------------------------------
    def after_op(self, recorder, func, args, kwargs, result) -> None:
        if self.paused or not isinstance(result, torch.Tensor):
            return
        try:
            name = self._names[func]
        except KeyError:
            name = self._names[func] = getattr(func, "__name__", "").strip("_") or None
        except TypeError:
            return
        if name is None:
            return
        try:
            if name in VIEWS:
                self._alias(args, result)
            elif (
                result.is_floating_point()
                and result.device.type != "meta"
                and not result.is_sparse
                and result.numel()
            ):
                self._record(recorder, name, args, kwargs, result)
        except Exception:  # the check must never break the script: stop checking
            self.active = False

    def _alias(self, args, result) -> None:
        """A view of a flagged output carries its flag on."""
        if args and isinstance(args[0], torch.Tensor):
            entry = self._outputs.get(id(args[0]))
            if entry is not None and entry[0]() is args[0]:
                self._outputs[id(result)] = (weakref.ref(result), entry[1])

    def _record(self, recorder, name, args, kwargs, result) -> None:
        if len(self._calls) >= WINDOW:
            self.forget()
        sources, inputs, linked, deliberate = [], [], [], False
        for value in _flat(args, kwargs):
            if isinstance(value, torch.Tensor):
                entry = self._outputs.get(id(value))
                if entry is not None and entry[0]() is value:
                    sources.append(entry[1])
                    linked.append(entry[0])
                else:
                    inputs.append(weakref.ref(value))
            elif isinstance(value, float) and not math.isfinite(value):
                deliberate = True
        index = len(self._calls)
        call = _Call(
            name,
            recorder.user_place(),
            _flag(result),
            tuple(sources),
            tuple(inputs),
            weakref.ref(result),
            deliberate,
            *_stats(name, args, result),
            tuple(linked),
        )
        self._calls.append(call)
        self._outputs[id(result)] = (call.output, index)

    def forget(self) -> None:
        self._calls.clear()
        self._outputs.clear()

    # -- once per step -----------------------------------------------------------------
    def loss_was_not_finite(self, loss: float, place: Place | None, history: str) -> None:
        """The loss about to go into ``backward()`` is NaN or inf: find where it began."""
        if self.found is not None or not self.active:
            return
        try:
            self._explain(loss, place, history)
        except Exception:  # never break the script's backward()
            self.active = False
        self.forget()

    def _explain(self, loss: float, place: Place | None, history: str) -> None:
        try:
            origin = self._origin()
        except Exception:
            origin = None
        if origin is None:
            if place is not None:
                message = (
                    f"the loss passed to backward() was {_number(loss)}, and no operation the "
                    "tracer saw made a non-finite value (it came from code the tracer does "
                    f"not record: compiled code, or the data itself){history}."
                )
                self.found = RuntimeFinding.at(NON_FINITE, place, message, self.display)
            return
        call, outside = origin
        if call.place is None and place is None:
            return
        self.found = RuntimeFinding.at(
            NON_FINITE, call.place or place, _origin_message(call, outside, loss, history),
            self.display,
        )  # fmt: skip

    def _origin(self):
        flags = _read([call.flag for call in self._calls])
        bad: set[int] = set()
        for index, (call, finite) in enumerate(zip(self._calls, flags, strict=True)):
            if finite:
                continue
            output = call.output()
            if output is not None and bool(torch.isfinite(output).all()):
                continue  # the sum overflowed, the values are finite
            inherited = any(source in bad for source in call.sources)
            bad.add(index)
            if inherited or call.deliberate:
                continue
            outside = [
                tensor
                for tensor in (ref() for ref in call.inputs)
                if tensor is not None
                and tensor.is_floating_point()
                and not bool(torch.isfinite(tensor).all())
            ]
            return call, outside
        return None

    def after_step(self, optimizer, names: Callable[[], dict], curve: Callable[[], str]) -> None:
        """The parameters of ``optimizer`` just changed: still finite?"""
        if self.found is not None or not self.active:
            return
        try:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if _all_finite(params):
                return
            bad = [p for p in params if not bool(torch.isfinite(p).all())]
            known = names()
            labels = [known[id(p)][0] if id(p) in known else "a parameter" for p in bad]
            grads = [p.grad for p in bad if p.grad is not None]
            grads_bad = any(not bool(torch.isfinite(grad).all()) for grad in grads)
        except Exception:
            self.active = False
            return
        place = user_place()
        if place is None:
            return
        from dllint.runtime.gradients import listed

        history = curve()

        if grads_bad:
            message = (
                f"after this optimizer step {listed(labels)} held NaN or inf, and so did "
                "their gradients: the backward pass made them, though the loss was finite "
                f"({learning_rates(optimizer)}{history}). An operation with an infinite "
                "derivative where it ran is the usual cause: `sqrt` or `norm` at 0, `pow` "
                "with a fractional exponent at 0, `acos`/`asin` at +-1; add an epsilon "
                "inside, or find it with `torch.autograd.set_detect_anomaly(True)`."
            )
        else:
            message = (
                f"after this optimizer step {listed(labels)} held NaN or inf while their "
                f"gradients were finite, so the update itself overflowed "
                f"({learning_rates(optimizer)}{history}). A learning rate too large is the "
                "usual cause: lower it, add warm-up, or clip the gradients "
                "(`torch.nn.utils.clip_grad_norm_`)."
            )
        self.found = RuntimeFinding.at(NON_FINITE, place, message, self.display)


def _flat(args, kwargs):
    """The arguments, with the tensors of a list argument (``torch.cat([a, b])``)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, (list, tuple)):
            yield from value
        else:
            yield value


def _stats(name: str, args, result: torch.Tensor) -> tuple:
    """For the operations that make NaN and inf from finite inputs: ([min, max, zeros,
    negatives, non-finite] of the operand that decides it and the output's [NaN, inf,
    -inf] counts, a few numbers left on the device; (operand size, output size))."""
    found = _operand_stats(name, args, result)
    return (None, (0, 0)) if found is None else found


def _operand_stats(name: str, args, result: torch.Tensor) -> tuple | None:
    if name in POWERS and len(args) > 1 and _whole(args[1]):
        return None  # x ** 2 makes no NaN out of finite numbers
    if name in LOGS or name in ROOTS or name in RECIPROCALS or name in POWERS:
        operand = args[0] if args else None
    elif name in DIVISIONS:
        operand = args[1] if len(args) > 1 else None
    elif name in RIGHT_DIVISIONS:
        operand = args[0] if args else None
    else:
        return None
    if not isinstance(operand, torch.Tensor) or not operand.is_floating_point():
        return None
    if operand.numel() == 0:
        return None
    x, out = operand.detach(), result.detach()
    if x.device != out.device:
        return None
    return _stack(x, out), (x.numel(), out.numel())


def _stack(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.stack(
        [
            x.amin().float(),
            x.amax().float(),
            (x == 0).sum().float(),
            (x < 0).sum().float(),
            ((x - x) != 0).sum().float(),  # NaN for NaN and inf: isfinite is slow on CPU
            (out != out).sum().float(),
            (out == math.inf).sum().float(),
            (out == -math.inf).sum().float(),
        ]
    )


def _whole(exponent) -> bool:
    """A whole, non-negative Python exponent."""
    return isinstance(exponent, (int, float)) and exponent >= 0 and float(exponent).is_integer()


def _flag(result: torch.Tensor) -> torch.Tensor:
    """One reduction on the output's device, non-finite when the output held NaN or inf."""
    if result.element_size() < 4:  # float16, bfloat16, float8: sum in float32
        return result.detach().sum(dtype=torch.float32)
    return result.detach().sum()


def _read(flags: list[torch.Tensor]) -> list[bool]:
    """Whether each flag is finite, one transfer per device."""
    by_device: dict = {}
    for index, flag in enumerate(flags):
        by_device.setdefault(flag.device, []).append(index)
    values = [True] * len(flags)
    for indices in by_device.values():
        read = torch.isfinite(torch.stack([flags[i] for i in indices])).tolist()
        for i, value in zip(indices, read, strict=True):
            values[i] = bool(value)
    return values


def _all_finite(params: list[torch.Tensor]) -> bool:
    by_device: dict = {}
    for param in params:
        if param.is_floating_point() and not param.is_sparse:
            by_device.setdefault((param.device, param.dtype), []).append(param.detach())
    for tensors in by_device.values():
        norms = torch._foreach_norm(tensors)
        if not bool(torch.isfinite(torch.stack(norms)).all()):
            return False
    return True


def learning_rates(optimizer) -> str:
    rates = []
    for group in getattr(optimizer, "param_groups", ()):
        rate = group.get("lr")
        if isinstance(rate, torch.Tensor):
            rate = float(rate)
        if isinstance(rate, (int, float)) and rate not in rates:
            rates.append(rate)
    if not rates:
        return f"{type(optimizer).__name__}"
    shown = ", ".join(f"{rate:g}" for rate in rates)
    return f"{type(optimizer).__name__} lr={shown}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "inf" if value > 0 else "-inf"


def _origin_message(call: _Call, outside: list, loss: float, history: str) -> str:
    source = " ".join(call.place.source().split()) if call.place is not None else ""
    source = source if len(source) <= 60 else source[:57] + "..."
    what = f"`{source}` ({call.name})" if source else f"`{call.name}`"
    if outside:
        tensor = outside[0]
        bad = int((~torch.isfinite(tensor)).sum())
        return (
            f"{what} got an input that already held NaN or inf ({bad} of {tensor.numel()} "
            "elements) from outside the operations the tracer saw: the batch itself, a "
            f"parameter, or compiled code; the loss passed to backward() was {_number(loss)}"
            f"{history}."
        )
    output = call.output()
    if call.stats is not None:
        nan, pos, neg = (int(v) for v in call.stats[5:].tolist())
        made = _counts(nan, pos, neg, call.sizes[1])
    else:
        made = _made(output) if output is not None else "NaN or inf"
    facts = _operand_facts(call) or _input_ranges(call)
    advice = "" if history else f" {_advice(call.name)}"
    return (
        f"{what} made the first non-finite value of the step ({made}){facts}; the loss "
        f"passed to backward() was {_number(loss)}{history}.{advice}"
    )


def _input_ranges(call: _Call) -> str:
    """The ranges of the inputs still alive (a parameter, the batch, a kept activation)."""
    ranges = []
    for ref in (*call.linked, *call.inputs)[:3]:
        tensor = ref()
        if tensor is None or not tensor.is_floating_point() or not tensor.numel():
            continue
        low, high = (float(v) for v in torch.aminmax(tensor.detach().float()))
        shape = ", ".join(str(size) for size in tensor.shape)
        ranges.append(f"[{low:.4g}, {high:.4g}] (shape ({shape}))")
    return f": its inputs ranged over {', '.join(ranges)}" if ranges else ""


def _made(output: torch.Tensor) -> str:
    nan = int(torch.isnan(output).sum())
    pos = int(torch.isposinf(output).sum())
    neg = int(torch.isneginf(output).sum())
    return _counts(nan, pos, neg, output.numel())


def _counts(nan: int, pos: int, neg: int, total: int) -> str:
    parts = [
        f"{label} at {count} of {total} elements"
        for label, count in (("NaN", nan), ("inf", pos), ("-inf", neg))
        if count
    ]
    return ", ".join(parts) or "NaN or inf"


def _operand_facts(call: _Call) -> str:
    if call.stats is None:
        return ""
    low, high, zeros, negatives, bad = (float(v) for v in call.stats[:5].tolist())
    n = call.sizes[0]
    name = call.name
    if bad:
        return f": its operand already held {int(bad)} non-finite of {n} elements"
    if name in LOGS:
        parts = []
        if zeros:
            parts.append(f"0.0 at {int(zeros)} of {n} elements")
        if negatives:
            parts.append(f"negative values at {int(negatives)} of {n} (as low as {low:.4g})")
        return f": `{name}` got " + " and ".join(parts) if parts else ""
    if name in ROOTS:
        if negatives:
            low_text = f"as low as {low:.4g}"
            return f": `{name}` got negative values at {int(negatives)} of {n} ({low_text})"
        if zeros and name == "rsqrt":
            return f": `{name}` got 0.0 at {int(zeros)} of {n} elements"
        return f": `{name}` got values in [{low:.4g}, {high:.4g}]"
    if name in DIVISIONS or name in RIGHT_DIVISIONS or name in RECIPROCALS:
        if zeros:
            return f": the divisor was 0.0 at {int(zeros)} of {n} elements"
        return f": the divisor ranged over [{low:.4g}, {high:.4g}]"
    if name in POWERS:
        return f": its input ranged over [{low:.4g}, {high:.4g}]" + (
            f" (exp overflows float32 above {FLOAT32_EXP_LIMIT})"
            if name == "exp" and high > FLOAT32_EXP_LIMIT
            else ""
        )
    return ""


def _advice(name: str) -> str:
    if name in LOGS:
        return (
            "Clamp what goes into the log (`x.clamp_min(1e-7)`) or use the log-space form "
            "(`F.logsigmoid`, `log_softmax`, `F.binary_cross_entropy_with_logits`)."
        )
    if name in ROOTS:
        return "Keep the input in the function's domain (`x.clamp_min(eps)`, or add eps inside)."
    if name in DIVISIONS or name in RIGHT_DIVISIONS or name in RECIPROCALS:
        return "Keep the divisor away from zero (add an epsilon, or clamp it)."
    if name in POWERS:
        return "Subtract the maximum first (`logsumexp`, `softmax`) or clamp the input."
    return "Look at the operation's inputs on the step it failed."
