"""The frozen feature extractors φ of the paper and of its DINO variant.

* ``vgg19``: the paper's φ (Choudhury et al., NeurIPS 2021): VGG19 (Simonyan & Zisserman, "Very Deep
  Convolutional Networks for Large-Scale Image Recognition", ICLR 2015) trained on ImageNet, layers
  relu3_2 (weight 0.33) and relu5_4 (weight 1.0).
* ``dino_vits8``: self-supervised ViT-S/8 of DINO (Caron et al., "Emerging Properties in Self-Supervised
  Vision Transformers", ICCV 2021), whose patch features separate object parts without labels; the
  normalised output tokens of the last block (DINO's ``get_intermediate_layers(x, n=1)``) without CLS.

Both download their weights through torch.hub's cache or take a local file (``model.feature_weights``);
offline and uncached they fail with one :class:`WeightsUnavailableError` that says what to do.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from partdiscovery.errors import WeightsUnavailableError
from partdiscovery.models.features import FEATURE_EXTRACTORS, DenseFeatures
from partdiscovery.models.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
from partdiscovery.models.weights import download_state_dict, load_state_dict_file, load_strict

# Indices in torchvision's ``vgg19().features`` (conv/ReLU pairs, max-pools after relu1_2, relu2_2,
# relu3_4, relu4_4): relu3_2 follows conv3_2 at 12, relu5_4 follows conv5_4 at 34; 36 is pool5.
VGG19_RELU3_2 = 13
VGG19_RELU5_4 = 35

DINO_VITS8_URL = "https://dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth"


class VGG19Features(DenseFeatures):
    """VGG19 (ImageNet) relu3_2 (256 ch, stride 4) x 0.33 and relu5_4 (512 ch, stride 16) x 1.0.

    ``features`` is torchvision's ``vgg19().features`` cut after relu5_4 (no pool5, no classifier: the
    classifier alone has 120M parameters that φ never uses), so tensor names match torchvision's file.
    """

    layer_weights = (0.33, 1.0)
    selectable_layers = ("relu3_2", "relu5_4")
    layer_channels = (256, 512)
    channels = 256 + 512
    stride = 4
    taps = (VGG19_RELU3_2, VGG19_RELU5_4)

    def __init__(
        self,
        pretrained: bool = True,
        weights: str | None = None,
        normalize: bool = True,
        layer_weights: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__(normalize)
        self.set_layer_weights(layer_weights)
        from torchvision.models import VGG19_Weights
        from torchvision.models.vgg import cfgs, make_layers

        state, source = None, None
        if weights:
            state, source = load_state_dict_file(weights), str(weights)
        elif pretrained:
            source = VGG19_Weights.IMAGENET1K_V1.url
            state = download_state_dict(
                source,
                "torchvision VGG19 ImageNet weights VGG19_Weights.IMAGENET1K_V1",
                "model.feature_weights",
                check_hash=True,
            )
        self.norm = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.features = make_layers(cfgs["E"], batch_norm=False)[: VGG19_RELU5_4 + 1]
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # the tapped activations must not be overwritten by later layers
            elif isinstance(m, nn.Conv2d):  # torchvision's VGG init, for pretrained=False
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        if state is not None:
            load_strict(self, state, source, "torchvision VGG19 weights")
        self.freeze()

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.norm(images)
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def dino_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a DINO ViT checkpoint to timm's ``VisionTransformer`` names.

    DINO's ``vision_transformer.py`` already uses timm's names (``patch_embed.proj``, ``cls_token``,
    ``pos_embed``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``), so the mapping
    only strips the wrappers of a training checkpoint (``module.`` from DDP, ``backbone.`` from DINO's
    MultiCropWrapper) and drops the projection head (``head.*``), which φ does not use.
    """
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key.startswith("head."):
            continue
        out[key] = value
    return out


class DinoViTS8Features(DenseFeatures):
    """DINO ViT-S/8: 384-channel patch features at stride 8 (any input size that is a multiple of 8;
    timm interpolates the 28x28 position embeddings of 224 px training to the input's grid)."""

    layer_weights = (1.0,)
    selectable_layers = ("last",)
    layer_channels = (384,)
    channels = 384
    stride = 8

    def __init__(
        self,
        pretrained: bool = True,
        weights: str | None = None,
        normalize: bool = True,
        layer_weights: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__(normalize)
        self.set_layer_weights(layer_weights)
        import timm

        state, source = None, None
        if weights:
            state, source = load_state_dict_file(weights), str(weights)
        elif pretrained:  # fetched before building: offline, fail before seconds of random initialisation
            source = DINO_VITS8_URL
            state = download_state_dict(
                DINO_VITS8_URL,
                "DINO ViT-S/8 weights of torch.hub facebookresearch/dino:main dino_vits8",
                "model.feature_weights",
            )
        self.norm = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.vit = timm.create_model(
            "vit_small_patch8_224", pretrained=False, num_classes=0, dynamic_img_size=True
        )
        if state is not None:
            self._load(state, source)
        self.freeze()

    def _load(self, state: dict[str, torch.Tensor], source: str) -> None:
        state = dino_to_timm(state)
        own = self.vit.state_dict()
        extra = [k for k in state if k not in own]
        if extra:
            raise WeightsUnavailableError(
                f"{source}: not DINO ViT-S/8 weights (unexpected tensors {extra[:3]})"
            )
        load_strict(self.vit, state, source, "DINO ViT-S/8 weights")

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        b, _, h, w = images.shape
        tokens = self.vit.forward_features(self.norm(images))[:, self.vit.num_prefix_tokens :]
        gh, gw = h // 8, w // 8
        return [tokens.transpose(1, 2).reshape(b, self.channels, gh, gw)]


FEATURE_EXTRACTORS.register("vgg19")(VGG19Features)
FEATURE_EXTRACTORS.register("dino_vits8")(DinoViTS8Features)
