"""A Euclidean-distance loss at distance zero: the forward pass is finite, but the
derivative of sqrt at 0 is infinite, so the first step turns the weights into NaN."""

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(6, 3)
nn.init.zeros_(model.weight)
nn.init.zeros_(model.bias)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x, target = torch.randn(8, 6), torch.zeros(8, 3)

for _step in range(3):
    distance = torch.sqrt(((model(x) - target) ** 2).sum(1)).mean()
    optimizer.zero_grad()
    distance.backward()
    optimizer.step()
