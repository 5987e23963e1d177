"""Fine-tuning with a frozen backbone (requires_grad=False), and a teacher model with
no gradient at all: nothing to report."""

import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
backbone = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32))
for parameter in backbone.parameters():
    parameter.requires_grad = False
head = nn.Linear(32, 3)
teacher = nn.Linear(16, 3)
optimizer = torch.optim.AdamW(
    [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad],
    lr=1e-3,
)
x, labels = torch.randn(8, 16), torch.randint(0, 3, (8,))
for _step in range(2):
    with torch.no_grad():
        soft = teacher(x).softmax(-1)
    logits = head(backbone(x))
    loss = F.cross_entropy(logits, labels) + F.kl_div(
        logits.log_softmax(-1), soft, reduction="batchmean"
    )
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
