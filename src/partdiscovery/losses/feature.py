"""Feature loss (paper Eq. 2): the pixels of one part should have similar φ features.

    L_f = 1/B sum_b [ sum_k sum_u R_k(u) ||φ(u) - z_k||^2 / sum_u M(u) ]

The reference implementation summed over the batch instead of averaging; the mean makes the
weight independent of the batch size (the ``paper`` preset multiplies the weight by 6 to keep the
paper's balance at batch 6).
"""

from __future__ import annotations

import torch

from partdiscovery.losses.prototypes import soft_part_variance


def feature_loss(
    assign: torch.Tensor, features: torch.Tensor, fg_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft within-part variance of φ.

    Args:
        assign: ``[B, K, H, W]`` R = part probabilities x foreground mask.
        features: ``[B, C, H, W]`` φ features at the same resolution.
        fg_mask: ``[B, 1, H, W]`` foreground mask M.

    Returns:
        the loss and the part prototypes ``z [B, K, C]`` (reused by the contrastive loss).

    Example:
        >>> assign = torch.ones(1, 1, 4, 4); feats = torch.randn(1, 8, 1, 1).expand(1, 8, 4, 4)
        >>> float(feature_loss(assign, feats, torch.ones(1, 1, 4, 4))[0]) < 1e-4  # 0 up to float32 rounding
        True
    """
    return soft_part_variance(assign, features, fg_mask)
