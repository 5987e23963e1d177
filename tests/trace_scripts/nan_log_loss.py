"""A custom loss takes the log of a ReLU output: log(0) on the first step."""

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(32, 4)
y = (torch.rand(32, 1) > 0.5).float()


def my_loss(pred, target):
    prob = torch.relu(pred)
    return -(target * torch.log(prob) + (1 - target) * torch.log(1 - prob)).mean()


for _step in range(5):
    loss = my_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
