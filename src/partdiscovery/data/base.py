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

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from partdiscovery.errors import DatasetError


@dataclass
class RawSample:
    """One image at its original resolution, before any resizing."""

    id: str
    image: Image.Image
    fg_mask: np.ndarray
    """``bool [H, W]``"""
    part_labels: np.ndarray | None = None
    """``int64 [H, W]``, 0 = background"""
    keypoints: np.ndarray | None = None
    """``float32 [P, 3]`` (x, y, visible)"""
    bbox: tuple[float, float, float, float] | None = None
    """Object box (x0, y0, x1, y1) in pixels, when the dataset has one; training crops centre on it."""
    extra: dict = field(default_factory=dict)


class PartDataset:
    """Base class: subclasses set ``root``, ``split``, ``ids`` and implement :meth:`load`."""

    root: Path
    split: str
    ids: list[str]
    part_names: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> RawSample:
        raise NotImplementedError

    @property
    def num_part_classes(self) -> int:
        return len(self.part_names)

    def describe(self) -> str:
        return f"{type(self).__name__}({self.root}, split={self.split!r}, {len(self)} images)"


MAX_REPORTED = 20


def raise_problems(root: Path, split: str, problems: list[str], kind: str = "") -> None:
    """Raise one :class:`DatasetError` for a list of validation problems (nothing if the list is empty).

    One problem is one line; several are listed (up to :data:`MAX_REPORTED`) under a summary line, so
    a user fixes their data in one pass.
    """
    if not problems:
        return
    if len(problems) == 1:
        raise DatasetError(problems[0])
    more = f"\n... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
    label = f"{kind} problem(s)" if kind else "problem(s)"
    raise DatasetError(
        f"{root}: {len(problems)} {label} in split {split!r}:\n  "
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
