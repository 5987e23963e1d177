"""Gradient descent by hand, no optimizer object: the tracer stops after backward()."""

import torch

torch.manual_seed(0)
x = torch.randn(12, 2)
y = torch.randn(12, 1)
w = torch.zeros(2, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)

for step in range(1000):
    pred = x @ w + b
    loss = ((pred - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
        w.grad.zero_()
        b.grad.zero_()
    print("step", step)
