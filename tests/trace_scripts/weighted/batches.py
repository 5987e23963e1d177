"""Synthetic batches: inputs, 1-D targets and per-sample weights as a column."""

import torch


def get_batch(step, size=16):
    generator = torch.Generator().manual_seed(step)
    x = torch.randn(size, 10, generator=generator)
    y = torch.randn(size, generator=generator)
    w = torch.rand(size, 1, generator=generator)
    return x, y, w
