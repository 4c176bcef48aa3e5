"""CUB-200-2011 birds (Wah et al. 2011, Caltech-UCSD Birds-200-2011) in its original layout.

::

    CUB_200_2011/images.txt                  <image id> <relative path>         (1-based ids)
    CUB_200_2011/train_test_split.txt        <image id> <1 = train, 0 = test>
    CUB_200_2011/bounding_boxes.txt          <image id> <x> <y> <width> <height>
    CUB_200_2011/image_class_labels.txt      <image id> <class id 1..200>
    CUB_200_2011/parts/part_locs.txt         <image id> <part id 1..15> <x> <y> <visible>
    CUB_200_2011/images/<relative path>.jpg
    segmentations/<relative path>.png        separate download (soft masks, 0..255), either inside
                                             CUB_200_2011/ or beside it

Why this module exists: the paper's CUB numbers (Choudhury et al. 2021, Tab. 1-3) are computed on this
layout with the keypoints of ``part_locs.txt`` as ground truth, so converting CUB to the part folder
format would lose the keypoints and the bounding boxes that the protocol crops to.

Conventions (documented choices):

* **ids** are the image ids of ``images.txt`` as strings (``"1"`` ... ``"11788"``); ids are unique across
  the splits, so one predictions folder can hold both splits.
* **keypoints** ``float32 [15, 3]`` ``(x, y, visible)`` are the values of ``part_locs.txt`` unchanged,
  read as *0-based pixel coordinates* (column ``x``, row ``y``). This is what the evaluation code of the
  reference implementation (``unsup-parts/evaluation``, after ``interpretability-by-parts``) does: it
  reads ``part_locs.txt`` directly and samples the prediction at ``x / W``; the ``- 1`` shift of the CMR
  loader applies to CMR's own MATLAB-converted annotations, not to the text files. Invisible keypoints
  are ``(0, 0, 0)`` as in the file.
* **foreground**: the segmentations are soft (annotator agreement); foreground = value >= 0.5 * 255.
  ``mask_dir`` replaces them with predicted masks: the reference evaluated the full (with background)
  keypoint scores with test masks predicted by a supervised segmenter (its ``supervisedlabels``
  download, ``<relative image path>.png``, values 0/1), which ``mask_dir`` reads as they are.
* **bbox**: ``RawSample.bbox`` is the annotated box *padded by 5 % of its width/height on every side*
  (the training crop of the reference, CMR's ``padding_frac``), so that the generic
  :class:`~partdiscovery.data.transforms.TrainingSet` crops around it with its own scale/offset jitter.
  The tight annotated box ``(x, y, x + w, y + h)`` is ``RawSample.object_box`` and
  :meth:`CUBDataset.object_box`. :meth:`CUBDataset.train_box` is the reference's exact 5 % jitter, used
  by the TrainingSet when ``data.dataset_crops`` is on.
* ``part_labels`` is ``None``: CUB has keypoints, not part masks (use the ``cub-keypoints`` protocol).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from partdiscovery.data.base import (
    ObjectBox,
    PartDataset,
    RawSample,
    find_mask_file,
    raise_problems,
    read_text_lines,
    safe_join,
)
from partdiscovery.data.boxes import jitter_padded_box, pad_box, square_around
from partdiscovery.data.image_io import read_image, read_predicted_mask, read_soft_mask
from partdiscovery.data.registry import parse_spec_options, register_dataset
from partdiscovery.errors import DatasetError

NUM_KEYPOINTS = 15
KEYPOINT_NAMES = (
    "back",
    "beak",
    "belly",
    "breast",
    "crown",
    "forehead",
    "left eye",
    "left leg",
    "left wing",
    "nape",
    "right eye",
    "right leg",
    "right wing",
    "tail",
    "throat",
)
"""The 15 CUB keypoints in the order of ``parts/parts.txt`` (part id = index + 1)."""
SPEC_OPTIONS = ("classes", "mask_dir")
"""Options of a ``cub:PATH?key=value`` spec."""


# ------------------------------------------------------------------------------------------ boxes
def eval_box_fg(raw: RawSample) -> tuple[int, int, int, int]:
    """Network input box for the *FG* keypoint variant: the square around the annotated bird box.

    Used as ``PartSegmenter.predict_dataset(dataset, box_fn=eval_box_fg)``. Falls back to ``raw.bbox``,
    then to the whole image, for samples without ``object_box``.
    """
    whole = (0.0, 0.0, float(raw.image.width), float(raw.image.height))
    box = raw.object_box or raw.bbox or whole
    return square_around(box)


# ------------------------------------------------------------------------------------------ reading
def _read_rows(path: Path, n_fields: int, what: str, maxsplit: int = -1) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-empty line, with ``n_fields`` fields each."""
    lines = read_text_lines(path, what, "is this the CUB_200_2011/ folder?")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=maxsplit) if maxsplit > 0 else line.split()
        if len(fields) != n_fields:
            raise DatasetError(
                f"{path}:{number}: expected {n_fields} fields, got {len(fields)}: {line.strip()!r}"
            )
        rows.append((number, fields))
    return rows


