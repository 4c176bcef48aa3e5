"""Foreground/background cross-entropy of a learned background channel.

Neither the paper nor SCOPS has this term: both are given foreground masks M and use them only to mask
their losses. A model with ``model.learned_background`` also predicts a background logit b per pixel,
supervised by the same masks so that ``predict`` works on images without masks:

    L_bg = mean_{b,h,w} BCE(sigmoid(b), 1 - M)

with b > 0 meaning background (as :class:`~partdiscovery.segmenter.PartSegmenter` reads it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def background_loss(background_logits: torch.Tensor, fg_mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the background logits against the background ``1 - fg_mask``.

    Args:
        background_logits: ``[B, 1, H, W]`` logits, positive = background.
        fg_mask: ``[B, 1, H, W]`` foreground in [0, 1] (soft values are soft targets).

    Returns:
        A scalar: the mean over the B * H * W pixels.

    Example:
        >>> background_loss(torch.full((1, 1, 2, 2), -20.0), torch.ones(1, 1, 2, 2)) < 1e-6
        tensor(True)
    """
    return F.binary_cross_entropy_with_logits(background_logits, 1 - fg_mask)
