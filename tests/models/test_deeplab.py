"""DeepLab-v2 ResNet-50, the paper's f (partdiscovery.models.deeplab), with random weights (no download:
the machines that run the tests may be offline)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

from partdiscovery.config import ModelConfig
from partdiscovery.errors import WeightsUnavailableError
from partdiscovery.models.backbones import create_backbone
from partdiscovery.models.deeplab import ASPPClassifier, DeepLabV2ResNet50
from partdiscovery.models.part_net import PartSegmentationNet
from partdiscovery.models.weights import load_strict


@pytest.fixture(scope="module")
def part_net() -> PartSegmentationNet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "uses random weights"
        return PartSegmentationNet(ModelConfig(backbone="deeplab_resnet50", pretrained=False, num_parts=4))


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


def test_offline_deeplab_raises_one_clear_error(offline):
    from torchvision.models import ResNet50_Weights

    with pytest.raises(WeightsUnavailableError) as info:
        create_backbone("deeplab_resnet50")
    msg = str(info.value)
    assert ResNet50_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1] in msg
    assert ResNet50_Weights.IMAGENET1K_V1.url in msg
    assert "model.backbone_weights=" in msg
