"""The file says the targets are 1-D; the collate function (another module) makes them
columns, so the loss is fine at run time."""

import torch
from collate import as_columns
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
features = torch.randn(48, 6)
targets = torch.randn(48)
loader = DataLoader(TensorDataset(features, targets), batch_size=12, collate_fn=as_columns)

model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for x, y in loader:
    loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
