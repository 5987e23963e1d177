"""Benchmark: `dllint server` latency from a `didChange` to its diagnostics.

Usage: python bench/bench_lsp.py [--lines 500] [--changes 30]

Starts `dllint server` over stdio as an editor does (needs `pip install
"dllint[lsp]"`), opens a generated training script of about `--lines` lines (model
classes, data loaders, training and evaluation loops, one missing `zero_grad()` so
there is a finding to publish), waits for its first diagnostics (the warm-up:
imports, rule catalog, configuration), then sends `--changes` edits one at a time,
each changing a learning rate the way a user types, and times each from the
`didChange` notification to the `publishDiagnostics` for that version. Prints the
median and the spread in milliseconds. The server's debounce delay is included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import BaseLanguageClient

HEADER = '''"""A training script of the usual shape."""
import argparse
import math

import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset
'''

BLOCK = """

class Net{i}(nn.Module):
    def __init__(self, width={w}):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(width * 8 * 8, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = F.max_pool2d(x, 4)
        x = self.drop(torch.flatten(x, 1))
        return self.head(x)


def make_loader{i}(n=256, batch_size=32):
    x = torch.randn(n, 3, 32, 32)
    y = torch.randint(0, 10, (n,))
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)


def evaluate{i}(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in loader:
            logits = model(xb)
            correct += (logits.argmax(1) == yb).sum().item()
            total += yb.numel()
    model.train()
    return correct / max(total, 1)


def train{i}(epochs=2, lr=0.01):
    model = Net{i}()
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1)
    criterion = nn.CrossEntropyLoss()
    loader = make_loader{i}()
    for epoch in range(epochs):
        running = 0.0
        for xb, yb in loader:
            {clear}
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        scheduler.step()
        print(epoch, running / len(loader), evaluate{i}(model, loader))
    return model
"""

FOOTER = """

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    model = train0(args.epochs, args.lr)
    print(math.pi, model)


if __name__ == "__main__":
    main()
"""


def training_script(lines: int) -> str:
    """About ``lines`` lines; the last training loop never clears its gradients."""
    blocks = []
    size = HEADER.count("\n") + FOOTER.count("\n")
    while size + BLOCK.count("\n") <= lines:
        blocks.append(BLOCK)
        size += BLOCK.count("\n")
    text = HEADER
    for i, block in enumerate(blocks):
        clear = "optimizer.zero_grad()" if i < len(blocks) - 1 else "pass"
        text += block.format(i=i, w=16 + i, clear=clear)
    helper = 0
    while size + 4 <= lines:  # small helpers up to the size asked for
        text += f"\n\ndef scale_{helper}(x):\n    return x * {helper + 2}\n"
        size, helper = size + 4, helper + 1
    return text + "\n" * (lines - size) + FOOTER


async def measure(lines: int, changes: int) -> list[float]:
    client = BaseLanguageClient("dllint-bench", "1")
    arrived: dict[int, float] = {}
    event = asyncio.Event()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: lsp.PublishDiagnosticsParams) -> None:
        if params.version is not None:
            arrived.setdefault(params.version, time.perf_counter())
            event.set()

    @client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
    def register(params: lsp.RegistrationParams) -> None:
        return None

    await client.start_io(sys.executable, "-m", "dllint", "server")
    folder = Path(tempfile.mkdtemp(prefix="dllint-bench-lsp-"))
    path = folder / "train.py"
    text = training_script(lines)
    path.write_text(text, "utf-8")
    uri = path.as_uri()
    await client.initialize_async(
        lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), root_uri=folder.as_uri())
    )
    client.initialized(lsp.InitializedParams())

    async def wait_for(version: int) -> float:
        while version not in arrived:
            event.clear()
            await asyncio.wait_for(event.wait(), 60)
        return arrived[version]

    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, text))
    )
    await wait_for(1)
    target = text.index("def train0(epochs=2, lr=0.01)") + len("def train0(epochs=2, lr=0.0")
    line = text[:target].count("\n")
    column = target - (text.rfind("\n", 0, target) + 1)
    timings, cpu = [], []
    pid = client._server.pid if client._server else None
    for version in range(2, changes + 2):
        await asyncio.sleep(0.2)  # a pause, as between a user's edits
        digit = str(version % 10)
        sent, used = time.perf_counter(), _cpu_seconds(pid)
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [
                    lsp.TextDocumentContentChangePartial(
                        range=lsp.Range(lsp.Position(line, column), lsp.Position(line, column + 1)),
                        text=digit,
                    )
                ],
            )
        )
        timings.append((await wait_for(version)) - sent)
        cpu.append(_cpu_seconds(pid) - used)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return timings, cpu


def _cpu_seconds(pid: int | None) -> float:
    """User and system CPU time of the server process (Linux /proc; 0 elsewhere),
    to tell the server's own work from waiting on a busy machine."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args()
    timings, cpu = asyncio.run(measure(args.lines, args.changes))
    ms = sorted(t * 1000 for t in timings)
    print(
        f"didChange -> publishDiagnostics, {training_script(args.lines).count(chr(10))}-line "
        f"file, {len(ms)} changes: median {statistics.median(ms):.0f} ms "
        f"(min {ms[0]:.0f}, max {ms[-1]:.0f}); server CPU per change: median "
        f"{statistics.median(cpu) * 1000:.0f} ms; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
