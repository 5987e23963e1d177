"""Binary classification where the labels stay 1-D: BCE refuses the shapes."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(30, 4)
labels = torch.randint(0, 2, (30,)).float()
loader = DataLoader(TensorDataset(X, labels), batch_size=10)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

for xb, yb in loader:
    probabilities = model(xb)
    loss = F.binary_cross_entropy(probabilities, yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
