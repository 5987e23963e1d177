"""A tiny transformer language-model step: causal and padding masks, position
embeddings, pairwise scores, all broadcasting on purpose."""

import math

import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
batch, seq, vocab, dim = 4, 12, 50, 32
tokens = torch.randint(0, vocab, (batch, seq))
lengths = torch.tensor([12, 9, 7, 12])


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, padding):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        scores = scores + padding[:, None, None, :] * -1e4
        out = scores.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.zeros(seq, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, 4)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens, padding):
        x = self.embed(tokens) + self.position
        x = x + self.attn(self.norm1(x), padding)
        x = x + self.mlp(self.norm2(x))
        return self.head(x)


model = Block()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
padding = (torch.arange(seq)[None, :] >= lengths[:, None]).float()

logits = model(tokens, padding)
loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1))
mask = 1.0 - padding[:, 1:]
loss = loss + 0.0 * (mask * logits[:, :-1].logsumexp(-1)).sum() / mask.sum()
optimizer.zero_grad()
loss.backward()
optimizer.step()
