"""A model trained through torch.compile (backend from the command line): the tracer
must let it run, record the eager loss around it, and not what ran inside."""

import sys

import torch
import torch.nn.functional as F
from torch import nn

backend = sys.argv[1] if len(sys.argv) > 1 else "eager"
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 1)
        self.scale = nn.Parameter(torch.ones(16))

    def forward(self, x):
        h = F.relu(self.fc1(x)) * self.scale + 1.0  # inside the compiled region
        return self.fc2(h)


model = Net()
compiled = torch.compile(model, backend=backend)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
x, y = torch.randn(16, 8), torch.randn(16)
for _step in range(4):
    pred = compiled(x).squeeze(1)
    loss = ((pred - y) ** 2).mean()  # eager, around the compiled model
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"final loss {loss.item():.4f}")
