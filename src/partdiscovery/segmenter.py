"""The Python API for using a trained model: :class:`PartSegmenter`.

Example:
    >>> from partdiscovery import PartSegmenter
    >>> seg = PartSegmenter.load("runs/ccp")  # a run folder, checkpoint or exported file  # doctest: +SKIP
    >>> parts = seg.predict(pil_image)  # H x W int array, 0 = background, 1..K parts  # doctest: +SKIP
    >>> probs = seg.predict_proba(batch)  # B x (K+1) x H x W, channel 0 = background  # doctest: +SKIP

The CLI's ``predict`` and ``evaluate`` are thin layers over this class.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms.v2.functional import resize

from partdiscovery.config import Config
from partdiscovery.data.base import PartDataset
from partdiscovery.data.prediction import Prediction
from partdiscovery.data.transforms import EvalSet, collate_eval, crop_resize, letterbox_box, uncrop
from partdiscovery.errors import InvalidArgumentError
from partdiscovery.models import PartSegmentationNet
from partdiscovery.models.part_net import part_probabilities
from partdiscovery.models.refine import part_refiner, refine_probs
from partdiscovery.runs.exported import OnnxRuntimeNet
from partdiscovery.runs.model_file import build_net, read_model_file
from partdiscovery.utils.progress import progress as progress_bar

DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are
    checked against this machine, so a typo or a missing GPU fails with one line before any work
    (:class:`InvalidArgumentError`) instead of deep inside PyTorch."""
    if isinstance(device, torch.device):
        text = str(device)
    elif isinstance(device, str):
        text = device.strip().lower()
    else:
        raise InvalidArgumentError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    choices = "auto, cpu, cuda, cuda:N or mps"
    try:
        resolved = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise InvalidArgumentError(f"unknown device {device!r}; choose {choices}") from None
    if resolved.type not in DEVICE_TYPES:
        raise InvalidArgumentError(f"unsupported device {device!r}; choose {choices}")
    if resolved.type == "cpu" and resolved.index not in (None, 0):
        raise InvalidArgumentError(f"unknown device {device!r}; choose {choices}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgumentError(
                f"device {device!r}: CUDA is not available on this machine (no GPU, or a PyTorch build "
                "without CUDA); use --device cpu or auto"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InvalidArgumentError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"numbered 0..{torch.cuda.device_count() - 1}"
            )
    if resolved.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise InvalidArgumentError(f"device {device!r}: Apple MPS is not available on this machine")
    return resolved


