"""Small random and hand-made inputs shared by the loss tests, and naive reference formulas."""

from __future__ import annotations

import torch


def soft_inputs(b=2, k=3, c=5, h=6, w=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.randn(b, k, h, w, generator=g, dtype=torch.float64).softmax(dim=1)
    mask = (torch.rand(b, 1, h, w, generator=g, dtype=torch.float64) > 0.3).double()
    values = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    return probs * mask, values, mask


def naive_soft_variance(assign, values, mask):
    """Paper Eq. 2/4: 1/B sum_b [ sum_k sum_u R_k(u) ||v(u) - z_k||^2 / sum_u M(u) ], by loops."""
    b, k, h, w = assign.shape
    total = 0.0
    for i in range(b):
        within = 0.0
        for j in range(k):
            r = assign[i, j]
            z = (r[None] * values[i]).sum(dim=(1, 2)) / r.sum()
            for y in range(h):
                for x in range(w):
                    within += float(r[y, x]) * float(((values[i, :, y, x] - z) ** 2).sum())
        total += within / float(mask[i].sum())
    return total / b


def hard_constant_inputs():
    """One-hot assignments, and values that are constant within each part (different between parts)."""
    labels = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 1], [2, 2, 2, 1]])
    assign = torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1)[None].float()
    colours = torch.tensor([[0.1, 0.9], [0.5, -0.3], [-1.0, 0.2]])  # [K, C]
    values = colours[labels].permute(2, 0, 1)[None]
    return assign, values, torch.ones(1, 1, 3, 4)


# ------------------------------------------------------------------------------------------ prototypes
