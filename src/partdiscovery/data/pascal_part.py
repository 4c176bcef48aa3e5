"""PASCAL-Part (Chen et al. 2014) object instances of one class, in the original layouts.

::

    PATH/VOC2010/JPEGImages/<voc id>.jpg
    PATH/VOC2010/ImageSets/Main/<class>_train.txt | <class>_val.txt     lines "<voc id> 1|0|-1"
    PATH/Annotations_Part/<voc id>.mat                                  PASCAL-Part annotations

Why: the paper's PASCAL-Part numbers (Choudhury et al. 2021, Tab. 5) are per class, on crops around
single object instances, as produced by the reference implementation (``unsup-parts``,
``datasets/pascal_parts.py``). This module reproduces that sample list and those crops:

* **samples**: every instance of the class in the images of ``<class>_train.txt`` (split ``train``) or
  ``<class>_val.txt`` (split ``test``) whose mask bounding box covers more than 10 % (train) / 20 %
  (test) of the image, with the reference's area formula ``(xmax - xmin) * (ymax - ymin) / (H * W)``
  (inclusive pixel indices). Images marked ``1`` or ``0`` (difficult only) are read; ``-1`` images
  contain no instance of the class (the reference reads them all, which gives the same list). Images
  without a ``.mat`` file are skipped (as in the reference) and counted in ``missing_annotations``.
  ids are ``<voc id>_<index of the object in the .mat file>``.
* **part labels**: part names are collapsed with :func:`collapse_part_name` (``wheel_1`` -> ``wheel``,
  ``door_3`` -> ``door``; left/right/front/back parts such as ``lear``/``rear`` stay distinct, as in the
  reference) and numbered 1..N in the sorted per-class list :data:`PART_NAMES` (0 = background). Where
  parts overlap, the part listed first in the file wins (the reference paints them in reverse order).
* **foreground**: ``"parts"`` (default) = pixels with a part label, which is the foreground mask the
  reference trains and evaluates with (``seg != 0``); ``"object"`` = the instance mask of the
  annotation (also covers object pixels no part annotation covers).
* **crop**: each sample *is* the square crop around the instance box padded by 5 % (CMR convention;
  outside the image: black, background), resized to ``size`` x ``size`` (default 256, bilinear image,
  nearest labels) exactly like the reference's evaluation images, so pooled pixel scores weigh every
  instance equally. Training samples are cut with a wider margin (15 %) so the 5 % jitter of
  :meth:`PascalPartDataset.train_box` has real context; ``RawSample.bbox`` is the 5 %-padded box in
  sample coordinates. ``size=None`` keeps the original resolution.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from partdiscovery.data.base import ObjectBox, PartDataset, RawSample, raise_problems, safe_join
from partdiscovery.data.boxes import PAD_FRACTION, jitter_padded_box, pad_box, square_around
from partdiscovery.data.image_io import read_image
from partdiscovery.data.registry import register_dataset
from partdiscovery.errors import DatasetError

PAPER_CLASSES = ("sheep", "horse", "cow", "motorbike", "aeroplane", "bus", "car", "bicycle", "dog", "cat")
"""The ten PASCAL-Part classes of the paper's table."""

