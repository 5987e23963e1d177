"""Two parameter groups for two learning rates, and the new head forgotten."""

import torch
import torch.nn.functional as F
from torch import nn


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(20, 64), nn.ReLU())
        self.neck = nn.Linear(64, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(torch.relu(self.neck(self.backbone(x))))


torch.manual_seed(0)
model = Classifier()
optimizer = torch.optim.SGD(
    [
        {"params": model.backbone.parameters(), "lr": 1e-3},
        {"params": model.neck.parameters(), "lr": 1e-2},
    ],
    momentum=0.9,
)
x, labels = torch.randn(16, 20), torch.randint(0, 10, (16,))
loss = F.cross_entropy(model(x), labels)
optimizer.zero_grad()
loss.backward()
optimizer.step()