def _number(path: Path, number: int, text: str, kind=float):
    try:
        value = kind(text)
    except ValueError:
        raise DatasetError(f"{path}:{number}: {text!r} is not a number") from None
    if kind is float and not math.isfinite(value):
        raise DatasetError(f"{path}:{number}: {text!r} is not a finite number")
    return value


# ------------------------------------------------------------------------------------------ dataset
class CUBDataset(PartDataset):
    """CUB-200-2011 in its original layout (Wah et al. 2011).

    Args:
        root: the ``CUB_200_2011/`` folder (the folder holding it is accepted too).
        split: ``train`` (``train_test_split.txt`` = 1), ``test`` (= 0) or ``all``.
        classes: keep only these class ids (1..200), e.g. ``[1]`` for CUB-001 as in SCOPS.
        mask_dir: a folder of predicted masks, ``<image id>.png`` or ``<relative image path>.png`` (the
            layout of the reference's ``supervisedlabels`` download), 0/1 or 0..255, resized to the image
            with nearest neighbour if needed) used instead of the ground-truth segmentations.
        validate: check up front that every annotation is complete and every file exists; every
            problem is reported at once.

    Example:
        >>> ds = CUBDataset("/data/CUB_200_2011", "test", classes=[1])  # doctest: +SKIP
        >>> raw = ds.load(0); raw.keypoints.shape, raw.object_box  # doctest: +SKIP
    """

    keypoint_names = KEYPOINT_NAMES
    default_protocol = "cub-keypoints"
    has_object_boxes = True

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        classes: Iterable[int] | None = None,
        mask_dir: str | Path | None = None,
        validate: bool = True,
    ) -> None:
        root = Path(root)
        if not (root / "images.txt").is_file() and (root / "CUB_200_2011" / "images.txt").is_file():
            root = root / "CUB_200_2011"
        self.root = root
        self.split = split
        if not root.is_dir():
            raise DatasetError(f"{root}: dataset folder does not exist (expected the CUB_200_2011/ folder)")
        if split not in ("train", "test", "all"):
            raise DatasetError(f"{root}: unknown CUB split {split!r}; choose train, test or all")
        self.part_names = {}
        self.mask_dir = Path(mask_dir) if mask_dir else None
        if self.mask_dir is not None and not self.mask_dir.is_dir():
            raise DatasetError(f"{self.mask_dir}: mask folder does not exist")
        self.segmentation_root = self._find_segmentations() if self.mask_dir is None else None

        names = self._read_names()
        is_train = self._read_id_map(root / "train_test_split.txt", "train/test split", int)
        labels = self._read_id_map(root / "image_class_labels.txt", "class label", int)
        boxes = self._read_boxes()
        keypoints = self._read_keypoints()

        problems = []
        for image_id in names:
            tables = (
                ("train/test split", is_train),
                ("class label", labels),
                ("bounding box", boxes),
                ("keypoints", keypoints),
            )
            for what, table in tables:
                if image_id not in table:
                    problems.append(f"image id {image_id}: no {what} entry")
        if problems:
            self._raise(problems, "annotation")

        keep_classes = None if classes is None else {int(c) for c in classes}
        if keep_classes is not None:
            unknown = sorted(keep_classes - set(labels.values()))
            if unknown:
                raise DatasetError(f"{root}: no image of class id(s) {unknown} (class ids are 1..200)")
        self.ids = [
            i
            for i in names
            if (split == "all" or (is_train[i] == 1) == (split == "train"))
            and (keep_classes is None or labels[i] in keep_classes)
        ]
        if not self.ids:
            raise DatasetError(
                f"{root}: split {split!r} has no images"
                + (f" of class(es) {sorted(keep_classes)}" if keep_classes else "")
            )
        self.classes = sorted(keep_classes) if keep_classes is not None else None
        self._names = {i: names[i] for i in self.ids}
        self._labels = {i: labels[i] for i in self.ids}
        self._boxes = {i: boxes[i] for i in self.ids}
        self._keypoints = {i: keypoints[i] for i in self.ids}
        if validate:
            self.validate()

    # -------------------------------------------------------------- annotations
    def _find_segmentations(self) -> Path:
        for candidate in (self.root / "segmentations", self.root.parent / "segmentations"):
            if candidate.is_dir():
                return candidate
        raise DatasetError(
            f"{self.root}: no segmentations/ folder inside it or beside it; download "
            "segmentations.tgz (CUB-200-2011 segmentations) and extract it there, "
            "or pass mask_dir"
        )

    def _read_names(self) -> dict[str, str]:
        path = self.root / "images.txt"
        names: dict[str, str] = {}
        for number, (image_id, rel) in _read_rows(path, 2, "image list", maxsplit=1):
            _number(path, number, image_id, int)
            if image_id in names:
                raise DatasetError(f"{path}:{number}: image id {image_id} is listed twice")
            names[image_id] = rel.strip()
        if not names:
            raise DatasetError(f"{path}: lists no images")
        return names

    @staticmethod
    def _read_id_map(path: Path, what: str, kind) -> dict[str, int]:
        return {fields[0]: _number(path, n, fields[1], kind) for n, fields in _read_rows(path, 2, what)}

    def _read_boxes(self) -> dict[str, tuple[float, float, float, float]]:
        path = self.root / "bounding_boxes.txt"
        boxes = {}
        for number, fields in _read_rows(path, 5, "bounding box"):
            x, y, w, h = (_number(path, number, f) for f in fields[1:])
            if w <= 0 or h <= 0:
                raise DatasetError(f"{path}:{number}: box of image {fields[0]} has width {w} and height {h}")
            boxes[fields[0]] = (x, y, x + w, y + h)
        return boxes

    def _read_keypoints(self) -> dict[str, np.ndarray]:
        path = self.root / "parts" / "part_locs.txt"
        rows: dict[str, np.ndarray] = {}
        seen: dict[str, set] = {}
        for number, fields in _read_rows(path, 5, "keypoint"):
            image_id = fields[0]
            part = _number(path, number, fields[1], int)
            if not 1 <= part <= NUM_KEYPOINTS:
                raise DatasetError(f"{path}:{number}: part id {part} outside 1..{NUM_KEYPOINTS}")
            x, y, visible = (_number(path, number, f) for f in fields[2:])
            if visible not in (0.0, 1.0):
                raise DatasetError(f"{path}:{number}: visibility must be 0 or 1, got {fields[4]!r}")
            kp = rows.setdefault(image_id, np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32))
            kp[part - 1] = (x, y, visible)
            seen.setdefault(image_id, set()).add(part)
        incomplete = [i for i, parts in seen.items() if len(parts) != NUM_KEYPOINTS]
        if incomplete:
            raise DatasetError(
                f"{path}: {len(incomplete)} image(s) do not have all {NUM_KEYPOINTS} "
                f"keypoints (first: image id {incomplete[0]})"
            )
        return rows

    def _raise(self, problems: list[str], kind: str) -> None:
        raise_problems(self.root, self.split, problems, kind)

    # -------------------------------------------------------------- paths
    def image_path(self, image_id: str) -> Path:
        return safe_join(self.root / "images", self._names[image_id], "image path")

    def mask_path(self, image_id: str) -> Path:
        if self.mask_dir is not None:
            return find_mask_file(
                self.mask_dir, (f"{image_id}.png", str(Path(self._names[image_id]).with_suffix(".png")))
            )
        rel = str(Path(self._names[image_id]).with_suffix(".png"))
        return safe_join(self.segmentation_root, rel, "segmentation path")

    def validate(self) -> None:
        """Check that every image and mask exists; raise one :class:`DatasetError` listing every problem."""
        problems = []
        for image_id in self.ids:
            for what, path_fn in (("image", self.image_path), ("mask", self.mask_path)):
                try:
                    path = path_fn(image_id)
                except DatasetError as e:
                    problems.append(str(e))
                    continue
                if not path.is_file():
                    problems.append(f"{path}: {what} of image id {image_id} is missing")
        if problems:
            self._raise(problems, "file")

    # -------------------------------------------------------------- samples
    def object_box(self, index_or_id: int | str) -> ObjectBox:
        """The tight annotated box ``(x0, y0, x1, y1)`` of an image (by index or id), without loading it."""
        image_id = self.ids[index_or_id] if isinstance(index_or_id, int) else str(index_or_id)
        return self._boxes[image_id]

    def class_id(self, index: int) -> int:
        return self._labels[self.ids[index]]

    def load(self, index: int) -> RawSample:
        image_id = self.ids[index]
        image = read_image(self.image_path(image_id))
        path = self.mask_path(image_id)
        if self.mask_dir is not None:
            mask = read_predicted_mask(path, image.size)
        else:
            mask = read_soft_mask(path)
        if mask.shape[::-1] != image.size:
            raise DatasetError(
                f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{image.width}x{image.height}"
            )
        box = self._boxes[image_id]
        return RawSample(
            id=image_id,
            image=image,
            fg_mask=mask,
            part_labels=None,
            keypoints=self._keypoints[image_id].copy(),
            bbox=pad_box(box),
            object_box=box,
            extra={"class_id": self._labels[image_id], "path": self._names[image_id]},
        )

    def train_box(
        self, width: int, height: int, bbox: ObjectBox | None, rng: np.random.Generator
    ) -> tuple[int, int, int, int]:
        """The reference's training crop: the padded box, each side jittered by 5 % of the box size, made
        square. ``bbox`` is ``raw.bbox`` in the (possibly resized) image."""
        if bbox is None:
            bbox = (0.0, 0.0, float(width), float(height))
        return jitter_padded_box(bbox, rng)

    def describe(self) -> str:
        what = f", classes {self.classes}" if self.classes else ""
        return f"CUBDataset({self.root}, split={self.split!r}, {len(self)} images{what})"


@register_dataset("cub", CUBDataset)
def _open_cub(args: str, split: str, **kwargs) -> PartDataset:
    """``cub:PATH`` or ``cub:PATH?classes=1,2,3&mask_dir=DIR``."""
    path, options = parse_spec_options(args, SPEC_OPTIONS)
    if kwargs.pop("require_parts", False):
        raise DatasetError(
            f"{path}: CUB has keypoints, not part masks; score it with the cub-keypoints or "
            "cub-regression protocol"
        )
    return CUBDataset(path, split, **{**options, **kwargs})
