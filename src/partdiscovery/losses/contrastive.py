"""Contrastive loss (paper Eq. 3): InfoNCE on part prototypes across the images of a batch.

For the prototype ``z_k^b`` of part k in image b (L2-normalised), the positive is the same part
``z_k^{b'}`` of another image b', drawn for each (b, k) uniformly among the other images; the
negatives are every prototype of every *other* part index in every image of the batch (b included):

    L_c = -1/(BK) sum_{b,k} log [ exp(s_pos) / (exp(s_pos) + sum_{b'', j != k} exp(<z_k^b, z_j^b''>/τ)) ],
    s_pos = <z_k^b, z_k^b'>/τ

Deviation from the reference code (``loss.py``), on purpose: it draws the positive per (b, k) with
``randint(1, B-1)`` among the B-1 other images in index order, so the first other image (the lowest
index != b) is never the positive, and a batch of 2 fails. Here ``b' = (b + U{1..B-1}) mod B``, uniform
over all other images; the value of the loss is otherwise the reference's (agrees to 2e-16 in float64
for the same positives: ``tests/losses/test_reference.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def draw_positive_images(batch: int, parts: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each image b and part k, another image index b' != b, uniformly. ``[B, K]`` long."""
    if batch < 2:
        raise ValueError("the contrastive loss needs at least 2 images per batch")
    offset = torch.randint(1, batch, (batch, parts), generator=generator)
    return (torch.arange(batch).unsqueeze(1) + offset) % batch


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
        positives: ``[B, K]`` index (into ``all_prototypes``) of the image holding each anchor's positive
            (or ``[B]``: the same image for every part); default: drawn with ``generator`` for the whole batch.
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
        positives = draw_positive_images(total, k, generator)[anchor_offset : anchor_offset + b]
    else:  # given (tests, the reference comparison): the training step draws them, and skips this check
        _check_positives(positives, b, k, total, anchor_offset)
    if positives.dim() == 1:
        positives = positives.unsqueeze(1).expand(b, k)
    anchors = F.normalize(prototypes, dim=-1).reshape(b * k, -1)
    keys = F.normalize(everyone, dim=-1).reshape(total * k, -1)
    sim = anchors @ keys.t() / temperature  # [bK, B_all K]; row (b, k) is an anchor
    rows = torch.arange(b * k, device=sim.device)
    anchor_part = torch.arange(k, device=sim.device).repeat(b)
    key_part = torch.arange(k, device=sim.device).repeat(total)
    pos_col = positives.to(sim.device).reshape(-1) * k + anchor_part
    allowed = key_part.unsqueeze(0) != anchor_part.unsqueeze(1)  # negatives: other part indices
    allowed[rows, pos_col] = True
    log_denominator = torch.logsumexp(sim.masked_fill(~allowed, float("-inf")), dim=1)
    return (log_denominator - sim[rows, pos_col]).mean()


def _check_positives(positives: torch.Tensor, batch: int, parts: int, total: int, anchor_offset: int) -> None:
    """A ``ValueError`` unless ``positives`` (``[B, K]`` or ``[B]``) name, for each anchor, another image of the
    global batch: an anchor that is its own positive makes the loss a constant for it (log 1 / 1)."""
    if tuple(positives.shape) not in ((batch, parts), (batch,)):
        raise ValueError(f"positives must be [{batch}, {parts}] or [{batch}], got {list(positives.shape)}")
    own = torch.arange(anchor_offset, anchor_offset + batch, device=positives.device)
    own = own if positives.dim() == 1 else own.unsqueeze(1)
    if ((positives < 0) | (positives >= total)).any() or (positives == own).any():
        raise ValueError(f"each positive must be another image of the batch's {total}, not the anchor's own")
