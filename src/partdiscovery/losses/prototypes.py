"""Soft part statistics shared by the feature, visual-consistency and contrastive losses.

Notation (paper Sec. 3): ``R_k(u) = softmax(f(x))_k(u) * M(u)`` is the soft, foreground-masked
assignment of pixel ``u`` to part ``k``; ``z_k = sum_u R_k(u) v(u) / sum_u R_k(u)`` is the part's mean
of a per-pixel quantity ``v`` (φ features or Lab colour).
"""

from __future__ import annotations

import torch

EPS = 1e-6


def part_means(assign: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R-weighted means of ``values`` per part.

    Args:
        assign: ``[B, K, H, W]`` soft assignments R (non-negative).
        values: ``[B, C, H, W]`` per-pixel values.

    Returns:
        ``means [B, K, C]`` and ``mass [B, K]`` (sum of R per part).
    """
    mass = assign.sum(dim=(2, 3))
    weighted = torch.einsum("bkhw,bchw->bkc", assign, values)
    return weighted / (mass.unsqueeze(-1) + EPS), mass


def soft_part_variance(
    assign: torch.Tensor, values: torch.Tensor, fg_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ``sum_k sum_u R_k(u) ||v(u) - z_k||^2 / sum_u M(u)``, averaged over the batch.

    Computed as ``sum_u R_k ||v||^2 - mass_k ||z_k||^2`` (no ``[B, K, C, H, W]`` tensor), which is
    exact up to rounding and clamped at zero.

    Args:
        assign: ``[B, K, H, W]``; values: ``[B, C, H, W]``; fg_mask: ``[B, 1, H, W]``.

    Returns:
        the scalar loss and the part means ``[B, K, C]`` (for reuse as prototypes).
    """
    means, mass = part_means(assign, values)
    second_moment = torch.einsum("bkhw,bhw->bk", assign, values.pow(2).sum(dim=1))
    within = (second_moment - mass * means.pow(2).sum(dim=-1)).clamp_min(0).sum(dim=1)
    area = fg_mask.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return (within / area).mean(), means
