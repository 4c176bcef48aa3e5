"""k-means on φ features of foreground pixels: the paper's clustering baseline.

Fitted on pixels sampled from the training split (the same φ and input size as the method), then
every test pixel takes its nearest centre. Training-free apart from the clustering itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch.utils.data import DataLoader

from partdiscovery.data.base import PartDataset
from partdiscovery.data.prediction import Prediction
from partdiscovery.data.transforms import EvalSet, collate_eval, uncrop
from partdiscovery.models import DenseFeatures
from partdiscovery.utils.progress import progress as progress_bar


def feature_batches(
    phi: DenseFeatures,
    dataset: PartDataset,
    input_size: int,
    feature_size: int,
    batch_size: int,
    desc: str,
    progress: bool,
):
    """``(batch, φ features [B, C, f, f], foreground [B, 1, f, f] bool)`` of the letterboxed images, in order."""
    loader = DataLoader(EvalSet(dataset, input_size), batch_size=batch_size, collate_fn=collate_eval)
    for batch in progress_bar(loader, desc, progress, unit="batch"):
        with torch.inference_mode():
            feats = phi(batch["image"], (feature_size, feature_size))
            masks = (
                torch.nn.functional.interpolate(
                    batch["fg_mask"], size=(feature_size, feature_size), mode="area"
                )
                > 0.5
            )
        yield batch, feats, masks


def sample_foreground_pixels(
    phi: DenseFeatures,
    dataset: PartDataset,
    input_size: int,
    seed: int = 0,
    pixels_per_image: int = 200,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "φ features",
    pixel_features=None,
) -> np.ndarray:
    """φ features of up to ``pixels_per_image`` random foreground pixels per image, ``float32 [N, C]``.

    ``pixel_features``: optional map ``[1, C, h, w] -> [h*w, C']`` (pixel order y, x) applied first
    (e.g. DFF's non-negative split); default: the raw feature vectors.
    """
    rng = np.random.default_rng(seed)
    feature_size = input_size // phi.stride
    samples = []
    for _, feats, masks in feature_batches(
        phi, dataset, input_size, feature_size, batch_size, desc, progress
    ):
        for f, m in zip(feats, masks):
            rows = f.flatten(1).t().numpy() if pixel_features is None else pixel_features(f[None])
            pixels = rows[m[0].flatten().numpy()]
            if len(pixels) > pixels_per_image:
                pixels = pixels[rng.choice(len(pixels), pixels_per_image, replace=False)]
            samples.append(pixels)
    return np.concatenate(samples).astype(np.float32)


def fit_kmeans(
    phi: DenseFeatures,
    dataset: PartDataset,
    num_parts: int,
    input_size: int,
    seed: int = 0,
    pixels_per_image: int = 200,
    batch_size: int = 16,
    progress: bool = True,
) -> KMeans:
    """Cluster φ features of up to ``pixels_per_image`` random foreground pixels per training image."""
    data = sample_foreground_pixels(
        phi, dataset, input_size, seed, pixels_per_image, batch_size, progress, "k-means features"
    )
    return KMeans(n_clusters=num_parts, n_init=10, random_state=seed).fit(data)


def predict_kmeans(
    phi: DenseFeatures,
    kmeans: KMeans,
    dataset: PartDataset,
    input_size: int,
    batch_size: int = 16,
    progress: bool = True,
) -> Iterator[Prediction]:
    """Nearest-centre part labels at original resolution, masked by the dataset's foreground."""
    centres = torch.from_numpy(kmeans.cluster_centers_).float()  # [K, C]
    feature_size = input_size // phi.stride
    for batch, feats, _ in feature_batches(
        phi, dataset, input_size, feature_size, batch_size, "k-means predict", progress
    ):
        # Score = -squared distance to each centre, [B, K, h, w].
        dist = (
            feats.pow(2).sum(1, keepdim=True)
            - 2 * torch.einsum("bchw,kc->bkhw", feats, centres)
            + centres.pow(2).sum(1).view(1, -1, 1, 1)
        )
        yield from predictions_from_scores(batch, -dist)


def predictions_from_scores(batch: dict, scores: torch.Tensor) -> Iterator[Prediction]:
    """Per-part scores ``[B, K, h, w]`` of a letterboxed batch -> the best part at each pixel of the original
    image (scores upsampled like a network's logits, then argmax), 1..K inside its foreground and 0 outside."""
    for i, image_id in enumerate(batch["id"]):
        h, w = batch["size"][i]
        full = uncrop(scores[i : i + 1], batch["box"][i], h, w)[0]
        fg = batch["fg_mask_full"][i]
        parts = np.where(fg, full.argmax(0).numpy() + 1, 0).astype(np.int64)
        yield Prediction(
            id=image_id,
            parts=parts,
            fg_mask=fg,
            gt_fg_mask=batch["gt_fg_mask_full"][i],
            part_labels=batch["part_labels"][i],
            keypoints=batch["keypoints"][i],
        )
