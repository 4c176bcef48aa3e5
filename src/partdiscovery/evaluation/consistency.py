"""How consistent a model's parts are across a collection, without part labels.

The training losses measure parts image by image (the feature loss is a per-image k-means distortion of
φ, and it reaches the same floor on every seed), so they cannot tell a run whose part k is the same
thing in every image from one whose part k is "whatever is left of the object" here and there. This
module scores that, with the foreground masks as the only supervision: the fraction of the variance of
φ's *deepest* (most semantic) layer over the collection's foreground that the K parts explain with one
prototype per part, shared by all images:

    R² = 1 - Σ_k Σ_{x in part k} |x - μ_k|² / Σ_x |x - μ|²

(the k-means objective of the collection's features, evaluated at f's partition instead of k-means').
`partdiscovery train` uses it to keep the best of ``train.restarts`` runs
(:mod:`partdiscovery.workflows.restarts`). Measured (BENCHMARKS.md, "Restarts"): over 4-8 validation runs
of the `photos` preset per dataset, keeping the run of highest R² among three seeds scored +1.5 / +1.0 /
+2.6 FG-NMI over the mean of the three (ccp / pascal_person / ade_chairs), close to always picking the
best (+1.5 / +1.3 / +2.7).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from partdiscovery.data.base import PartDataset
from partdiscovery.data.transforms import EvalSet, collate_eval
from partdiscovery.models import DenseFeatures, create_feature_extractor, feature_extractor_layers

GRID_STRIDE = 8
"""φ's deepest layer is resized (bilinearly) and f's part probabilities area-pooled to ``input / 8``."""


def deepest_layer_phi(name: str, pretrained: bool = True, weights: str | None = None) -> DenseFeatures:
    """The registered φ ``name`` with only its deepest selectable layer (EfficientNet-Lite: stride 32,
    VGG19: relu5_4), L2-normalised per pixel.

    Why the deepest: among φ's layers it is the one that tells object parts apart across images (it lifts
    k-means on the shared datasets most, BENCHMARKS.md "Validation sweep"), while the shallower layers
    mostly describe colour and texture, which vary from image to image within one part.
    """
    layers = feature_extractor_layers(name)
    only_last = tuple(0.0 for _ in layers[:-1]) + (1.0,)
    return create_feature_extractor(name, pretrained=pretrained, weights=weights, layer_weights=only_last)


def sample_indices(n: int, max_images: int, seed: int = 0) -> list[int]:
    """Up to ``max_images`` of ``range(n)``, drawn without replacement, in increasing order."""
    if n <= max_images:
        return list(range(n))
    return sorted(np.random.default_rng(seed).permutation(n)[:max_images].tolist())


def explained_variance(
    net: torch.nn.Module,
    phi: DenseFeatures,
    dataset: PartDataset,
    input_size: int,
    max_images: int = 120,
    batch_size: int = 8,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> float:
    """R² of ``phi``'s features over the foreground of (up to ``max_images`` of) ``dataset``'s images,
    explained by the parts of ``net`` (hard assignment, one prototype per part for all images).

    Args:
        net: f, returning an output with ``logits [B, K, S, S]`` for letterboxed inputs ``[B, 3, S, S]``.
        phi: frozen features (:func:`deepest_layer_phi`).
        dataset: the training images with their foreground masks (given or automatic; never part labels).
        input_size: ``S``, f's input size.

    Returns:
        R² in [0, 1]; 0 when f gives every foreground cell the same part (the collapse of a run).
    """
    return explained_variances([net], phi, dataset, input_size, max_images, batch_size, seed, device)[0]


def explained_variances(
    nets: Sequence[torch.nn.Module],
    phi: DenseFeatures,
    dataset: PartDataset,
    input_size: int,
    max_images: int = 120,
    batch_size: int = 8,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[float]:
    """:func:`explained_variance` of several models on the same images: each image is read and φ computed
    once for all of them (the restarts score their candidates this way)."""
    cells, parts = foreground_partitions(nets, phi, dataset, input_size, max_images, batch_size, seed, device)
    return [partition_r2(cells, own) for own in parts]


@torch.inference_mode()
def foreground_partitions(
    nets: Sequence[torch.nn.Module],
    phi: DenseFeatures,
    dataset: PartDataset,
    input_size: int,
    max_images: int = 120,
    batch_size: int = 8,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """φ's features of the foreground cells of (up to ``max_images`` of) ``dataset``'s images, and each
    model's part at each of those cells, on a grid of stride :data:`GRID_STRIDE` (arguments as
    :func:`explained_variance`).

    Returns:
        ``float32 [N, C]`` cells and, per model, ``int64 [N]`` parts (f's probabilities area-pooled to the
        grid, then the most likely part).
    """
    grid = max(1, input_size // GRID_STRIDE)
    evalset = EvalSet(dataset, input_size)
    chosen = Subset(evalset, sample_indices(len(evalset), max_images, seed))
    loader = DataLoader(chosen, batch_size=batch_size, collate_fn=collate_eval)
    features, parts = [], [[] for _ in nets]
    for batch in loader:
        images = batch["image"].to(device)
        fg = F.interpolate(batch["fg_mask"].to(device).float(), size=(grid, grid), mode="area")[:, 0] > 0.5
        feats = phi(images, (grid, grid)).float()  # [B, C, g, g]
        features.append(feats.permute(0, 2, 3, 1)[fg].cpu())  # [cells, C]
        for net, own in zip(nets, parts):
            probs = F.adaptive_avg_pool2d(net(images).logits.float().softmax(1), (grid, grid))  # [B, K, g, g]
            own.append(probs.argmax(1)[fg].cpu())  # [cells]
    return torch.cat(features), [torch.cat(own) for own in parts]


def partition_r2(features: torch.Tensor, parts: torch.Tensor) -> float:
    """``1 - within / total`` sum of squares of ``features [N, C]`` grouped by ``parts [N]`` (ints).

    0 for fewer than two cells (nothing to explain)."""
    if len(features) < 2:
        return 0.0
    x = features.double()
    total = (x - x.mean(0)).pow(2).sum()
    if total <= 0:
        return 0.0
    k = int(parts.max()) + 1
    counts = torch.bincount(parts, minlength=k).double()  # [K]
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype).index_add_(0, parts, x)  # [K, C]
    # Σ_k Σ |x - μ_k|² = Σ |x|² - Σ_k |sum_k|² / n_k
    used = counts > 0
    within = x.pow(2).sum() - (sums[used].pow(2).sum(1) / counts[used]).sum()
    return float(1.0 - within / total)
