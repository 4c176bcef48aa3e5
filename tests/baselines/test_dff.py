"""DFF baseline: recovers exact non-negative mixtures; end to end on the synthetic dataset."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import normalized_mutual_info_score

from partdiscovery.baselines.dff import DFFModel, fit_dff, predict_dff
from partdiscovery.data import open_dataset
from partdiscovery.data.base import PartDataset, RawSample
from partdiscovery.data.synth import generate_synthetic_dataset
from partdiscovery.models import DenseFeatures, create_feature_extractor

K, C, SIZE = 3, 8, 16


class MixtureFeatures(DenseFeatures):
    """φ(u) = H^T rgb(u): every pixel is an exact non-negative mixture of the K = 3 factors H [K, C],
    with the pixel's RGB values as activations."""

    layer_weights = (1.0,)
    channels = C
    stride = 1

    def __init__(self, factors: torch.Tensor) -> None:
        super().__init__(normalize=False)
        self.register_buffer("factors", factors)

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [torch.einsum("kc,bkhw->bchw", self.factors, images)]


class MixtureImages(PartDataset):
    """Images whose pixel colours are activations: the labelled factor 0.8, the others at most 0.15."""

    part_names = {k + 1: f"factor{k}" for k in range(K)}

    def __init__(self, n: int, seed: int) -> None:
        self.root, self.split, self.ids = None, "test", [f"img{i}" for i in range(n)]
        rng = np.random.default_rng(seed)
        self.samples = []
        for image_id in self.ids:
            labels = rng.integers(0, K, (SIZE // 4, SIZE // 4)).repeat(4, 0).repeat(4, 1)
            activations = rng.uniform(0, 0.15, (SIZE, SIZE, K))
            np.put_along_axis(activations, labels[..., None], 0.8, axis=-1)
            fg = np.zeros((SIZE, SIZE), bool)
            fg[2:-2, 1:-1] = True
            rgb = np.where(fg[..., None], activations, 0)
            self.samples.append(
                RawSample(
                    id=image_id,
                    image=Image.fromarray(np.round(rgb * 255).astype(np.uint8)),
                    fg_mask=fg,
                    part_labels=np.where(fg, labels + 1, 0).astype(np.int64),
                )
            )

    def load(self, index: int) -> RawSample:
        return self.samples[index]


def test_recovers_exact_nonnegative_mixtures():
    rng = np.random.default_rng(0)
    factors = rng.uniform(0, 1, (K, C)) * (rng.uniform(0, 1, (K, C)) < 0.6)
    factors = torch.from_numpy(factors / np.linalg.norm(factors, axis=1, keepdims=True)).float()
    phi = MixtureFeatures(factors)
    model = fit_dff(phi, MixtureImages(6, seed=1), K, SIZE, progress=False, nonnegative="clamp")
    assert isinstance(model, DFFModel) and model.nmf.components_.shape == (K, C)

    preds = list(predict_dff(phi, model, MixtureImages(3, seed=2), SIZE, progress=False))
    fg = np.concatenate([p.fg_mask.ravel() for p in preds])
    pred = np.concatenate([p.parts.ravel() for p in preds])
    truth = np.concatenate([p.part_labels.ravel() for p in preds])
    assert (pred[~fg] == 0).all() and set(np.unique(pred[fg])) <= {1, 2, 3}
    assert normalized_mutual_info_score(truth[fg], pred[fg]) > 0.99


def test_split_keeps_the_negative_half():
    model = DFFModel(nmf=None, nonnegative="split")
    feats = torch.tensor([[1.0, -2.0]]).view(1, 2, 1, 1)
    np.testing.assert_array_equal(model.pixel_features(feats), [[1.0, 0.0, 0.0, 2.0]])
    with pytest.raises(ValueError, match="split or clamp"):
        DFFModel(nmf=None, nonnegative="abs").pixel_features(feats)


def test_scores_are_contributions_not_raw_activations():
    """NMF's A H is defined up to a per-factor scale, so a pixel's score for factor k is A_k ||H_k||. (The test
    above cannot see this: its activations differ by 0.8 vs 0.15 and its factors have unit norm.)"""

    class Diagonal:  # a fitted NMF whose factors have norms 4 and 0.5; NNLS against them is a division
        components_ = np.array([[4.0, 0.0], [0.0, 0.5]])

        def transform(self, pixels):
            return pixels / np.array([4.0, 0.5])

    scores = DFFModel(nmf=Diagonal(), nonnegative="clamp").scores(np.array([[2.0, 1.0]]))
    np.testing.assert_allclose(scores, [[2.0, 1.0]])  # raw activations would be [0.5, 2]: the other factor


def test_end_to_end_on_the_synthetic_dataset(tmp_path):
    data = generate_synthetic_dataset(tmp_path / "synth", n=8, num_parts=3, size=48)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        phi = create_feature_extractor("efficientnet_lite0", pretrained=False, normalize=False)
    model = fit_dff(
        phi, open_dataset(data, "train"), 3, 48, pixels_per_image=50, batch_size=4, progress=False
    )
    test = open_dataset(data, "test")
    preds = list(predict_dff(phi, model, test, 48, batch_size=4, progress=False))
    assert [p.id for p in preds] == list(test.ids)
    for p in preds:
        raw = test.load(test.ids.index(p.id))
        assert p.parts.shape == raw.fg_mask.shape and p.parts.dtype == np.int64
        assert p.parts.min() >= 0 and p.parts.max() <= 3
        assert (p.parts[~p.fg_mask] == 0).all() and (p.parts[p.fg_mask] >= 1).all()
        assert p.part_labels is not None
