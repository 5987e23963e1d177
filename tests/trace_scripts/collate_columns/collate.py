"""Batching helpers: targets come out as columns, shaped like the model's output."""

import torch


def as_columns(samples):
    xs, ys = zip(*samples, strict=True)
    return torch.stack(xs), torch.stack(ys).unsqueeze(1)
