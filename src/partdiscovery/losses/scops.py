"""The losses of SCOPS (Hung et al., "SCOPS: Self-Supervised Co-Part Segmentation", CVPR 2019), pure functions.

Notation: ``P [B, K+1, H, W]`` is the predicted distribution over background (channel 0) and the K
parts; ``R_k = P_{k}`` for ``k = 1..K`` are the part maps; pixel coordinates ``u = (x, y)`` are pixel
centres normalised to [-1, 1] (the convention of :func:`partdiscovery.data.augment.random_warp_grid`).

Normalisations follow the reference implementation (github.com/NVlabs/SCOPS, ``loss.py``) except the
concentration loss, which the reference divided by the batch size twice; here it is averaged once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CENTRE_EPS = 1e-3
"""Added to every pixel of a part map before it is normalised to a spatial pdf (as the reference):
an empty part then has a finite centre at the image centre and no exploding gradient."""


def nonnegative_features(features: torch.Tensor, mode: str = "split") -> torch.Tensor:
    """Make φ features non-negative for a non-negative factorisation (DFF, SCOPS's part basis).

    VGG's ReLU features already are; EfficientNet-Lite0's stage outputs end in a projection conv +
    BatchNorm without activation and are about half negative.

    Args:
        features: ``[B, C, H, W]`` (or ``[N, C]``) raw φ features.
        mode: ``split``: ``[relu(x), relu(-x)]`` along dim 1, ``2C`` channels and lossless
            (``x = pos - neg``); ``clamp``: ``relu(x)``, ``C`` channels, drops the negative half.
    """
    if mode == "split":
        return torch.cat([features.clamp_min(0), (-features).clamp_min(0)], dim=1)
    if mode == "clamp":
        return features.clamp_min(0)
    raise ValueError(f"unknown non-negative feature mode {mode!r}; choose split or clamp")


def _coordinates(height: int, width: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [-1, 1]: ``ys [H]``, ``xs [W]``."""
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) + 0.5) / width * 2 - 1
    return ys, xs


def _spatial_pdf(part_maps: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Marginals of ``(R_k + eps) / sum_u (R_k + eps)`` over rows and columns: ``[B, K, H]``, ``[B, K, W]``."""
    pdf = part_maps + eps
    pdf = pdf / pdf.sum(dim=(2, 3), keepdim=True)
    return pdf.sum(dim=3), pdf.sum(dim=2)


def part_centres(part_maps: torch.Tensor, eps: float = CENTRE_EPS) -> torch.Tensor:
    """Centre of mass of each part map.

        c_k = sum_u (R_k(u) + eps) u / sum_u (R_k(u) + eps)

    Args:
        part_maps: ``[B, K, H, W]`` non-negative part maps R (e.g. ``P[:, 1:]``).
        eps: added to every pixel (:data:`CENTRE_EPS`).

    Returns:
        ``[B, K, 2]`` centres ``(x, y)`` in [-1, 1].
    """
    ys, xs = _coordinates(*part_maps.shape[-2:], part_maps)
    rows, cols = _spatial_pdf(part_maps, eps)
    return torch.stack([(cols * xs).sum(-1), (rows * ys).sum(-1)], dim=-1)


def concentration_loss(part_maps: torch.Tensor, eps: float = CENTRE_EPS) -> torch.Tensor:
    """Geometric concentration: the spatial variance of each part around its centre.

        L_con = 1/B sum_b sum_k sum_u ||u - c_k||^2 (R_k(u) + eps) / sum_u (R_k(u) + eps)

    Args:
        part_maps: ``[B, K, H, W]`` part maps R (background excluded); eps: as :func:`part_centres`.

    Returns:
        scalar; 0 when every part is a single pixel (with ``eps=0``).
    """
    ys, xs = _coordinates(*part_maps.shape[-2:], part_maps)
    rows, cols = _spatial_pdf(part_maps, eps)
    cx = (cols * xs).sum(-1, keepdim=True)
    cy = (rows * ys).sum(-1, keepdim=True)
    variance = (cols * (xs - cx).pow(2)).sum(-1) + (rows * (ys - cy).pow(2)).sum(-1)  # [B, K]
    return variance.sum(dim=1).mean()


def centre_equivariance_loss(
    pred_maps: torch.Tensor, target_maps: torch.Tensor, eps: float = CENTRE_EPS
) -> torch.Tensor:
    """Part centres must move with the warp: MSE between the centres of ``f(T(x2))`` and ``T(f(x1))``.

        L_ceq = 1/(2BK) sum_{b,k} ||c_k(R^{T(x2)}) - c_k(T(R^{x1}))||^2

    Args:
        pred_maps: ``[B, K, H, W]`` part maps of the warped image.
        target_maps: ``[B, K, H, W]`` warped part maps of the original image (the reference does not
            detach them: both branches receive gradients).
    """
    return F.mse_loss(part_centres(pred_maps, eps), part_centres(target_maps, eps))


def semantic_consistency_loss(
    part_maps: torch.Tensor, features: torch.Tensor, basis: torch.Tensor
) -> torch.Tensor:
    """Reconstruct the (foreground-masked, non-negative) φ features from the part maps and a part basis.

        L_sc = 1/(BCHW) sum_{b,u,c} ( sum_k R_k(u) w_k[c] - φ(u)[c] )^2

    The background has no basis vector: masked features are zero there, which only the background
    channel can reconstruct, so this loss also pulls the background channel onto the mask.

    Args:
        part_maps: ``[B, K, H, W]`` part maps R (background excluded).
        features: ``[B, C, H, W]`` φ features times the foreground mask, at the same resolution.
        basis: ``[K, C]`` non-negative part basis vectors w_k.
    """
    reconstruction = torch.einsum("bkhw,kc->bchw", part_maps, basis)
    return F.mse_loss(reconstruction, features)


def orthonormality_loss(basis: torch.Tensor) -> torch.Tensor:
    """Different parts should have different basis directions.

        L_on = || W_n W_n^T - I ||_F^2,   W_n = the L2-normalised rows of W

    Args:
        basis: ``[K, C]`` part basis (the K part rows; the background has none).

    Returns:
        scalar, summed over the ``K x K`` entries as the reference; 0 for orthogonal rows.
    """
    w = F.normalize(basis, dim=1)
    gram = w @ w.t()
    return (gram - torch.eye(len(w), device=w.device, dtype=w.dtype)).pow(2).sum()