_VEHICLE = (
    "backside",
    "bliplate",
    "door",
    "fliplate",
    "frontside",
    "headlight",
    "leftmirror",
    "leftside",
    "rightmirror",
    "rightside",
    "roofside",
    "wheel",
    "window",
)
_BOVID = (
    "head",
    "lblleg",
    "lbuleg",
    "lear",
    "leye",
    "lflleg",
    "lfuleg",
    "lhorn",
    "muzzle",
    "neck",
    "rblleg",
    "rbuleg",
    "rear",
    "reye",
    "rflleg",
    "rfuleg",
    "rhorn",
    "tail",
    "torso",
)
PART_NAMES: dict[str, tuple[str, ...]] = {
    "aeroplane": ("body", "engine", "lwing", "rwing", "stern", "tail", "wheel"),
    "bicycle": ("bwheel", "chainwheel", "fwheel", "handlebar", "headlight", "saddle"),
    "bird": (
        "beak",
        "head",
        "leye",
        "lfoot",
        "lleg",
        "lwing",
        "neck",
        "reye",
        "rfoot",
        "rleg",
        "rwing",
        "tail",
        "torso",
    ),
    "bottle": ("body", "cap"),
    "bus": _VEHICLE,
    "car": _VEHICLE,
    "cat": (
        "head",
        "lbleg",
        "lbpa",
        "lear",
        "leye",
        "lfleg",
        "lfpa",
        "neck",
        "nose",
        "rbleg",
        "rbpa",
        "rear",
        "reye",
        "rfleg",
        "rfpa",
        "tail",
        "torso",
    ),
    "cow": _BOVID,
    "dog": (
        "head",
        "lbleg",
        "lbpa",
        "lear",
        "leye",
        "lfleg",
        "lfpa",
        "muzzle",
        "neck",
        "nose",
        "rbleg",
        "rbpa",
        "rear",
        "reye",
        "rfleg",
        "rfpa",
        "tail",
        "torso",
    ),
    "horse": (
        "head",
        "lbho",
        "lblleg",
        "lbuleg",
        "lear",
        "leye",
        "lfho",
        "lflleg",
        "lfuleg",
        "muzzle",
        "neck",
        "rbho",
        "rblleg",
        "rbuleg",
        "rear",
        "reye",
        "rfho",
        "rflleg",
        "rfuleg",
        "tail",
        "torso",
    ),
    "motorbike": ("bwheel", "fwheel", "handlebar", "headlight", "saddle"),
    "person": (
        "hair",
        "head",
        "lear",
        "lebrow",
        "leye",
        "lfoot",
        "lhand",
        "llarm",
        "llleg",
        "luarm",
        "luleg",
        "mouth",
        "neck",
        "nose",
        "rear",
        "rebrow",
        "reye",
        "rfoot",
        "rhand",
        "rlarm",
        "rlleg",
        "ruarm",
        "ruleg",
        "torso",
    ),
    "pottedplant": ("plant", "pot"),
    "sheep": _BOVID,
    "train": (
        "cbackside",
        "cfrontside",
        "cleftside",
        "coach",
        "crightside",
        "croofside",
        "hbackside",
        "head",
        "headlight",
        "hfrontside",
        "hleftside",
        "hrightside",
        "hroofside",
    ),
    "tvmonitor": ("screen",),
}
"""Collapsed part names per class, sorted; label id = 1 + index (the reference's ``dict_part``)."""

MIN_AREA = {"train": 0.10, "test": 0.20}
"""An instance is kept when its box covers more than this fraction of the image."""
TRAIN_MARGIN = 0.15
"""Training samples are cut around the box padded by this fraction (room for the 5 % jitter)."""
SAMPLE_SIZE = 256


def collapse_part_name(name: str) -> str:
    """``wheel_1`` -> ``wheel``: keep the name before the first ``_`` (as the reference does)."""
    return name.split("_")[0]


def _text(value) -> str:
    while isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        value = value.flat[0]
    return str(value)


def read_part_annotation(path: Path) -> list[dict]:
    """The objects of a PASCAL-Part ``.mat`` file: ``[{"class", "mask", "parts": [(name, mask), ...]}]``."""
    import scipy.io

    if not path.is_file():
        raise DatasetError(f"{path}: PASCAL-Part annotation is missing")
    try:
        anno = scipy.io.loadmat(str(path))["anno"]
        objects = anno[0, 0]["objects"]
        out = []
        for i in range(objects.shape[1] if objects.size else 0):
            obj = objects[0, i]
            parts = obj["parts"]
            part_list = [
                (_text(parts[0, j]["part_name"]), np.asarray(parts[0, j]["mask"]) > 0)
                for j in range(parts.shape[1] if parts.size else 0)
            ]
            mask = np.asarray(obj["mask"]) > 0
            out.append({"class": _text(obj["class"]), "mask": mask, "parts": part_list})
    except DatasetError:
        raise
    except Exception as e:  # scipy raises many types for corrupt or foreign files
        raise DatasetError(
            f"{path}: not a readable PASCAL-Part annotation ({type(e).__name__}: {e})"
        ) from None
    return out


def reference_area_fraction(mask: np.ndarray) -> float:
    """``(xmax - xmin) * (ymax - ymin) / (H * W)`` of the mask box, inclusive indices (``pct_area``)."""
    ys, xs = np.nonzero(mask)
    return float((xs.max() - xs.min()) * (ys.max() - ys.min())) / float(mask.shape[0] * mask.shape[1] + 1e-7)


