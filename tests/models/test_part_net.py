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
