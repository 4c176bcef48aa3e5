"""Visual consistency loss (paper Eq. 4): a piecewise-constant reconstruction of the image in CIE-Lab.

Each part is replaced by its mean Lab colour; the loss is the soft squared reconstruction error
over the foreground, i.e. the same soft within-part variance as the feature loss, on colour.
Lab is scaled by 1/100 (L in [0, 1], a/b roughly in [-1.3, 1.3]) so its magnitude is close to
the normalised features'.
"""

from __future__ import annotations

import kornia
import torch

from partdiscovery.losses.prototypes import soft_part_variance

LAB_SCALE = 0.01


def rgb_to_scaled_lab(images: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` RGB in [0, 1] -> CIE-Lab (D65) x :data:`LAB_SCALE`."""
    return kornia.color.rgb_to_lab(images.clamp(0, 1)) * LAB_SCALE


def visual_consistency_loss(assign: torch.Tensor, lab: torch.Tensor, fg_mask: torch.Tensor) -> torch.Tensor:
    """Soft within-part variance of colour.

    Args:
        assign: ``[B, K, H, W]`` R; lab: ``[B, 3, H, W]`` from :func:`rgb_to_scaled_lab`;
        fg_mask: ``[B, 1, H, W]``.
    """
    return soft_part_variance(assign, lab, fg_mask)[0]
