"""Self-training: f's parts against the parts of a frozen copy of f, snapped to the image's edges.

Not in the paper. After the four losses have found the parts, f is fine-tuned to reproduce its own part maps
as ``predict`` gives them (refined by ``predict.refine``, the guided filter of the ``photos`` preset), on new
random crops and colour jitter:

    L_st = mean over foreground pixels u of  -log softmax(f(x))_{y(u)}(u),   y = argmax_k P_teacher(u)

Why: the refined maps score higher than f's own (the guided filter lifts validation FG-NMI by about 2), and a
cross-entropy to one hard target per pixel asks f to draw those parts itself, sharper and the same from one
crop to the next. Measured on the validation and test splits: BENCHMARKS.md, "Self-training on the refined parts".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def self_training_loss(logits: torch.Tensor, targets: torch.Tensor, fg_mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the part logits to target parts, averaged over the foreground pixels.

    Args:
        logits: ``[B, K, H, W]`` f's part logits.
        targets: ``[B, 1, H, W]`` integer part index per pixel (0..K-1; its value off the foreground is unused).
        fg_mask: ``[B, 1, H, W]`` foreground in [0, 1]; pixels above 0.5 count.

    Returns:
        A scalar; 0 (with a gradient of 0) when no pixel is foreground.

    Example:
        >>> logits = torch.tensor([[[[9.0]], [[-9.0]]]])  # K = 2, one pixel, confident in part 0
        >>> float(self_training_loss(logits, torch.zeros(1, 1, 1, 1, dtype=torch.long), torch.ones(1, 1, 1, 1))) < 1e-7
        True
    """
    per_pixel = F.cross_entropy(logits, targets[:, 0].long(), reduction="none")
    inside = (fg_mask[:, 0] > 0.5).to(per_pixel)
    return (per_pixel * inside).sum() / inside.sum().clamp_min(1.0)
