"""Regression done right: squeezed outputs, reshaped targets, a binary head with
column labels, a bias added by broadcasting, an accuracy over matching shapes."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(80, 5)
y = torch.randn(80)
labels = (torch.rand(80) > 0.5).float()
loader = DataLoader(TensorDataset(X, y, labels), batch_size=20, shuffle=True)

body = nn.Sequential(nn.Linear(5, 16), nn.ReLU())
regression_head = nn.Linear(16, 1)
class_head = nn.Linear(16, 1)
offset = torch.zeros(16)
params = [*body.parameters(), *regression_head.parameters(), *class_head.parameters()]
optimizer = torch.optim.AdamW(params, lr=1e-3)

for xb, yb, lb in loader:
    hidden = body(xb) + offset
    pred = regression_head(hidden).squeeze(1)
    mse = F.mse_loss(pred, yb)
    l1 = (regression_head(hidden) - yb.unsqueeze(1)).abs().mean()
    huber = nn.HuberLoss()(regression_head(hidden), yb.view(-1, 1))
    logits = class_head(hidden)
    bce = F.binary_cross_entropy_with_logits(logits, lb.unsqueeze(1))
    accuracy = ((logits.squeeze(1) > 0).float() == lb).float().mean()
    gated = torch.where(lb > 0.5, pred, torch.zeros_like(pred))
    loss = mse + l1 + huber + bce + 0.0 * gated.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(loss.item(), accuracy.item())