def _crop(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``array[y0:y1, x0:x1]`` with zeros outside the array."""
    x0, y0, x1, y1 = box
    h, w = array.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0) + array.shape[2:], dtype=array.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = array[sy0:sy1, sx0:sx1]
    return out


class PascalPartDataset(PartDataset):
    """Instances of one PASCAL-Part class (Chen et al. 2014), one cropped sample per instance.

    Args:
        root: folder holding ``VOC2010/`` and ``Annotations_Part/``.
        object_class: a class of :data:`PART_NAMES` (the paper uses :data:`PAPER_CLASSES`).
        split: ``train`` (``<class>_train.txt``, boxes > 10 %) or ``test`` / ``val``
            (``<class>_val.txt``, boxes > 20 %).
        foreground: ``parts`` (reference) or ``object`` (instance mask); see the module doc.
        size: side of the square samples (``None``: original resolution of the crop).
        validate: check that every kept instance's JPEG exists (all .mat files are read anyway).
    """

    def __init__(
        self,
        root: str | Path,
        object_class: str,
        split: str = "train",
        foreground: str = "parts",
        size: int | None = SAMPLE_SIZE,
        validate: bool = True,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.object_class = object_class
        if object_class not in PART_NAMES:
            raise DatasetError(
                f"unknown PASCAL-Part class {object_class!r}; choose one of {', '.join(PART_NAMES)}"
            )
        if split not in ("train", "test", "val"):
            raise DatasetError(f"{self.root}: unknown PASCAL-Part split {split!r}; choose train or test")
        if foreground not in ("parts", "object"):
            raise DatasetError(f"foreground must be 'parts' or 'object', got {foreground!r}")
        self.foreground = foreground
        self.size = size
        self.names = PART_NAMES[object_class]
        self.part_names = {i + 1: n for i, n in enumerate(self.names)}
        self._label_of = {n: i + 1 for i, n in enumerate(self.names)}
        self.image_dir = self.root / "VOC2010" / "JPEGImages"
        self.annotation_dir = self.root / "Annotations_Part"
        for folder in (self.image_dir, self.annotation_dir):
            if not folder.is_dir():
                raise DatasetError(
                    f"{self.root}: missing {folder.relative_to(self.root)}/ (expected "
                    "VOC2010/ from the VOC2010 trainval download and Annotations_Part/ "
                    "from the PASCAL-Part download)"
                )
        is_train = split == "train"
        list_name = f"{object_class}_{'train' if is_train else 'val'}.txt"
        list_file = self.root / "VOC2010" / "ImageSets" / "Main" / list_name
        self.min_area = MIN_AREA["train" if is_train else "test"]
        voc_ids = self._read_list(list_file)

        self.ids: list[str] = []
        self._samples: list[tuple[str, int, tuple[float, float, float, float]]] = []
        self.missing_annotations: list[str] = []
        problems = self._collect_instances(voc_ids)
        if validate:
            for voc_id, _, _ in self._samples:
                path = safe_join(self.image_dir, voc_id + ".jpg", "image id")
                if not path.is_file():
                    problems.append(f"{path}: image is missing")
        raise_problems(self.root, f"{object_class} {split}", sorted(set(problems)))
        if self.missing_annotations:
            warnings.warn(
                f"{self.annotation_dir}: {len(self.missing_annotations)} image(s) of "
                f"{list_file.name} have no PASCAL-Part annotation and were skipped "
                f"(first: {self.missing_annotations[0]})",
                stacklevel=2,
            )
        if not self.ids:
            raise DatasetError(
                f"{self.root}: no {object_class} instance in split {split!r} covers more than "
                f"{self.min_area:.0%} of its image"
            )

    def _collect_instances(self, voc_ids: list[str]) -> list[str]:
        """Fill ``ids`` / ``_samples`` with the kept instances of the class in ``voc_ids`` and
        ``missing_annotations`` with the images without a ``.mat`` file; return the problems found."""
        problems: list[str] = []
        object_class = self.object_class
        for voc_id in voc_ids:
            mat = safe_join(self.annotation_dir, voc_id + ".mat", "image id")
            if not mat.is_file():
                self.missing_annotations.append(voc_id)
                continue
            for index, obj in enumerate(read_part_annotation(mat)):
                if obj["class"] != object_class or not obj["mask"].any():
                    continue
                unknown = sorted({collapse_part_name(p) for p, _ in obj["parts"]} - set(self.names))
                if unknown:
                    problems.append(
                        f"{mat}: object {index} ({object_class}) has part(s) "
                        f"{', '.join(unknown)} not in the {object_class} part list"
                    )
                    continue
                if reference_area_fraction(obj["mask"]) <= self.min_area:
                    continue
                ys, xs = np.nonzero(obj["mask"])
                box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
                self.ids.append(f"{voc_id}_{index}")
                self._samples.append((voc_id, index, box))
        return problems

    @staticmethod
    def _read_list(path: Path) -> list[str]:
        if not path.is_file():
            raise DatasetError(f"{path}: image list is missing (VOC2010 ImageSets/Main)")
        ids = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"{path}: cannot read image list ({e})") from None
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("1", "0", "-1"):
                raise DatasetError(f"{path}:{number}: expected '<image id> 1|0|-1', got {line.strip()!r}")
            if fields[1] != "-1":
                ids.append(fields[0])
        return ids

    def describe(self) -> str:
        return (
            f"PascalPartDataset({self.root}, class={self.object_class!r}, split={self.split!r}, "
            f"{len(self)} instances)"
        )

    def sample_box(self, index: int) -> tuple[int, int, int, int]:
        """The square crop of sample ``index`` in the original image (pixels, x1/y1 exclusive)."""
        box = self._samples[index][2]
        margin = TRAIN_MARGIN if self.split == "train" else PAD_FRACTION
        return square_around(pad_box(box, margin))

    def load(self, index: int) -> RawSample:
        voc_id, obj_index, box = self._samples[index]
        mat = safe_join(self.annotation_dir, voc_id + ".mat", "image id")
        obj = read_part_annotation(mat)[obj_index]
        image = read_image(safe_join(self.image_dir, voc_id + ".jpg", "image id"))
        if obj["mask"].shape[::-1] != image.size:
            raise DatasetError(
                f"{mat}: object mask is {obj['mask'].shape[1]}x{obj['mask'].shape[0]} but "
                f"the image is {image.width}x{image.height}"
            )
        labels = np.zeros(obj["mask"].shape, dtype=np.uint8)
        for name, mask in reversed(obj["parts"]):
            labels[mask] = self._label_of[collapse_part_name(name)]
        fg = labels > 0 if self.foreground == "parts" else obj["mask"]

        crop = self.sample_box(index)
        x0, y0, x1, y1 = crop
        image_arr = _crop(np.asarray(image), crop)
        labels, fg = _crop(labels, crop), _crop(fg, crop)
        scale = 1.0
        if self.size is not None:
            side = x1 - x0
            scale = self.size / side
            size = (self.size, self.size)
            image_out = Image.fromarray(image_arr).resize(size, Image.BILINEAR)
            labels = np.asarray(Image.fromarray(labels).resize(size, Image.NEAREST))
            fg = np.asarray(Image.fromarray(fg.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 0
        else:
            image_out = Image.fromarray(image_arr)

        def to_sample(b):
            return tuple((v - o) * scale for v, o in zip(b, (x0, y0, x0, y0), strict=True))

        return RawSample(
            id=self.ids[index],
            image=image_out,
            fg_mask=np.ascontiguousarray(fg, dtype=bool),
            part_labels=labels.astype(np.int64),
            bbox=to_sample(pad_box(box)),
            object_box=to_sample(box),
            extra={
                "crop_box": crop,
                "voc_id": voc_id,
                "object_index": obj_index,
                "class": self.object_class,
            },
        )

    def train_box(
        self, width: int, height: int, bbox: ObjectBox | None, rng: np.random.Generator
    ) -> tuple[int, int, int, int]:
        """The reference's training crop: the padded box, 5 % jitter, made square."""
        if bbox is None:
            bbox = (0.0, 0.0, float(width), float(height))
        return jitter_padded_box(bbox, rng)


@register_dataset("pascal-part", PascalPartDataset)
def _open_pascal_part(args: str, split: str, **kwargs) -> PartDataset:
    """``pascal-part:CLASS:PATH``."""
    object_class, sep, path = args.partition(":")
    if not sep or not path:
        raise DatasetError(
            f"pascal-part:{args}: expected pascal-part:CLASS:PATH, e.g. pascal-part:cat:/data/VOCdevkit_2010"
        )
    kwargs.pop("require_parts", None)  # always has part labels
    return PascalPartDataset(path, object_class, split, **kwargs)
