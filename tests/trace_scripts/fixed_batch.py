"""Reshapes with the batch size written as a number: fine while batches hold 16."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
images = torch.randn(64, 1, 4, 4)
classes = torch.randint(0, 3, (64,))
loader = DataLoader(TensorDataset(images, classes), batch_size=16, shuffle=True)
model = nn.Linear(16, 3)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

for xb, cb in loader:
    flat = xb.view(16, -1)
    loss = nn.functional.cross_entropy(model(flat), cb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
