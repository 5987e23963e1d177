"""A small CNN classifier on synthetic images: nothing here broadcasts by mistake."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
images = torch.randn(40, 3, 16, 16)
classes = torch.randint(0, 10, (40,))
loader = DataLoader(TensorDataset(images, classes), batch_size=8, shuffle=True)
mean = torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1)
std = torch.tensor([0.2, 0.2, 0.2]).view(3, 1, 1)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(32, 10)
        self.scale = nn.Parameter(torch.ones(32))

    def forward(self, x):
        x = (x - mean) / std
        h = self.features(x).flatten(1) * self.scale
        return self.classifier(h)


model = SmallCNN()
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

for images_b, classes_b in loader:
    logits = model(images_b)
    loss = criterion(logits, classes_b)
    correct = (logits.argmax(dim=1) == classes_b).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
