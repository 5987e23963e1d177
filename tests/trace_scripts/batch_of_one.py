"""Online learning, one sample per batch: (1, 1) against (1,) broadcasts to nothing
worse than (1, 1), so the bug hides until the batch grows."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(20, 3)
y = torch.randn(20)
loader = DataLoader(TensorDataset(X, y))
model = nn.Linear(3, 1)
criterion = nn.SmoothL1Loss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

for xb, yb in loader:
    loss = criterion(model(xb), yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
