"""Visual consistency loss (paper Eq. 4): a piecewise-constant reconstruction of the image in CIE-Lab.

Each part is replaced by its mean Lab colour; the loss is the soft squared reconstruction error
over the foreground, i.e. the same soft within-part variance as the feature loss, on colour.

Lab is used raw (L in [0, 100], a/b roughly in [-128, 127]), as in the reference code
(``skimage.color.rgb2lab``), so that the paper's weight (30) means what it meant there. An earlier
version scaled Lab by 1/100, which shrank the term by 1e-4 and left it at about 1 % of the feature
term: the weights in the presets are given for raw Lab.
"""

from __future__ import annotations

import kornia
import torch

from partdiscovery.losses.prototypes import soft_part_variance


def rgb_to_lab(images: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` RGB in [0, 1] -> CIE-Lab (D65, L in [0, 100]), as ``skimage.color.rgb2lab``."""
    return kornia.color.rgb_to_lab(images.clamp(0, 1))


def visual_consistency_loss(assign: torch.Tensor, lab: torch.Tensor, fg_mask: torch.Tensor) -> torch.Tensor:
    """Soft within-part variance of colour.

        L_v = 1/B sum_b [ sum_k sum_u R_k(u) ||lab(u) - mean_k(lab)||^2 / sum_u M(u) ]

    Args:
        assign: ``[B, K, H, W]`` R; lab: ``[B, 3, H, W]`` from :func:`rgb_to_lab`;
        fg_mask: ``[B, 1, H, W]``.

    Example:
        >>> flat = torch.full((1, 3, 4, 4), 0.5)
        >>> float(visual_consistency_loss(torch.ones(1, 1, 4, 4), rgb_to_lab(flat), torch.ones(1, 1, 4, 4))) < 1e-3
        True
    """
    # The variance is computed as E[x^2] - E[x]^2; centring each image first (the variance does not
    # change) keeps raw Lab (values up to 100) from cancelling catastrophically in float32 / bf16.
    centred = lab - lab.mean(dim=(2, 3), keepdim=True)
    return soft_part_variance(assign, centred, fg_mask)[0]
