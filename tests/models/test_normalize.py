"""The one input normaliser of the networks (partdiscovery.models.normalize).

Every backbone and feature extractor used to carry its own ``(x - mean) / std``; these tests pin that the
shared module computes exactly what each of them computed, with the statistics each of them used.
"""

from __future__ import annotations

import pytest
import torch

from partdiscovery.models import (
    create_backbone,
    create_feature_extractor,
    list_backbones,
    list_feature_extractors,
)
from partdiscovery.models.normalize import HALF, IMAGENET_MEAN, IMAGENET_STD, Normalize

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")

RESNET_TIMM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # timm's pretrained_cfg of resnet18/50
STATISTICS = {
    "efficientnet_lite0": (HALF, HALF),
    "efficientnet_lite1": (HALF, HALF),
    "efficientnet_lite2": (HALF, HALF),
    "resnet18": RESNET_TIMM,
    "resnet50": RESNET_TIMM,
    "deeplab_resnet50": (IMAGENET_MEAN, IMAGENET_STD),
    "vgg19": (IMAGENET_MEAN, IMAGENET_STD),
    "dino_vits8": (IMAGENET_MEAN, IMAGENET_STD),
}


def test_normalize_is_the_per_channel_formula_bit_for_bit():
    images = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.equal(Normalize(IMAGENET_MEAN, IMAGENET_STD)(images), (images - mean) / std)
    # EfficientNet-Lite φ computed (x - m) / m with m = torch.full(..., 0.5)
    half = torch.full((1, 3, 1, 1), 0.5)
    assert torch.equal(Normalize(HALF, HALF)(images), (images - half) / half)


def test_statistics_are_not_saved_with_the_weights():
    norm = Normalize(HALF, HALF)
    assert norm.state_dict() == {} and norm.to(torch.float64).mean.dtype == torch.float64


def _assert_statistics(norm: Normalize, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    assert torch.equal(norm.mean, torch.tensor(mean).view(1, 3, 1, 1))
    assert torch.equal(norm.std, torch.tensor(std).view(1, 3, 1, 1))


def _normalizer(module: torch.nn.Module) -> Normalize:
    found = [m for m in module.modules() if isinstance(m, Normalize)]
    assert len(found) == 1, f"{type(module).__name__} has {len(found)} normalisers"
    return found[0]


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_normalises_with_its_weights_statistics(name):
    norm = _normalizer(create_backbone(name, pretrained=False))
    _assert_statistics(norm, *STATISTICS[name])


@pytest.mark.parametrize("name", list_feature_extractors())
def test_every_feature_extractor_normalises_with_its_weights_statistics(name):
    norm = _normalizer(create_feature_extractor(name, pretrained=False))
    _assert_statistics(norm, *STATISTICS[name])


def test_a_backbone_feeds_the_normalised_images_to_its_encoder():
    torch.manual_seed(0)
    backbone = create_backbone("efficientnet_lite0", pretrained=False).eval()
    images = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = backbone.model((images - 0.5) / 0.5)
        for ours, theirs in zip(backbone(images), expected, strict=True):
            assert torch.equal(ours, theirs)
