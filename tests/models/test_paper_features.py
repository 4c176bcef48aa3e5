"""The paper's φ: VGG19 and DINO ViT-S/8 (partdiscovery.models.paper_features), with random weights (no
download: the machines that run the tests may be offline)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from partdiscovery.errors import WeightsUnavailableError
from partdiscovery.models.features import create_feature_extractor
from partdiscovery.models.paper_features import (
    DINO_VITS8_URL,
    VGG19_RELU3_2,
    VGG19_RELU5_4,
    DinoViTS8Features,
    VGG19Features,
    dino_to_timm,
)
from partdiscovery.models.weights import load_state_dict_file, load_strict


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> tuple[str, dict[str, torch.Tensor]]:
    """A torchvision-format VGG19 file with random tensors (classifier shrunk: it is ignored anyway)."""
    from torchvision.models import vgg19

    with torch.device("meta"):
        names = vgg19().state_dict()
    g = torch.Generator().manual_seed(2)
    state = {
        k: torch.randn(v.shape, generator=g) * 0.05 for k, v in names.items() if k.startswith("features.")
    }
    state["classifier.0.weight"] = torch.zeros(1)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return str(path), state


@pytest.fixture(scope="module")
def vgg(vgg_file) -> VGG19Features:
    return create_feature_extractor("vgg19", weights=vgg_file[0])


@pytest.fixture(scope="module")
def dino_file(tmp_path_factory) -> tuple[str, dict[str, torch.Tensor]]:
    state = _dino_format_state()
    path = tmp_path_factory.mktemp("dino") / "dino_deitsmall8_pretrain.pth"
    torch.save(state, path)
    return str(path), state


@pytest.fixture(scope="module")
def dino(dino_file) -> DinoViTS8Features:
    return create_feature_extractor("dino_vits8", weights=dino_file[0])


def test_vgg19_layer_indices_match_torchvision():
    from torchvision.models import vgg19

    with torch.device("meta"):
        features = vgg19().features
    names, block, conv = {}, 1, 0
    for i, layer in enumerate(features):
        if isinstance(layer, nn.MaxPool2d):
            block, conv = block + 1, 0
        elif isinstance(layer, nn.Conv2d):
            conv += 1
        elif isinstance(layer, nn.ReLU):
            names[f"relu{block}_{conv}"] = i
    assert names["relu3_2"] == VGG19_RELU3_2 == 13
    assert names["relu5_4"] == VGG19_RELU5_4 == 35
    assert len(features) == 37  # 36 is pool5, cut off by VGG19Features


def test_vgg19_shapes_and_truncation(vgg):
    from torchvision.models import vgg19

    with torch.device("meta"):
        reference = vgg19().features
    assert len(vgg.features) == VGG19_RELU5_4 + 1
    assert [type(m) for m in vgg.features] == [type(m) for m in reference[: VGG19_RELU5_4 + 1]]
    assert {k: v.shape for k, v in vgg.state_dict().items()} == {
        f"features.{k}": v.shape for k, v in reference[: VGG19_RELU5_4 + 1].state_dict().items()
    }
    x = torch.rand(2, 3, 64, 64)
    relu3_2, relu5_4 = vgg.layers(x)
    assert relu3_2.shape == (2, 256, 16, 16)
    assert relu5_4.shape == (2, 512, 4, 4)
    out = vgg(x)
    assert vgg.channels == 768 and vgg.stride == 4 and vgg.layer_weights == (0.33, 1.0)
    assert out.shape == (2, 768, 16, 16)
    assert not any(p.requires_grad for p in vgg.parameters())


def test_vgg19_local_weights_round_trip(vgg, vgg_file):
    path, state = vgg_file
    loaded = vgg.state_dict()
    assert len(loaded) == len(state) - 1  # all but the classifier
    for name, tensor in loaded.items():
        assert torch.equal(tensor, state[name]), name  # exact copy (assert_close is slow on 20M values)
    with pytest.raises(WeightsUnavailableError, match="not torchvision VGG19 weights.*features.34.weight"):
        load_strict(
            vgg,
            {k: v for k, v in state.items() if k != "features.34.weight"},
            path,
            "torchvision VGG19 weights",
        )


def test_dino_shapes(dino):
    x = torch.rand(2, 3, 64, 80)
    out = dino(x)
    assert dino.channels == 384 and dino.stride == 8 and dino.layer_weights == (1.0,)
    assert out.shape == (2, 384, 8, 10)
    assert not any(p.requires_grad for p in dino.parameters())


def _dino_format_state(depth: int = 12, dim: int = 384, grid: int = 28) -> dict[str, torch.Tensor]:
    """Random tensors under the names of DINO's own ``vision_transformer.py`` (written out, not taken
    from timm, so that the test checks the mapping instead of restating it)."""
    g = torch.Generator().manual_seed(3)
    shapes = {
        "cls_token": (1, 1, dim),
        "pos_embed": (1, grid * grid + 1, dim),
        "patch_embed.proj.weight": (dim, 3, 8, 8),
        "patch_embed.proj.bias": (dim,),
        "norm.weight": (dim,),
        "norm.bias": (dim,),
    }
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({
            b + "norm1.weight": (dim,), b + "norm1.bias": (dim,),
            b + "attn.qkv.weight": (3 * dim, dim), b + "attn.qkv.bias": (3 * dim,),
            b + "attn.proj.weight": (dim, dim), b + "attn.proj.bias": (dim,),
            b + "norm2.weight": (dim,), b + "norm2.bias": (dim,),
            b + "mlp.fc1.weight": (4 * dim, dim), b + "mlp.fc1.bias": (4 * dim,),
            b + "mlp.fc2.weight": (dim, 4 * dim), b + "mlp.fc2.bias": (dim,),
        })  # fmt: skip
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


def test_dino_key_mapping_round_trip(tmp_path, dino, dino_file):
    path, state = dino_file
    # The DINO names cover exactly timm's ViT-S/8 (no tensor missing, none left over) ...
    assert set(dino_to_timm(state)) == set(dino.vit.state_dict())
    # ... and the file loaded through create_feature_extractor(weights=...) landed where it should.
    for name, tensor in dino.vit.state_dict().items():
        assert torch.equal(tensor, state[name]), name  # exact copy (assert_close is slow on 20M values)

    # Round trip: the timm model saved as a DINO training checkpoint (teacher = MultiCropWrapper of
    # backbone and DINOHead) loads back into a wiped model and gives the same features.
    x = torch.rand(1, 3, 64, 64)
    before = dino(x)
    ckpt = {f"backbone.{k}": v.clone() for k, v in dino.vit.state_dict().items()}
    ckpt["head.last_layer.weight_g"] = torch.ones(1, 1)
    torch.save({"teacher": ckpt, "epoch": 800}, tmp_path / "checkpoint.pth")
    with torch.no_grad():
        for p in dino.vit.parameters():
            p.zero_()
    dino._load(load_state_dict_file(tmp_path / "checkpoint.pth"), "checkpoint.pth")
    torch.testing.assert_close(dino(x), before)

    incomplete = {k: v for k, v in state.items() if k != "blocks.11.mlp.fc2.bias"}
    with pytest.raises(WeightsUnavailableError, match="not DINO ViT-S/8 weights.*blocks.11.mlp.fc2.bias"):
        dino._load(incomplete, "dino.pth")
    with pytest.raises(WeightsUnavailableError, match="unexpected tensors.*fc_norm"):
        dino._load({**state, "fc_norm.weight": torch.ones(384)}, "dino.pth")


@pytest.mark.parametrize(
    "name, url",
    [("vgg19", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"), ("dino_vits8", DINO_VITS8_URL)],
)
def test_offline_feature_extractors_raise_one_clear_error(offline, name, url):
    with pytest.raises(WeightsUnavailableError) as info:
        create_feature_extractor(name)
    msg = str(info.value)
    assert url.rsplit("/", 1)[-1] in msg and url in msg
    assert "model.feature_weights=" in msg
