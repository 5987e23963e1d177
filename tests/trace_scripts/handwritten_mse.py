"""House prices with a hand-written squared error over a one-unit head."""

import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(32, 4)
target = torch.randn(32)


class PriceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


net = PriceNet()
optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

for _epoch in range(100):
    pred = net(X)
    loss = ((pred - target) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
