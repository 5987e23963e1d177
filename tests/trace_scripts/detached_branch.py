"""The encoder's output is detached before the classifier: the encoder never learns."""

import torch
import torch.nn.functional as F
from torch import nn


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return F.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1).flatten(1)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.classifier = nn.Linear(8, 5)

    def forward(self, x):
        features = self.encoder(x)
        return self.classifier(features.detach())  # cuts the encoder off


torch.manual_seed(0)
model = Model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
images, labels = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
loss = F.cross_entropy(model(images), labels)
optimizer.zero_grad()
loss.backward()
optimizer.step()
