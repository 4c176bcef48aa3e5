"""Deep Feature Factorization (Collins, Achanta & Süsstrunk, ECCV 2018) as a part segmentation baseline.

Non-negative matrix factorisation of φ features of foreground pixels, ``V [N, C] ≈ A [N, K] H [K, C]``
with ``A, H >= 0``: the K rows of H are the factors, ``A`` the per-pixel activations. Fitted on
pixels sampled from the training split (as :mod:`~partdiscovery.baselines.kmeans`); a test pixel's
activations are the non-negative least-squares fit against the fitted factors (``NMF.transform``)
and the pixel takes its strongest factor.

Details that differ from, or are not fixed by, the paper's demo code:

* φ must be non-negative. VGG's ReLU layers are; EfficientNet-Lite0's stage outputs (projection
  conv + BatchNorm, no activation) are about half negative, so the features go through
  :func:`~partdiscovery.losses.scops.nonnegative_features`: by default ``split``, ``[relu(x), relu(-x)]``,
  which keeps all the information (``clamp`` drops the negative half). Use ``normalize=False`` φ
  (raw activations, as DFF's VGG).
* "Strongest factor" is the largest contribution ``A_k ||H_k||``, not the raw activation ``A_k``:
  NMF's ``A H`` is only defined up to a per-factor scale, which this removes. (The paper's demo
  normalises each factor's heat map by its maximum per image, for display.)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import NMF

from partdiscovery.baselines.kmeans import feature_batches, predictions_from_scores, sample_foreground_pixels
from partdiscovery.data.base import PartDataset
from partdiscovery.data.prediction import Prediction
from partdiscovery.losses.scops import nonnegative_features
from partdiscovery.models import DenseFeatures


@dataclass
class DFFModel:
    """A fitted factorisation: ``nmf.components_`` ``[K, C']`` and how φ features were made non-negative."""

    nmf: NMF
    nonnegative: str = "split"

    @property
    def num_parts(self) -> int:
        return self.nmf.n_components_

    def pixel_features(self, features: torch.Tensor) -> np.ndarray:
        """``[B, C, h, w]`` φ features -> ``float32 [B*h*w, C']`` non-negative rows (pixel order b, y, x)."""
        feats = nonnegative_features(features, self.nonnegative)
        return feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]).numpy().astype(np.float32)

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """``[N, C']`` -> ``[N, K]`` factor contributions ``A_k ||H_k||`` (NNLS activations A)."""
        activations = self.nmf.transform(pixels)
        return activations * np.linalg.norm(self.nmf.components_, axis=1)


def fit_dff(
    phi: DenseFeatures,
    dataset: PartDataset,
    num_parts: int,
    input_size: int,
    seed: int = 0,
    pixels_per_image: int = 200,
    batch_size: int = 16,
    progress: bool = True,
    max_iter: int = 400,
    nonnegative: str = "split",
) -> DFFModel:
    """Factorise φ features of up to ``pixels_per_image`` random foreground pixels per training image.

    ``phi`` should give raw activations (``normalize=False``); ``nonnegative``: ``split`` or ``clamp``
    (see the module docstring); ``max_iter``: NMF coordinate-descent iterations.
    """
    model = DFFModel(
        NMF(n_components=num_parts, init="nndsvda", max_iter=max_iter, random_state=seed), nonnegative
    )
    data = sample_foreground_pixels(
        phi,
        dataset,
        input_size,
        seed,
        pixels_per_image,
        batch_size,
        progress,
        "DFF features",
        pixel_features=model.pixel_features,
    )
    if len(data) < num_parts:
        raise ValueError(f"DFF needs at least {num_parts} foreground pixels, found {len(data)}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Maximum number of iterations")  # a baseline: good enough
        model.nmf.fit(data)
    return model


def predict_dff(
    phi: DenseFeatures,
    model: DFFModel,
    dataset: PartDataset,
    input_size: int,
    batch_size: int = 16,
    progress: bool = True,
) -> Iterator[Prediction]:
    """Strongest-factor part labels at original resolution, masked by the dataset's foreground."""
    feature_size = input_size // phi.stride
    for batch, feats, _ in feature_batches(
        phi, dataset, input_size, feature_size, batch_size, "DFF predict", progress
    ):
        b = feats.shape[0]
        scores = torch.from_numpy(model.scores(model.pixel_features(feats))).float()
        # [B*h*w, K] -> [B, K, h, w]
        scores = scores.view(b, feature_size, feature_size, -1).permute(0, 3, 1, 2)
        yield from predictions_from_scores(batch, scores)
