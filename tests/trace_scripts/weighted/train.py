"""A sample-weighted regression loss where the weights are a column and the
per-sample losses are 1-D: every weight multiplies every sample's loss."""

import torch
import torch.nn.functional as F
from batches import get_batch
from torch import nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters())

for step in range(100):
    x, y, w = get_batch(step)
    pred = model(x).squeeze(1)
    per_sample = F.mse_loss(pred, y, reduction="none")
    loss = (w * per_sample).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