class PartSegmenter:
    """A trained part segmentation network f with its config, ready for inference.

    Args:
        net: the network; cfg: its config; device: ``auto``, ``cpu``, ``cuda``, ``mps``, ...
        amp: use bfloat16/float16 autocast on CUDA.
        refine: how the part maps are snapped to the image's edges, a name of
            :func:`~partdiscovery.models.refine.list_part_refiners`; None: the config's ``predict.refine``.
        max_side: photos larger than this are segmented at this size, labels enlarged (0: never); None: the
            config's ``predict.max_side``.
    """

    def __init__(
        self,
        net: PartSegmentationNet | OnnxRuntimeNet,
        cfg: Config,
        device: str | torch.device = "auto",
        amp: bool = False,
        refine: str | None = None,
        max_side: int | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        if refine is not None:
            part_refiner(refine)  # an unknown name fails here, listing the names
            cfg = dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, refine=refine))
        if max_side is not None:
            check_whole_number(max_side, "max_side", 0, "0 (the photo's own size) or a side in pixels")
            cfg = dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, max_side=int(max_side)))
        self.cfg = cfg
        self.amp = amp and self.device.type == "cuda"

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_state(cls, cfg: Config, state: dict[str, torch.Tensor], source: str, **kwargs) -> PartSegmenter:
        """Build f from ``cfg`` (no pretrained download: the weights come from ``state``, f's own keys or
        a method's ``net.*`` keys); weights that do not fit ``cfg`` are a ``CheckpointError``."""
        return cls(build_net(cfg, state, source), cfg, **kwargs)

    @classmethod
    def load(
        cls,
        source: str | Path,
        device: str | torch.device = "auto",
        amp: bool = False,
        refine: str | None = None,
        max_side: int | None = None,
    ) -> PartSegmenter:
        """Load from a run folder (newest good checkpoint), a checkpoint ``.pt``, an exported ``.safetensors``,
        or an exported ``.onnx`` (run by ONNX Runtime on the CPU: the fastest CPU path); see
        :func:`~partdiscovery.runs.model_file.read_model_file`. ``refine`` and ``max_side`` override the model's
        ``predict.refine`` and ``predict.max_side``."""
        model = read_model_file(source)
        if model.runtime is not None:
            asked = resolve_device(device)  # a GPU asked for must exist, as for any other model file
            if device != "auto" and asked.type != "cpu":
                warnings.warn(
                    f"{source}: an ONNX export runs on the CPU (ONNX Runtime's CPU provider), not on {asked}; "
                    "load the run or its .safetensors export to use the GPU",
                    stacklevel=2,
                )
            return cls(model.runtime, model.cfg, device="cpu", refine=refine, max_side=max_side)
        return cls.from_state(
            model.cfg,
            model.state,
            str(model.source),
            device=device,
            amp=amp,
            refine=refine,
            max_side=max_side,
        )

    @property
    def num_parts(self) -> int:
        return self.cfg.model.num_parts

    @property
    def input_size(self) -> int:
        return self.cfg.data.input_size

    @property
    def has_learned_background(self) -> bool:
        return self.cfg.model.learned_background

    # ---------------------------------------------------------------- inference
    @torch.inference_mode()
    def _forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.autocast(self.device.type, enabled=self.amp):
            out = self.net(inputs.to(self.device))
        bg = out.background_logits.float() if out.background_logits is not None else None
        return out.logits.float(), bg

    def predict_proba(
        self,
        images: torch.Tensor,
        fg_mask: torch.Tensor | np.ndarray | None = None,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Part probabilities of a batch.

        Args:
            images: ``[B, 3, H, W]`` (or one ``[3, H, W]``) RGB tensor, ``uint8`` or float in [0, 1] (any size;
                letterboxed to the input size); :func:`batch_tensor` says what else is refused.
            fg_mask: optional foreground masks of the images' size, ``[B, 1, H, W]`` (or ``[B, H, W]``, or ``[H, W]``
                for one image), a tensor or an array: bool,
                integers (object where > 0: 0/1 and 0/255 alike) or floats in [0, 1] (a soft mask: the background
                channel is ``1 - fg_mask``); they take precedence over a learned background (:func:`batch_mask`).
            size: ``(height, width)`` of the returned maps (default: the images'); f sees the full images
                either way, the maps, the masks and the refiner's guide are at this size.

        Returns:
            ``[B, K+1, height, width]`` on the CPU; channel 0 = background. The part channels are refined to the
            image's edges by the config's ``predict.refine`` (:mod:`partdiscovery.models.refine`).
        """
        images = batch_tensor(images)
        if size is not None:
            if not (isinstance(size, (tuple, list)) and len(size) == 2):
                raise InvalidArgumentError(f"size: expected (height, width), got {size!r}")
            for side in size:
                check_whole_number(side, "size", 1, "(height, width) in pixels, each >= 1")
            size = (int(size[0]), int(size[1]))
        if fg_mask is not None:
            fg_mask = batch_mask(fg_mask, images.shape[0], *images.shape[2:])
        return self._proba(images, fg_mask, size)

    def _proba(
        self, images: torch.Tensor, fg_mask: torch.Tensor | None, size: tuple[int, int] | None
    ) -> torch.Tensor:
        """:meth:`predict_proba` of ``float [B, 3, H, W]`` images in [0, 1], already checked."""
        _, _, h, w = images.shape
        box = letterbox_box(w, h)
        logits, bg = self._forward(crop_resize(images, box, self.input_size))
        mask = fg_mask[:, 0].float().cpu().numpy() if fg_mask is not None else None
        return self._part_maps(logits, bg, box, (h, w), size or (h, w), images, mask)

    def _part_maps(
        self,
        logits: torch.Tensor,
        bg: torch.Tensor | None,
        box: tuple[float, float, float, float],
        image_size: tuple[int, int],
        size: tuple[int, int],
        guide: torch.Tensor,
        mask: np.ndarray | None,
    ) -> torch.Tensor:
        """f's outputs on ``box`` of images of ``image_size`` -> refined probabilities ``[B, K+1, *size]`` (CPU).

        ``logits`` ``[B, K, S, S]``, ``bg`` ``[B, 1, S, S]`` or None; ``guide`` the images ``[B, 3, H, W]``,
        ``uint8`` or float in [0, 1] (shrunk to ``size`` as they come: a float copy of a 48-megapixel photo is
        0.6 GiB); ``mask`` the foreground ``[B, H, W]`` (bool, or float in [0, 1]) or None (then the learned
        background, if any)."""
        (h, w), (ph, pw) = image_size, size
        box = scale_box(box, pw / w, ph / h)
        logits = uncrop(logits, box, ph, pw)
        bg = uncrop(bg, box, ph, pw) if bg is not None else None
        if (ph, pw) != (h, w):
            # torch's antialiased uint8 kernel fails on a 1 x 1 output (an internal assert): shrink to 2 x 2 first
            if (ph, pw) == (1, 1):
                small = resize(guide, [2, 2], antialias=True)
                guide = small.float() / 255.0 if small.dtype == torch.uint8 else small
            guide = resize(guide, [ph, pw], antialias=True)
        guide = guide.to(logits) / 255.0 if guide.dtype == torch.uint8 else guide.to(logits)
        fg = torch.from_numpy(resize_nearest(mask, ph, pw))[:, None].to(logits) if mask is not None else None
        return refine_probs(guide, part_probabilities(logits, bg, fg), self.cfg.predict).cpu()

    def predict(
        self,
        image: Image.Image | np.ndarray | torch.Tensor | str | Path,
        mask: np.ndarray | Image.Image | torch.Tensor | str | Path | None = None,
    ) -> np.ndarray:
        """Part labels of one image: ``int64 [H, W]``, 0 = background, 1..K parts (above ``predict.max_side``
        computed at that size and enlarged, as :meth:`predict_dataset` does).

        ``image``: PIL image, image file path, ``uint8 [H, W, 3]`` array (``[H, W]`` or ``[H, W, 1]`` grey,
        ``[H, W, 4]`` with alpha) or float array in [0, 1], or ``[3, H, W]`` tensor (``uint8``, or float in [0, 1]);
        :func:`image_tensor`.
        ``mask``: optional foreground mask of the image's size: bool, 0/1 or 0/255 integers, float in [0, 1]
        (object where >= 0.5), a PIL image or a mask file; :func:`mask_array`. Anything else is an
        :class:`InvalidArgumentError`.
        """
        image = image_tensor(image)
        h, w = image.shape[-2:]
        full_mask = mask_array(mask, h, w) if mask is not None else None
        fg = torch.from_numpy(full_mask)[None, None].float() if full_mask is not None else None
        size = prediction_size(h, w, self.cfg.predict.max_side)
        probs = self._proba(image[None], fg, size)[0]  # image_tensor checked it
        if size != (h, w):
            return full_size_labels(probs, h, w, full_mask)
        return self.labels_from_probs(probs)

    @staticmethod
    def labels_from_probs(probs: torch.Tensor) -> np.ndarray:
        """``[K+1, H, W]`` -> labels: 0 where background > 0.5, otherwise 1 + argmax of the parts."""
        parts = probs[1:].argmax(dim=0) + 1
        parts[probs[0] > 0.5] = 0
        return parts.numpy().astype(np.int64)

    def predict_dataset(
        self,
        dataset: PartDataset,
        batch_size: int = 8,
        use_masks: bool = True,
        keep_probs: bool = False,
        progress: bool = True,
        box_fn=None,
    ) -> Iterator[Prediction]:
        """Predict every image of ``dataset`` at its original resolution (a generator). Above
        ``predict.max_side`` the part maps are computed at that size and the labels enlarged, except with
        ``keep_probs``: the keypoint protocols read the maps at the image's keypoints, so they stay full size.

        ``use_masks``: mask the parts with the dataset's foreground masks (the paper's protocol).
        ``box_fn``: the crop of each raw sample fed to the network (default: letterbox the whole image).
        """
        check_whole_number(batch_size, "batch_size", 1, "images per batch, >= 1")
        loader = DataLoader(
            EvalSet(dataset, self.input_size, box_fn),
            batch_size=int(batch_size),
            collate_fn=collate_eval,
            num_workers=0,
        )
        for batch in progress_bar(loader, "predict", progress, unit="batch"):
            logits, bg = self._forward(batch["image"])
            for i, image_id in enumerate(batch["id"]):
                h, w = batch["size"][i]
                size = (h, w) if keep_probs else prediction_size(h, w, self.cfg.predict.max_side)
                fg = batch["fg_mask_full"][i]
                mask = fg if use_masks and batch["mask_given"][i] else None
                probs = self._part_maps(
                    logits[i : i + 1],
                    bg[i : i + 1] if bg is not None else None,
                    batch["box"][i],
                    (h, w),
                    size,
                    batch["image_full"][i][None],
                    mask[None] if mask is not None else None,
                )[0]
                if size == (h, w):
                    parts = self.labels_from_probs(probs)
                else:
                    parts = full_size_labels(probs, h, w, mask)
                yield Prediction(
                    id=image_id,
                    parts=parts,
                    probs=probs.numpy() if keep_probs else None,
                    fg_mask=fg,
                    gt_fg_mask=batch["gt_fg_mask_full"][i],
                    part_labels=batch["part_labels"][i],
                    keypoints=batch["keypoints"][i],
                    image=batch["image_full"][i].permute(1, 2, 0).numpy(),
                )


def prediction_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(height, width)`` scaled so the longer side is at most ``max_side`` (0: unchanged)."""
    if not max_side or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def scale_box(
    box: tuple[float, float, float, float], sx: float, sy: float
) -> tuple[float, float, float, float]:
    """A box ``(x0, y0, x1, y1)`` in an image resized by ``sx`` horizontally and ``sy`` vertically."""
    x0, y0, x1, y1 = box
    return (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


def resize_nearest(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[..., h, w]`` -> ``[..., height, width]`` by nearest neighbour, larger or smaller (each output pixel takes
    the input pixel its centre falls in, as ``nearest-exact``), by indexing: no float copy of a full-size map."""
    rows = ((np.arange(height) + 0.5) * labels.shape[-2] / height).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * labels.shape[-1] / width).astype(np.intp)
    return labels[..., rows[:, None], cols[None, :]]


def full_size_labels(probs: torch.Tensor, height: int, width: int, mask: np.ndarray | None) -> np.ndarray:
    """Labels ``int64 [height, width]`` from part probabilities ``[K+1, h, w]`` computed at a smaller size: the part
    of largest probability enlarged (nearest neighbour), the background from the full-size ``mask`` ``bool [H, W]``
    if given (so a given mask's outline is kept to the pixel), else from the enlarged background channel."""
    parts = (probs[1:].argmax(dim=0) + 1).numpy().astype(np.uint8)
    if mask is None:
        parts[probs[0].numpy() > 0.5] = 0
        return resize_nearest(parts, height, width).astype(np.int64)
    return np.where(mask, resize_nearest(parts, height, width), 0).astype(np.int64)


def _to_unit(tensor: torch.Tensor, what: str) -> torch.Tensor:
    """``uint8`` -> float / 255; float checked to lie in [0, 1] (an image in 0..255 as floats would pass silently
    with every pixel far outside f's training range)."""
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point():
        raise InvalidArgumentError(f"{what}: expected uint8 or float values in [0, 1], got {tensor.dtype}")
    tensor = tensor.float()
    if tensor.numel() and not (torch.isfinite(tensor).all() and tensor.min() >= 0 and tensor.max() <= 1):
        raise InvalidArgumentError(
            f"{what}: float values must lie in [0, 1] (got {tensor.min().item():g}..{tensor.max().item():g}); "
            "divide 0..255 images by 255, or pass uint8"
        )
    return tensor


def check_whole_number(value, name: str, minimum: int, meaning: str) -> None:
    """An :class:`InvalidArgumentError` unless ``value`` is an integer (not a bool; numpy integers count) of at least
    ``minimum``: a float side or batch size would be rounded somewhere far from the call, a string fail in a
    comparison."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(f"{name}={value!r}: must be a whole number, {meaning}")


def batch_tensor(images: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` float in [0, 1] from a batch (or one ``[3, H, W]`` image) of RGB, ``uint8`` or float in
    [0, 1]; anything else is an :class:`InvalidArgumentError` saying what was expected."""
    if not isinstance(images, torch.Tensor):
        raise InvalidArgumentError(
            f"images: expected a torch tensor [B, 3, H, W], got {type(images).__name__}; "
            "PartSegmenter.predict takes PIL images, arrays and file paths"
        )
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[1] != 3 or min(images.shape[2:]) < 1 or images.shape[0] < 1:
        raise InvalidArgumentError(
            f"images: expected RGB [B, 3, H, W] with B, H, W >= 1, got {list(images.shape)}"
        )
    return _to_unit(images, "images")


def batch_mask(fg_mask: torch.Tensor | np.ndarray, batch: int, height: int, width: int) -> torch.Tensor:
    """``float [batch, 1, height, width]`` in [0, 1] from foreground masks of a batch's images: ``[B, 1, H, W]`` or
    ``[B, H, W]`` (``[H, W]`` for one image), a tensor or an array, bool, integers (object where > 0) or floats in
    [0, 1] (kept soft); another size, NaN or floats
    outside [0, 1] are an :class:`InvalidArgumentError` (a 0/255 mask read as floats would give a background of
    -254, a resized one would put the parts in the wrong place)."""
    if isinstance(fg_mask, np.ndarray):  # binarise integers here: torch lacks > for uint16 / uint32
        if fg_mask.dtype.kind in "iu":
            fg_mask = fg_mask > 0
        elif fg_mask.dtype.kind not in "bf":
            raise InvalidArgumentError(
                f"fg_mask: expected bool, integer or float values, got {fg_mask.dtype}"
            )
        fg_mask = torch.from_numpy(np.ascontiguousarray(fg_mask))  # a flipped view has negative strides
    if not isinstance(fg_mask, torch.Tensor):
        raise InvalidArgumentError(f"fg_mask: expected a tensor [B, 1, H, W], got {type(fg_mask).__name__}")
    tensor = fg_mask.detach()
    if tensor.dtype in (torch.uint16, torch.uint32, torch.uint64):  # torch lacks > for these
        tensor = tensor.to(torch.int64)
    if tensor.dim() == 2 and batch == 1:  # one image's [H, W] mask, as predict takes it
        tensor = tensor[None]
    if tensor.dim() == 3:
        tensor = tensor[:, None]
    if tuple(tensor.shape) != (batch, 1, height, width):
        raise InvalidArgumentError(
            f"fg_mask: expected [{batch}, 1, {height}, {width}] (the images' batch and size), got "
            f"{list(tensor.shape)}"
        )
    if tensor.dtype == torch.bool:
        return tensor.float()
    if tensor.is_floating_point():
        if tensor.numel() and not (torch.isfinite(tensor).all() and tensor.min() >= 0 and tensor.max() <= 1):
            raise InvalidArgumentError(
                "fg_mask: float masks must lie in [0, 1]; pass 0/255 masks as uint8 or bool"
            )
        return tensor.float()
    if tensor.is_complex():
        raise InvalidArgumentError(f"fg_mask: expected bool, integer or float values, got {tensor.dtype}")
    return (tensor > 0).float()


def image_tensor(image: Image.Image | np.ndarray | torch.Tensor | str | Path) -> torch.Tensor:
    """One image as ``float [3, H, W]`` in [0, 1]: a PIL image (converted as files are read: 16-bit rescaled, alpha
    composited on black; one straight from ``Image.open`` turned by its EXIF orientation as its path would be, one
    made or changed in memory taken as it is), a file path (read as the datasets read images), an ``[H, W, 3]``
    array (``[H, W]`` or ``[H, W, 1]`` grey; ``[H, W, 4]`` composited on black, as files with alpha are), ``uint8``
    or float in [0, 1], or a ``[3, H, W]`` tensor; anything else is an :class:`InvalidArgumentError`."""
    from partdiscovery.data.image_io import oriented, read_image, to_rgb

    if isinstance(image, (str, Path)):
        image = read_image(image)
    if isinstance(image, Image.Image):
        # PIL sets `format` on an image read from a file and on no image derived from it: an untouched
        # Image.open(f) gives what f gives; a rotated or converted one may have kept the EXIF tag it already obeys.
        image = np.array(to_rgb(oriented(image) if image.format else image))
    if isinstance(image, np.ndarray):
        grey = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)  # [H, W] or [H, W, 1]
        array = image.reshape(image.shape[:2])[..., None].repeat(3, axis=2) if grey else image
        if array.ndim != 3 or array.shape[2] not in (3, 4):
            raise InvalidArgumentError(
                f"image: expected an array [H, W, 3] (or [H, W], [H, W, 4]), got shape {list(image.shape)}"
            )
        # torch takes neither read-only memory (np.asarray of a PIL image) nor negative strides (a flipped view)
        array = np.ascontiguousarray(array) if array.flags.writeable else array.copy()
        tensor = _to_unit(torch.from_numpy(array).permute(2, 0, 1), "image")
        if tensor.shape[0] == 4:
            tensor = tensor[:3] * tensor[3:]
        image = tensor
    elif isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise InvalidArgumentError(f"image: expected a tensor [3, H, W], got {list(image.shape)}")
        image = _to_unit(image, "image")
    else:
        raise InvalidArgumentError(
            f"image: expected a PIL image, a file path, an array [H, W, 3] or a tensor [3, H, W], got "
            f"{type(image).__name__}"
        )
    if min(image.shape[1:]) < 1:
        raise InvalidArgumentError(f"image: is empty ({image.shape[1]}x{image.shape[2]} pixels)")
    return image


def mask_array(
    mask: np.ndarray | Image.Image | torch.Tensor | str | Path, height: int, width: int
) -> np.ndarray:
    """``bool [height, width]`` from a foreground mask of the image's size: bool, integers (object where > 0: 0/1 and
    0/255 masks alike), float in [0, 1] (object where >= 0.5), a PIL image (its first channel) or a mask file (read
    as the datasets read masks); a mask of another size, or with NaN, is an :class:`InvalidArgumentError` (a resized
    mask would put the parts in the wrong place)."""
    if isinstance(mask, torch.Tensor):  # numpy has no bfloat16 and takes no tensor that requires grad
        mask = mask.detach().cpu()
        array = (mask.float() if mask.is_floating_point() else mask).numpy()
    elif isinstance(mask, (str, Path)):  # a mask file, read as the datasets read masks (binary)
        from partdiscovery.data.image_io import read_mask

        array = read_mask(mask)
    else:
        array = np.asarray(mask)
    if array.shape == (1, height, width):  # as torchvision keeps masks
        array = array[0]
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):  # [H, W, 1], or an RGB(A) mask's first channel
        array = array[..., 0]
    if array.shape != (height, width):
        raise InvalidArgumentError(
            f"mask: size {list(array.shape)} differs from the image's [{height}, {width}]; give a mask of the image's "
            "size ([H, W])"
        )
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise InvalidArgumentError("mask: float masks must lie in [0, 1] (object where >= 0.5)")
        return array >= 0.5
    if np.issubdtype(array.dtype, np.integer):
        return array > 0
    raise InvalidArgumentError(f"mask: expected bool, integer or float values, got {array.dtype}")
