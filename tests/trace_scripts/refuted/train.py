"""This file builds 1-D targets, but ``standardize_`` (another module) turns them into a
column in place: the static suspicion is wrong, and the run shows it."""

import torch
from prep import standardize_
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
features = torch.randn(48, 6)
targets = torch.randn(48)
standardize_(targets)
loader = DataLoader(TensorDataset(features, targets), batch_size=12, shuffle=True)

model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for _epoch in range(5):
    for x, y in loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
