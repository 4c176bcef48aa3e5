"""Contrastive loss (paper Eq. 3): InfoNCE on part prototypes across the images of a batch.

For the prototype ``z_k^b`` of part k in image b (L2-normalised), the positive is the same part
``z_k^{b'}`` of another image b' drawn uniformly among the other images; the negatives are every
prototype of every *other* part index in every image of the batch (including b itself):

    L_c = -1/(BK) sum_{b,k} log [ exp(s_pos) / (exp(s_pos) + sum_{b'', j != k} exp(<z_k^b, z_j^b''>/τ)) ],
    s_pos = <z_k^b, z_k^b'>/τ

The reference code drew the other image with an off-by-one that never picked the last index; here
``b' = (b + U{1..B-1}) mod B``, uniform over the other images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def draw_positive_images(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each image b, another image index b' != b, uniformly. ``[B]`` long."""
    if batch < 2:
        raise ValueError("the contrastive loss needs at least 2 images per batch")
    offset = torch.randint(1, batch, (batch,), generator=generator)
    return (torch.arange(batch) + offset) % batch


def contrastive_loss(
    prototypes: torch.Tensor,
    temperature: float = 0.19,
    positives: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    all_prototypes: torch.Tensor | None = None,
    anchor_offset: int = 0,
) -> torch.Tensor:
    """InfoNCE over part prototypes.

    Args:
        prototypes: ``[B, K, C]`` part means of the anchor images (not yet normalised).
        temperature: τ (paper: 0.19).
        positives: ``[B]`` index (into ``all_prototypes``) of each anchor image's positive image
            (default: drawn with ``generator`` for the whole batch).
        all_prototypes: ``[B_all, K, C]`` prototypes of the global batch when the batch is split over
            processes (the anchors are rows ``anchor_offset .. anchor_offset + B``); default: ``prototypes``.

    Returns:
        scalar loss (mean over the B*K anchors).

    Example:
        >>> z = torch.eye(4).repeat(3, 1, 1)  # 3 images, 4 parts, identical prototypes per part
        >>> float(contrastive_loss(z, positives=torch.tensor([1, 2, 0]))) < 0.1
        True
    """
    b, k, _ = prototypes.shape
    everyone = prototypes if all_prototypes is None else all_prototypes
    total = everyone.shape[0]
    if positives is None:
        positives = draw_positive_images(total, generator)[anchor_offset : anchor_offset + b]
    anchors = F.normalize(prototypes, dim=-1).reshape(b * k, -1)
    keys = F.normalize(everyone, dim=-1).reshape(total * k, -1)
    sim = anchors @ keys.t() / temperature  # [bK, B_all K]; row (b, k) is an anchor
    rows = torch.arange(b * k, device=sim.device)
    anchor_part = torch.arange(k, device=sim.device).repeat(b)
    key_part = torch.arange(k, device=sim.device).repeat(total)
    pos_col = positives.to(sim.device).repeat_interleave(k) * k + anchor_part
    allowed = key_part.unsqueeze(0) != anchor_part.unsqueeze(1)  # negatives: other part indices
    allowed[rows, pos_col] = True
    log_denominator = torch.logsumexp(sim.masked_fill(~allowed, float("-inf")), dim=1)
    return (log_denominator - sim[rows, pos_col]).mean()
