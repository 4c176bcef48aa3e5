"""The paper's networks: DeepLab-v2 ResNet-50 (f), VGG19 and DINO ViT-S/8 (φ), with random weights
(no download: the machines that run the tests may be offline)."""

from __future__ import annotations

import urllib.error
import urllib.request
import warnings

import pytest
import torch
import torch.nn as nn

import partdiscovery.models.deeplab
import partdiscovery.models.paper_features  # noqa: F401  (registers vgg19 and dino_vits8)
from partdiscovery.config import ModelConfig
from partdiscovery.errors import WeightsUnavailableError
from partdiscovery.models._weights import load_state_dict_file
from partdiscovery.models.backbones import create_backbone
from partdiscovery.models.deeplab import ASPPClassifier, DeepLabV2ResNet50, load_strict
from partdiscovery.models.features import create_feature_extractor
from partdiscovery.models.paper_features import (
    DINO_VITS8_URL,
    VGG19_RELU3_2,
    VGG19_RELU5_4,
    DinoViTS8Features,
    VGG19Features,
    dino_to_timm,
)
from partdiscovery.models.part_net import PartSegmentationNet

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def part_net() -> PartSegmentationNet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "uses random weights"
        return PartSegmentationNet(ModelConfig(backbone="deeplab_resnet50", pretrained=False, num_parts=4))


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


# --- DeepLab-v2 ResNet-50 -------------------------------------------------------------------------


def test_part_net_with_deeplab_gives_stride_8_logits_upsampled_to_the_input(part_net):
    deeplab = part_net.backbone
    assert isinstance(deeplab, DeepLabV2ResNet50) and deeplab.head_included
    seen = []
    deeplab.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    with torch.no_grad():
        out = part_net(torch.rand(1, 3, 64, 64))
    assert seen == [(1, 4, 8, 8)]  # backbone logits at H/8
    assert out.logits.shape == (1, 4, 64, 64)


def test_part_net_head_parameters_are_the_aspp_classifier(part_net):
    head = [id(p) for p in part_net.head_parameters()]
    assert head == [id(p) for p in part_net.backbone.classifier.parameters()]
    assert part_net.decoder is None and part_net.classifier is None
    assert not set(head) & {id(p) for p in part_net.backbone_parameters()}
    assert len(head) + len(part_net.backbone_parameters()) == len(list(part_net.parameters()))


def test_deeplab_set_num_classes_recreates_the_classifier():
    with torch.device("meta"):  # structure only: no time spent on random initialisation
        net = DeepLabV2ResNet50(pretrained=False)
        x = torch.rand(1, 3, 64, 64)
    with pytest.raises(RuntimeError, match="set_num_classes"):
        net(x)
    assert net.head_parameters() == []
    net.set_num_classes(3)
    first = net.classifier
    net.set_num_classes(7)
    assert net.classifier is not first
    assert net.classifier.convs[0].weight.device.type == "meta"  # follows the body's device
    assert all(conv.out_channels == 7 for conv in net.classifier.convs)
    assert [id(p) for p in net.head_parameters()] == [id(p) for p in net.classifier.parameters()]


def test_deeplab_batchnorm_is_frozen_and_the_rest_trains(part_net):
    from torchvision.ops.misc import FrozenBatchNorm2d

    deeplab = part_net.backbone
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in deeplab.modules())
    frozen = [m for m in deeplab.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert len(frozen) == 53  # every BatchNorm of ResNet-50
    assert all(len(list(m.parameters())) == 0 for m in frozen)
    params = dict(deeplab.named_parameters())
    assert params and all(p.requires_grad for p in params.values())
    # Besides the classifier, only (bias-free) convolution weights train.
    convs = {n: p for n, p in params.items() if not n.startswith("classifier.")}
    assert all(type(deeplab.get_submodule(n.rsplit(".", 1)[0])) is nn.Conv2d for n in convs)
    assert all(n.endswith(".weight") for n in convs)
    # Output stride 8: layer3 and layer4 dilate instead of striding.
    body = deeplab.body
    assert body.layer2[0].conv2.stride == (2, 2)
    assert body.layer3[0].conv2.stride == body.layer4[0].conv2.stride == (1, 1)
    assert body.layer3[1].conv2.dilation == (2, 2)
    assert body.layer4[1].conv2.dilation == body.layer4[2].conv2.dilation == (4, 4)


def test_aspp_sums_four_dilated_branches():
    torch.manual_seed(0)
    aspp = ASPPClassifier(64, 3)
    assert [(c.kernel_size, c.dilation, c.padding) for c in aspp.convs] == [
        ((3, 3), (d, d), (d, d)) for d in (6, 12, 18, 24)
    ]
    for conv in aspp.convs:
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.1)
        assert torch.all(conv.bias == 0)
        nn.init.normal_(conv.bias)  # make the biases visible in the sum
    x = torch.randn(2, 64, 30, 30)
    with torch.no_grad():
        expected = sum(conv(x) for conv in aspp.convs)
        torch.testing.assert_close(aspp(x), expected)
    assert expected.shape == (2, 3, 30, 30)


def test_deeplab_local_weights_round_trip(tmp_path, part_net):
    from torchvision.models import resnet50

    with torch.device("meta"):
        names = resnet50().state_dict()  # a torchvision ImageNet-format file: fc, num_batches_tracked
    # One distinct value per tensor: any mix-up of names shows.
    state = {
        k: torch.full(v.shape, 0.5 + i / 1000)
        for i, (k, v) in enumerate(names.items())
        if v.is_floating_point()
    }
    assert "fc.weight" in state
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    net = create_backbone("deeplab_resnet50", weights=str(path))
    loaded = net.body.state_dict()
    assert len(loaded) == len(state) - 2  # everything but fc
    for name, tensor in loaded.items():
        assert torch.equal(tensor, state[name]), name  # exact copy (assert_close is slow on 20M values)

    incomplete = {k: v for k, v in state.items() if not k.startswith("layer4.2.")}
    with pytest.raises(WeightsUnavailableError, match="not torchvision ResNet-50 weights.*layer4.2"):
        load_strict(part_net.backbone.body, incomplete, str(path), "torchvision ResNet-50 weights")


# --- VGG19 ----------------------------------------------------------------------------------------


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


# --- DINO ViT-S/8 ---------------------------------------------------------------------------------


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


# --- offline ----------------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def _weights_file(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_offline_deeplab_raises_one_clear_error(offline):
    from torchvision.models import ResNet50_Weights

    with pytest.raises(WeightsUnavailableError) as info:
        create_backbone("deeplab_resnet50")
    msg = str(info.value)
    assert _weights_file(ResNet50_Weights.IMAGENET1K_V1.url) in msg
    assert ResNet50_Weights.IMAGENET1K_V1.url in msg
    assert "model.backbone_weights=" in msg


@pytest.mark.parametrize(
    "name, url",
    [("vgg19", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"), ("dino_vits8", DINO_VITS8_URL)],
)
def test_offline_feature_extractors_raise_one_clear_error(offline, name, url):
    with pytest.raises(WeightsUnavailableError) as info:
        create_feature_extractor(name)
    msg = str(info.value)
    assert _weights_file(url) in msg and url in msg
    assert "model.feature_weights=" in msg
