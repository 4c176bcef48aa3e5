"""Contrastive loss (paper Eq. 3): InfoNCE on part prototypes across the images of a batch.

For the prototype ``z_k^b`` of part k in image b (L2-normalised), the positive is the same part
``z_k^{b'}`` of another image b' drawn uniformly among the other images; the negatives are every
prototype of every *other* part index in every image of the batch (including b itself):

    L_c = -1/(BK) sum_{b,k} log [ exp(<z_k^b, z_k^b'>/τ) / (exp(<z_k^b, z_k^b'>/τ) + sum_{b'', j != k} exp(<z_k^b, z_j^b''>/τ)) ]

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


def contrastive_loss(prototypes: torch.Tensor, temperature: float = 0.19,
                     positives: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """InfoNCE over part prototypes.

    Args:
        prototypes: ``[B, K, C]`` part means (not yet normalised).
        temperature: τ (paper: 0.19).
        positives: ``[B]`` index of the positive image of each image (default: drawn with ``generator``).

    Returns:
        scalar loss (mean over the B*K anchors).
    """
    b, k, _ = prototypes.shape
    if positives is None:
        positives = draw_positive_images(b, generator)
    z = F.normalize(prototypes, dim=-1).reshape(b * k, -1)
    sim = z @ z.t() / temperature  # [BK, BK]; row (b, k) is an anchor
    part = torch.arange(k, device=z.device).repeat(b)  # part index of each column
    pos_col = (positives.to(z.device) * k).repeat_interleave(k) + part  # column of each anchor's positive
    allowed = part.unsqueeze(0) != part.unsqueeze(1)  # negatives: other part indices
    allowed[torch.arange(b * k), pos_col] = True
    log_denominator = torch.logsumexp(sim.masked_fill(~allowed, float("-inf")), dim=1)
    return (log_denominator - sim[torch.arange(b * k), pos_col]).mean()
