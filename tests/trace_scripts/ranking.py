"""Pairwise losses written on purpose: a ranking hinge over every pair, a distance
matrix as an outer difference of equal ranks, a contrastive similarity matrix."""

import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
items = torch.randn(10, 6)
relevance = torch.rand(10)
scorer = nn.Linear(6, 1)
optimizer = torch.optim.SGD(scorer.parameters(), lr=0.1)

scores = scorer(items).squeeze(-1)
better = (relevance.unsqueeze(1) > relevance.unsqueeze(0)).float()
margins = F.relu(1.0 - (scores.unsqueeze(1) - scores))
ranking = (better * margins).sum() / better.sum()
embedded = F.normalize(scorer.weight * items, dim=1)
distances = (embedded[:, None, :] - embedded[None, :, :]).pow(2).sum(-1)
similarity = embedded @ embedded.T / 0.1
contrastive = F.cross_entropy(similarity, torch.arange(10))
loss = ranking + 0.01 * distances.mean() + contrastive
optimizer.zero_grad()
loss.backward()
optimizer.step()
