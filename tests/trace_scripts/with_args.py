"""A trainer with a command line; the loss compares a column with 1-D targets."""

import argparse

import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("rest", nargs="*")
args = parser.parse_args()
print("arguments", args.epochs, args.batch, args.rest)

x = torch.randn(args.batch, 3)
y = torch.randn(args.batch)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for _epoch in range(args.epochs):
    loss = nn.functional.l1_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
