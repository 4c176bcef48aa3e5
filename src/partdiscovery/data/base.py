"""The dataset contract shared by every dataset (part folder, CUB, DeepFashion, PASCAL-Part, ...).

A dataset exposes ``ids`` and ``load(i) -> RawSample``. Everything else (training crops, views,
evaluation resizing) is built on that contract by :mod:`partdiscovery.data.transforms`, so a new
dataset is one small class.

Sample keys (the tensors the model and losses see, produced by the transforms):

- ``image``: ``float32 [3, S, S]`` RGB in [0, 1]
- ``fg_mask``: ``float32 [1, S, S]`` in {0, 1}
- ``part_labels`` (evaluation only): ``int64 [H, W]``, 0 = background, 1..N part ids
- ``keypoints`` (evaluation only, CUB): ``float32 [P, 3]`` (x, y, visible) in pixels
- ``id``: ``str``, the dataset's own image id
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from partdiscovery.errors import DatasetError

ObjectBox = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` in (fractional) pixels, x1/y1 exclusive; the integer crop boxes of
:mod:`partdiscovery.data.transforms` are made from it."""


@dataclass
class RawSample:
    """One image at its original resolution, before any resizing.

    Every field is part of the contract: readers use the attribute, never ``extra``. A dataset that has
    no value for an optional field leaves its default.
    """

    id: str
    image: Image.Image
    fg_mask: np.ndarray
    """``bool [H, W]``"""
    part_labels: np.ndarray | None = None
    """``int64 [H, W]``, 0 = background"""
    keypoints: np.ndarray | None = None
    """``float32 [P, 3]`` (x, y, visible)"""
    bbox: ObjectBox | None = None
    """Object box (x0, y0, x1, y1) in pixels, when the dataset has one; training crops centre on it."""
    object_box: ObjectBox | None = None
    """The tight annotated object box in this sample's pixels (CUB, PASCAL-Part), ``None`` without one.
    :func:`partdiscovery.data.cub.eval_box_fg` crops the network input around it (the keypoint protocol's
    FG variant); ``bbox`` is the padded box training crops use."""
    gt_fg_mask: np.ndarray | None = None
    """``bool [H, W]`` the ground-truth foreground, only where ``fg_mask`` is not it (DeepFashion with predicted
    masks, ``mask_dir``): the FG metrics count its pixels, as the reference's, while predictions are cut with
    ``fg_mask``. ``None``: ``fg_mask`` is the ground truth."""
    mask_given: bool = True
    """``False`` when ``fg_mask`` is a stand-in (the whole image) because no mask was given (raw photos
    of :class:`~partdiscovery.data.part_folder.ImageFolderDataset`): the segmenter then does not cut
    predictions with it."""
    extra: dict = field(default_factory=dict)
    """Dataset-specific details for people and reports (``path``, ``class_id``, ``crop_box``, ...);
    no library code reads them."""


class PartDataset:
    """Base class: subclasses set ``root``, ``split``, ``ids`` and implement :meth:`load`.

    The rest of the contract has defaults that fit a plain folder of images; a dataset overrides what it
    knows better (CUB: keypoints, object boxes, its own training crop and protocol).
    """

    root: Path | None = None
    """The folder the dataset reads from (``None`` for one held in memory); commands refuse to write
    their outputs inside it."""
    split: str
    ids: list[str]
    part_names: dict[int, str] = {}
    masks_dir: Path | None = None
    """The folder of the user's own foreground masks when the dataset reads them from one (part folders);
    ``train`` records it as the mask source of the run."""
    keypoint_names: ClassVar[tuple[str, ...]] = ()
    """Names of ``RawSample.keypoints``' rows, empty when the dataset has no keypoints."""
    default_protocol: ClassVar[str] = "pixel"
    """The evaluation protocol ``evaluate`` uses when none is given: ``pixel`` needs part labels,
    ``cub-keypoints`` keypoints. The dataset registry reports it per kind (``DatasetKind``)."""
    has_object_boxes: ClassVar[bool] = False
    """True when :meth:`object_box` returns the annotated box of every image without loading it; the
    ``cub-regression`` protocol then normalises keypoint errors by those boxes."""

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> RawSample:
        raise NotImplementedError

    @property
    def num_part_classes(self) -> int:
        return len(self.part_names)

    def object_box(self, index_or_id: int | str) -> ObjectBox | None:
        """The tight annotated box ``(x0, y0, x1, y1)`` of an image (by index or id) in its original
        pixels, without loading it; ``None`` for datasets without boxes (see :attr:`has_object_boxes`)."""
        return None

    def train_box(
        self, width: int, height: int, bbox: ObjectBox | None, rng: np.random.Generator
    ) -> tuple[int, int, int, int] | None:
        """The training crop of a ``width x height`` (cached, possibly shrunk) image, or ``None`` for the
        generic random square crop of :class:`~partdiscovery.data.transforms.TrainingSet`.

        Why a hook: the paper trains each dataset on the reference's own crops (CUB and PASCAL-Part: the
        padded box with 5 % jitter; DeepFashion: a RandomResizedCrop), used when ``data.dataset_crops``
        is on. ``bbox`` is ``RawSample.bbox`` scaled to that image; ``rng`` is the item's generator.
        """
        return None

    def describe(self) -> str:
        return f"{type(self).__name__}({self.root}, split={self.split!r}, {len(self)} images)"


MAX_REPORTED = 20


def raise_problems(root: Path, split: str | None, problems: list[str], kind: str = "") -> None:
    """Raise one :class:`DatasetError` for a list of validation problems (nothing if the list is empty).

    One problem is one line; several are listed (up to :data:`MAX_REPORTED`) under a summary line, so
    a user fixes their data in one pass. ``split`` None: a plain folder of images, which has no splits.
    """
    if not problems:
        return
    if len(problems) == 1:
        raise DatasetError(problems[0])
    more = f"\n... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
    label = f"{kind} problem(s)" if kind else "problem(s)"
    raise DatasetError(
        f"{root}: {len(problems)} {label}{'' if split is None else f' in split {split!r}'}:\n  "
        + "\n  ".join(problems[:MAX_REPORTED])
        + more
    )


def read_text_lines(path: Path, what: str, hint: str = "") -> list[str]:
    """Lines of a dataset's text file (split list, annotation table), or a DatasetError naming it."""
    if not path.is_file():
        raise DatasetError(f"{path}: {what} file is missing{f' ({hint})' if hint else ''}")
    try:
        # utf-8-sig: Windows editors start files with a byte-order mark, which would otherwise become
        # part of the first id (reported as a missing image whose name looks right).
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read {what} ({e})") from None


def safe_join(root: Path, relative: str, what: str) -> Path:
    """Join ``relative`` to ``root`` and refuse paths that escape it (``..``, absolute paths, links out)."""
    if not relative or "\x00" in relative:
        raise DatasetError(f"{root}: invalid {what} {relative!r}")
    candidate = (root / relative).resolve()
    base = root.resolve()
    if candidate != base and base not in candidate.parents:
        raise DatasetError(
            f"{root}: {what} {relative!r} points outside the dataset folder; refusing to read it"
        )
    return candidate


def find_mask_file(mask_dir: Path, names: Sequence[str]) -> Path:
    """The first of ``mask_dir/<name>`` that exists (every candidate through :func:`safe_join`),
    else the first candidate (so that the error names it)."""
    candidates = [safe_join(mask_dir, name, "mask name") for name in names]
    return next((c for c in candidates if c.is_file()), candidates[0])
