"""The part network f = backbone -> decoder -> part logits (partdiscovery.models.part_net)."""

from __future__ import annotations

import pytest
import torch

from partdiscovery.config import ModelConfig
from partdiscovery.models import PartSegmentationNet, list_backbones

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")


@pytest.mark.parametrize("name", list_backbones())
def test_part_net_logits_have_the_input_size(name):
    torch.manual_seed(0)
    net = PartSegmentationNet(ModelConfig(backbone=name, pretrained=False, num_parts=3, decoder_channels=16))
    net.eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 64))
        assert out.logits.shape == (2, 3, 64, 64) and out.background_logits is None
        assert torch.isfinite(out.logits).all()
        probs = out.part_probs
        torch.testing.assert_close(probs.sum(1), torch.ones(2, 64, 64))
        assert net(torch.rand(1, 3, 64, 48)).logits.shape == (1, 3, 64, 48)
    head = {id(p) for p in net.head_parameters()}
    body = {id(p) for p in net.backbone_parameters()}
    assert head and body and not head & body
    assert head | body == {id(p) for p in net.parameters()}


def test_learned_background_adds_a_channel():
    net = PartSegmentationNet(
        ModelConfig(pretrained=False, num_parts=4, decoder_channels=8, learned_background=True),
    ).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 32, 32))
    assert out.logits.shape == (2, 4, 32, 32) and out.background_logits.shape == (2, 1, 32, 32)


def test_part_probabilities_take_the_mask_then_the_learned_background_then_none():
    from partdiscovery.models.part_net import part_probabilities

    g = torch.Generator().manual_seed(0)
    logits, bg = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 1, 4, 5, generator=g)
    mask = (torch.rand(2, 1, 4, 5, generator=g) > 0.5).float()
    for background, probs in (
        (1 - mask, part_probabilities(logits, bg, mask)),  # the mask takes precedence
        (bg.sigmoid(), part_probabilities(logits, bg)),
        (torch.zeros_like(bg), part_probabilities(logits)),
    ):
        torch.testing.assert_close(probs[:, :1], background)
        torch.testing.assert_close(probs[:, 1:], logits.softmax(dim=1) * (1 - background))
        torch.testing.assert_close(probs.sum(dim=1), torch.ones(2, 4, 5))
