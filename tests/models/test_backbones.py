"""Backbones of f (partdiscovery.models.backbones): the registry, declared feature shapes, local weights."""

from __future__ import annotations

import pytest
import torch

from partdiscovery.errors import WeightsUnavailableError
from partdiscovery.models import create_backbone, list_backbones

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")


@pytest.mark.parametrize("name", [n for n in list_backbones() if n != "deeplab_resnet50"])
def test_backbone_features_match_declared_channels(name):
    backbone = create_backbone(name, pretrained=False).eval()
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == backbone.channels
    assert [64 // f.shape[-1] for f in feats] == backbone.reductions
    assert backbone.reductions == sorted(backbone.reductions)  # finest first


def test_random_weights_warn():
    with pytest.warns(UserWarning, match="random weights"):
        create_backbone("resnet18", pretrained=False)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(KeyError, match="efficientnet_lite0"):
        create_backbone("resnet9000", pretrained=False)


def test_local_weights_for_a_timm_backbone(tmp_path):
    import timm

    torch.manual_seed(1)
    full = timm.create_model("resnet18", pretrained=False)
    torch.save({"state_dict": full.state_dict()}, tmp_path / "r18.pth")  # wrapped, as many checkpoints are
    backbone = create_backbone("resnet18", weights=str(tmp_path / "r18.pth"))
    assert torch.equal(backbone.model.conv1.weight, full.conv1.weight)
    assert torch.equal(backbone.model.layer4[1].bn2.bias, full.layer4[1].bn2.bias)
    torch.save({"conv1.weight": full.conv1.weight}, tmp_path / "bad.pth")
    with pytest.raises(WeightsUnavailableError, match="bad.pth"):
        create_backbone("resnet18", weights=str(tmp_path / "bad.pth"))
