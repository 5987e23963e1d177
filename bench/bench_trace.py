"""The tracer's overhead on one training step: median traced / untraced step time.

    .venv/bin/python bench/bench_trace.py [--runs 30] [--device cuda]

Two models: a small CNN (layers from torch.nn: few operations in the user's code) and a
small transformer block written by hand (attention, residuals and norms in the user's
code: every one of its operations is recorded). Each step is forward, loss, backward and
an optimizer step; steps rotate untraced, shapes only (``tracing()``) and the default
trace (``checking()``: shapes plus DL601's per-call flags and once-a-step loss and
parameter reads, and DL602's gradient walks), so that drift hits all alike.
Aim: the default trace at most 1.5x.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from dllint.trace import RuntimeChecks, checking, tracing


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 8 * 8, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.bn(self.conv2(x))), 2)
        return self.fc(x.flatten(1))


class Block(nn.Module):
    """Pre-norm transformer block, written out the way research code writes it."""

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.head = nn.Linear(dim, 1)

    def attention(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        out = scores.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        h = self.fc1(self.norm2(x))
        h = 0.5 * h * (1.0 + torch.tanh(0.79788456 * (h + 0.044715 * h * h * h)))
        x = x + self.fc2(h)
        return self.head(x).squeeze(-1)


def cnn_step(device, checks):
    with checking(checks):  # built under the checks, as in a traced script
        model = SmallCNN().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(32, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (32,), device=device)

    def step():
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def transformer_step(device, checks):
    with checking(checks):
        model = Block().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens = torch.randn(16, 32, 64, device=device)
    target, weights = torch.randn(16, 32, device=device), torch.rand(16, 32, device=device)

    def step():
        pred = model(tokens)
        loss = (weights * (pred - target) ** 2).sum() / weights.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def measure(step, checks, runs: int, sync) -> tuple[float, float, float]:
    """Median seconds per step: untraced, shapes only, the default trace."""

    def shapes():
        with tracing():
            step()

    def default():
        with checking(checks):
            step()

    ways = (step, shapes, default)
    for _ in range(3):  # warm up every path
        for way in ways:
            way()
    times: list[list[float]] = [[], [], []]
    for _ in range(runs):
        for index, way in enumerate(ways):
            sync()
            start = time.perf_counter()
            way()
            sync()
            times[index].append(time.perf_counter() - start)
    assert not checks.findings(), [f.finding.message for f in checks.findings()]
    plain, shaped, checked = (statistics.median(t) for t in times)
    return plain, shaped, checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--device", default="cpu", help="cpu (the default) or cuda")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    print(
        f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
        f"{args.runs} runs"
    )
    for name, build in (("small CNN", cnn_step), ("transformer block", transformer_step)):
        checks = RuntimeChecks()
        plain, shaped, checked = measure(build(device, checks), checks, args.runs, sync)
        print(
            f"{name:18s} untraced {plain * 1e3:7.2f} ms  shapes {shaped * 1e3:7.2f} ms "
            f"({shaped / plain:4.2f}x)  default trace {checked * 1e3:7.2f} ms "
            f"({checked / plain:4.2f}x)"
        )


if __name__ == "__main__":
    main()
