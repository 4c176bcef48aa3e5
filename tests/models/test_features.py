"""The frozen feature extractors φ (partdiscovery.models.features).

Named ``test_feature_extractors.py``, not ``test_features.py``: pytest imports test files by their base
name and ``tests/foreground/test_features.py`` holds that one.
"""

from __future__ import annotations

import pytest
import torch

from partdiscovery.errors import ConfigError
from partdiscovery.models import (
    create_feature_extractor,
    feature_extractor_layers,
    list_feature_extractors,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")


@pytest.mark.parametrize("name", list_feature_extractors())
def test_feature_extractor_is_frozen(name):
    phi = create_feature_extractor(name, pretrained=False)
    assert all(not p.requires_grad for p in phi.parameters())
    phi.train()
    assert not any(m.training for m in phi.modules())
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    out = phi(images, (12, 10))
    assert out.shape == (2, phi.channels, 12, 10)
    assert not out.requires_grad
    native = phi(images.detach())
    assert native.shape == (2, phi.channels, 64 // phi.stride, 64 // phi.stride)


def test_normalised_layers_carry_their_weight():
    phi = create_feature_extractor("efficientnet_lite0", pretrained=False)
    feats = phi(torch.rand(1, 3, 64, 64))
    first = feats[:, :40].norm(dim=1)  # the finest layer is not resized: its norm is exactly its weight
    torch.testing.assert_close(first, torch.full_like(first, phi.layer_weights[0]), atol=1e-4, rtol=0)
    raw = create_feature_extractor("efficientnet_lite0", pretrained=False, normalize=False)
    assert not torch.allclose(raw(torch.rand(1, 3, 64, 64))[:, :40].norm(dim=1), first)


def test_feature_layers_choose_and_weight_phi_layers():
    phi = create_feature_extractor("efficientnet_lite0", layer_weights=(0.5, 0.0, 1.0, 0.25))
    assert phi.layer_weights == (0.5, 1.0, 0.25) and phi.channels == 24 + 112 + 320 and phi.stride == 4
    out = phi(torch.rand(1, 3, 64, 64))  # at the finest layer's own size (16 x 16): no resampling
    assert out.shape == (1, phi.channels, 16, 16)
    # normalised per layer, then weighted: the per-pixel norm of the finest layer's block is its weight
    torch.testing.assert_close(out[:, :24].norm(dim=1), torch.full((1, 16, 16), 0.5))
    for bad in [(1.0, 1.0), (0, 0, 0, 0), (-1, 1, 1, 1)]:
        with pytest.raises(ConfigError, match="feature_layers"):
            create_feature_extractor("efficientnet_lite0", layer_weights=bad)


@pytest.mark.parametrize("name", list_feature_extractors())
def test_layer_bookkeeping_adds_up(name):
    phi = create_feature_extractor(name, pretrained=False)
    assert len(phi.computed_layers) == len(phi.layer_weights) == len(phi.layer_channels)
    assert sum(phi.layer_channels) == phi.channels
    assert set(phi.computed_layers) <= set(phi.selectable_layers)
    assert feature_extractor_layers(name) == phi.selectable_layers  # known without building φ
    selectable = phi.selectable_weights()
    assert len(selectable) == len(phi.selectable_layers)
    assert tuple(w for w in selectable if w > 0) == phi.layer_weights


def test_reweighting_gives_another_weighting_of_the_same_layers():
    """φ with the union of two layer choices, re-weighted, equals φ built with either choice."""
    union = create_feature_extractor("efficientnet_lite0", pretrained=False, layer_weights=(0, 0.33, 1, 0.5))
    images = torch.rand(2, 3, 64, 64)
    out = union(images, (8, 8))
    for choice in [(0, 0.33, 1, 0), (0, 0, 1, 1), (0, 0.33, 1, 0.5)]:
        alone = create_feature_extractor("efficientnet_lite0", pretrained=False, layer_weights=choice)
        alone.model.load_state_dict(union.model.state_dict(), strict=False)  # the same trunk
        index, factor = union.reweighting(choice)
        torch.testing.assert_close(out[:, index] * factor.view(1, -1, 1, 1), alone(images, (8, 8)))
    with pytest.raises(ConfigError, match="does not compute"):
        union.reweighting((1, 0, 1, 0))  # stride 4 was not computed
    with pytest.raises(ConfigError, match="needs 4 layer weights"):
        union.reweighting((1, 1))
