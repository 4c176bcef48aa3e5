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


def test_background_without_gradient_trains_only_its_classifier_row_and_computes_the_same_logits():
    torch.manual_seed(0)
    cfg = ModelConfig(pretrained=False, num_parts=3, decoder_channels=8, learned_background=True)
    shared = PartSegmentationNet(cfg)
    detached = PartSegmentationNet(ModelConfig(**{**vars(cfg), "background_gradient": False}))
    detached.load_state_dict(shared.state_dict())
    images = torch.rand(2, 3, 32, 32)
    for net in (shared, detached):
        net.train()
        out = net(images)
        out.background_logits.sum().backward()
    assert not any(p.grad is not None and p.grad.abs().sum() > 0 for p in detached.backbone_parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in detached.decoder.parameters())
    assert (
        detached.classifier.weight.grad[:1].abs().sum() > 0
        and detached.classifier.weight.grad[1:].eq(0).all()
    )
    torch.testing.assert_close(detached.classifier.weight.grad, shared.classifier.weight.grad)
    assert any(
        p.grad.abs().sum() > 0 for p in shared.decoder.parameters()
    )  # the default trains the trunk too
    shared.eval(), detached.eval()
    with torch.no_grad():
        a, b = shared(images), detached(images)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.background_logits, b.background_logits)
