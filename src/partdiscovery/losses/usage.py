"""Part usage: a hinge that keeps every one of the K parts in use (not in the paper).

With K = 8 the method leaves parts empty: single 120-step runs of the `photos` preset (seeds 0 and 1, CCP and
PASCAL-Person) each ended with one part (one run: two) that holds under 0.01 % of the validation foreground
(11-122 pixels of 1.5 or 7.1 million), so K = 8 trained K = 6 or 7; with f = EfficientNet-Lite0, two runs of four.
At K = 4 none of 95 validation runs had a part under 1 %.
Nothing in the paper's four terms stops it: an empty part costs the feature and visual terms nothing, and once
its softmax share is near zero its gradient vanishes. The term charges a part whose share of the batch's
foreground falls below ``floor / K`` (a quarter of an even share by default), so a live part of any natural
size is never pushed, only a shrinking one is held:

    s_k = sum_{b,u} R_k(u) / sum_{b,u} M(u),    L_usage = sum_k relu(tau - s_k) / tau,    tau = floor / K

A part with no pixels costs 1, one at tau or above nothing.

Measured (validation, K = 8, single 120-step runs of the `photos` preset, seeds 0 and 1; BENCHMARKS.md, "Empty parts
at K = 8"): with weight 1 no part is empty (the smallest holds 1.9-10.4 % of the foreground); FG-NMI / FG-ARI
-0.37 / +0.78 on CCP, +0.44 / +1.19 on PASCAL-Person. The hinge is non-zero at steps 10 or 20 of the log, where parts
die, and zero at every logged step after.
At K = 4 it fired in one run of six (CCP seed 0, +0.10 / +0.35); the other five are unchanged to every digit.
"""

from __future__ import annotations

import torch


def usage_loss(mass: torch.Tensor, area: torch.Tensor, floor: float = 0.25) -> torch.Tensor:
    """The shortfall of each part's share of the foreground below ``floor / K``, in units of that share.

    Args:
        mass: ``[K]`` the parts' soft mass summed over the batch (``sum_{b,u} R_k(u)``; across processes
            under DDP, so that the shares are the global batch's).
        area: scalar, the foreground summed over the same pixels (``sum_{b,u} M(u)``).
        floor: the share under which a part is charged, as a fraction of an even share ``1 / K``.

    Returns:
        A scalar in ``[0, K]``: how many parts' worth of share is missing.

    Example:
        >>> usage_loss(torch.tensor([6.0, 2.0, 0.0, 0.0]), torch.tensor(8.0))  # two empty parts of four
        tensor(2.)
    """
    k = mass.shape[0]
    tau = floor / k
    share = mass / area.clamp_min(1e-6)
    return (tau - share).clamp_min(0).sum() / tau
