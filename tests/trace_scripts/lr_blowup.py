"""Linear regression with a learning rate far too large: the loss grows every step
until it overflows."""

import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=3.0)
x = torch.randn(64, 10) * 3
y = x.sum(1, keepdim=True)

for _step in range(200):
    loss = F.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
