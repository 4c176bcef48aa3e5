"""DeepLab-v2 ResNet-50: the segmentation network f of the paper (Choudhury et al., NeurIPS 2021).

The paper, like SCOPS before it, uses DeepLab-v2 (Chen et al., "DeepLab: Semantic Image Segmentation with
Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2017) on a ResNet-50: the
last two stages use dilated instead of strided convolutions (output stride 8), BatchNorm is frozen at its
ImageNet statistics (batches of a few images give useless statistics), and the classifier is ASPP-v2:
four parallel 3x3 convolutions with dilations 6/12/18/24 whose outputs are summed.

Differences from the Caffe original, kept on purpose so that torchvision's ImageNet weights load as they
are: torchvision's ResNet-50 strides in the 3x3 convolution of a bottleneck (ResNet v1.5) rather than in
the first 1x1 one, its max-pool floors instead of ceiling the output size, and the first block of a
dilated stage keeps the previous stage's dilation (layer4: 2 in block 0, 4 in blocks 1-2; Caffe: 4 in all).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from partdiscovery.models.backbones import BACKBONES, Backbone
from partdiscovery.models.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
from partdiscovery.models.weights import download_state_dict, load_state_dict_file, load_strict

ASPP_DILATIONS = (6, 12, 18, 24)


class ASPPClassifier(nn.Module):
    """DeepLab-v2's ASPP classifier: parallel 3x3 convolutions at several dilations, outputs SUMMED.

    (DeepLab-v3's ASPP concatenates branches with BatchNorm and a 1x1 fusion instead; v2 sums the per-branch
    class scores.) Weights are drawn from N(0, 0.01²) and biases start at 0, as in DeepLab-v2's prototxt.
    """

    def __init__(
        self, in_channels: int, num_classes: int, dilations: tuple[int, ...] = ASPP_DILATIONS
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=d, dilation=d, bias=True) for d in dilations
        )
        for conv in self.convs:
            nn.init.normal_(conv.weight, mean=0.0, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


class DeepLabV2ResNet50(Backbone):
    """DeepLab-v2 ResNet-50: images ``[B, 3, H, W]`` in [0, 1] -> class logits ``[B, n, H/8, W/8]``.

    It ends in its own classifier (``head_included = True``): :class:`PartSegmentationNet` calls
    :meth:`set_num_classes`, trains :meth:`head_parameters` at the head learning rate and upsamples the
    logits to the input size.
    """

    head_included = True
    output_stride = 8
    feature_channels = 2048

    def __init__(
        self, pretrained: bool = True, weights: str | None = None, num_classes: int | None = None
    ) -> None:
        super().__init__()
        from torchvision.models import ResNet50_Weights, resnet50
        from torchvision.models._utils import IntermediateLayerGetter
        from torchvision.ops.misc import FrozenBatchNorm2d

        # Fetch the weights first: offline, the error comes before seconds of random initialisation.
        state, source = None, None
        if weights:
            state, source = load_state_dict_file(weights), str(weights)
        elif pretrained:
            source = ResNet50_Weights.IMAGENET1K_V1.url
            state = download_state_dict(
                source,
                "torchvision ResNet-50 ImageNet weights ResNet50_Weights.IMAGENET1K_V1",
                "model.backbone_weights",
                check_hash=True,
            )
        net = resnet50(
            weights=None, replace_stride_with_dilation=[False, True, True], norm_layer=FrozenBatchNorm2d
        )
        # Same tensor names as torchvision's resnet50 (conv1, bn1, layer1..layer4); fc and avgpool dropped.
        self.body = IntermediateLayerGetter(net, return_layers={"layer4": "out"})
        if state is not None:
            load_strict(self.body, state, source, "torchvision ResNet-50 weights")
        self.norm = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.classifier: ASPPClassifier | None = None
        if num_classes is not None:
            self.set_num_classes(num_classes)

    def set_num_classes(self, n: int) -> None:
        """(Re)create the ASPP classifier with ``n`` output channels, on the body's device and dtype."""
        if n < 1:
            raise ValueError(f"number of classes must be positive, got {n}")
        ref = self.body.conv1.weight
        self.classifier = ASPPClassifier(self.feature_channels, n).to(device=ref.device, dtype=ref.dtype)

    def head_parameters(self) -> list[nn.Parameter]:
        """The classifier's parameters (trained at 10x the backbone's learning rate in the paper)."""
        return [] if self.classifier is None else list(self.classifier.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise RuntimeError("DeepLabV2ResNet50 has no classifier yet: call set_num_classes(n) first")
        return self.classifier(self.body(self.norm(x))["out"])


@BACKBONES.register("deeplab_resnet50")
def deeplab_resnet50(pretrained: bool = True, weights: str | None = None) -> DeepLabV2ResNet50:
    """DeepLab-v2 ResNet-50 (output stride 8, frozen BatchNorm, summed ASPP classifier); ImageNet weights
    from torchvision's ``ResNet50_Weights.IMAGENET1K_V1`` or a local torchvision resnet50 state dict."""
    return DeepLabV2ResNet50(pretrained=pretrained, weights=weights)
