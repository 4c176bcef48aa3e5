"""The *part folder* format: the generic dataset format of partdiscovery.

::

    DATASET/images/<id>.jpg|.png|...   RGB (other modes are converted)
    DATASET/masks/<id>.png             foreground mask, 0 or 255, same size as the image
    DATASET/parts/<id>.png             optional: part labels, 0 = background, 1..N
    DATASET/parts.json                 optional: {"names": {"1": "head", ...}}
    DATASET/train.txt, DATASET/test.txt one id per line

The folder is validated up front and *every* problem is reported at once with its file name, so a
user fixes their data in one pass instead of one crash per file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from partdiscovery.data.base import PartDataset, RawSample, raise_problems, read_text_lines, safe_join
from partdiscovery.data.image_io import read_image, read_labels, read_mask
from partdiscovery.errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_split_file(path: Path) -> list[str]:
    lines = read_text_lines(path, "split", "expected one image id per line")
    ids = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise DatasetError(f"{path}: split file lists no image ids")
    dupes = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dupes:
        raise DatasetError(f"{path}: split file lists ids more than once: {', '.join(dupes[:5])}")
    return ids


def find_image(images: Path, image_id: str) -> Path | None:
    """``images/<image_id>.<ext>`` for the first extension of :data:`IMAGE_EXTENSIONS` that exists."""
    for ext in IMAGE_EXTENSIONS:
        path = safe_join(images, image_id + ext, "image id")
        if path.is_file():
            return path
    return None


def split_image_paths(root: str | Path, split: str) -> list[Path]:
    """The image files of a part folder's ``split`` (no masks needed), or a DatasetError naming the
    missing ones: what ``train`` reads to compute masks for a part folder that has none."""
    root = Path(root)
    if not (root / "images").is_dir():
        raise DatasetError(f"{root}: missing images/ folder (see the part folder format in the README)")
    ids = read_split_file(root / f"{split}.txt")
    paths = [find_image(root / "images", i) for i in ids]
    missing = [
        f"{root / 'images' / i}.*: image is missing (listed in {split}.txt)"
        for i, p in zip(ids, paths)
        if p is None
    ]
    raise_problems(root, split, missing)
    return paths


class PartFolderDataset(PartDataset):
    """A dataset in the part folder format.

    Args:
        root: the dataset folder.
        split: ``train``, ``test`` or any name with a ``<split>.txt`` file; ``all`` = every image in images/.
        validate: check every file up front (sizes, binary masks, non-empty foreground).
        require_parts: fail if ``parts/`` labels are missing (evaluation needs them).
        masks: the folder of ``<id>.png`` foreground masks (default ``root/masks``); e.g. the automatic
            masks that ``train`` computes for a part folder that has none.

    Example:
        >>> ds = PartFolderDataset("../shared/data/ccp", "test")
        >>> sample = ds.load(0); sample.image.size, sample.fg_mask.shape
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        validate: bool = True,
        require_parts: bool = False,
        masks: str | Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.masks_dir = Path(masks) if masks is not None else self.root / "masks"
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder does not exist")
        if not (self.root / "images").is_dir():
            raise DatasetError(
                f"{self.root}: missing images/ folder (see the part folder format in the README)"
            )
        if not self.masks_dir.is_dir():
            raise DatasetError(
                f"{self.root}: missing masks/ folder (see the part folder format in the README; "
                "`partdiscovery train` computes masks when there are none)"
                if masks is None
                else f"{self.masks_dir}: mask folder does not exist"
            )
        if split == "all":
            self.ids = sorted(
                p.stem for p in (self.root / "images").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not self.ids:
                raise DatasetError(f"{self.root / 'images'}: no images found")
        else:
            self.ids = read_split_file(self.root / f"{split}.txt")
        self.has_parts = (self.root / "parts").is_dir()
        if require_parts and not self.has_parts:
            raise DatasetError(
                f"{self.root}: missing parts/ folder; evaluation needs ground-truth part labels"
            )
        self.part_names = self._read_part_names()
        self._image_paths = [self._find_image(i) for i in self.ids]
        if validate:
            self.validate()

    def _read_part_names(self) -> dict[int, str]:
        path = self.root / "parts.json"
        if not path.is_file():
            return {}
        try:
            names = json.loads(path.read_text(encoding="utf-8")).get("names", {})
            return {int(k): str(v) for k, v in names.items()}
        except (ValueError, AttributeError, OSError) as e:
            raise DatasetError(f"{path}: cannot parse parts.json ({e})") from None

    def _find_image(self, image_id: str) -> Path | None:
        return find_image(self.root / "images", image_id)

    def _mask_path(self, image_id: str) -> Path:
        return safe_join(self.masks_dir, image_id + ".png", "image id")

    def _parts_path(self, image_id: str) -> Path:
        return safe_join(self.root / "parts", image_id + ".png", "image id")

    def validate(self) -> None:
        """Check every sample; raise one :class:`DatasetError` listing every problem found."""
        problems: list[str] = []
        for image_id, image_path in zip(self.ids, self._image_paths):
            if image_path is None:
                problems.append(
                    f"{self.root / 'images' / image_id}.*: image is missing (listed in {self.split}.txt)"
                )
                continue
            try:
                # Decode fully (a truncated file fails here, not mid-training) with EXIF orientation applied.
                size = read_image(image_path).size
                mask = read_mask(self._mask_path(image_id))
                if mask.shape[::-1] != size:
                    problems.append(
                        f"{self._mask_path(image_id)}: mask is {mask.shape[1]}x{mask.shape[0]} "
                        f"but the image is {size[0]}x{size[1]}"
                    )
                elif not mask.any():
                    problems.append(f"{self._mask_path(image_id)}: mask has no foreground pixel")
                if self.has_parts:
                    parts_path = self._parts_path(image_id)
                    if parts_path.is_file():
                        labels = read_labels(parts_path)
                        if labels.shape != mask.shape:
                            problems.append(
                                f"{parts_path}: part labels are {labels.shape[1]}x{labels.shape[0]} "
                                f"but the mask is {mask.shape[1]}x{mask.shape[0]}"
                            )
                    else:
                        problems.append(f"{parts_path}: part labels are missing")
            except DatasetError as e:
                problems.append(str(e))
        raise_problems(self.root, self.split, problems)

    def load(self, index: int) -> RawSample:
        image_id = self.ids[index]
        image_path = self._image_paths[index]
        if image_path is None:
            raise DatasetError(f"{self.root / 'images' / image_id}.*: image is missing")
        image = read_image(image_path)
        mask = read_mask(self._mask_path(image_id))
        if mask.shape[::-1] != image.size:
            raise DatasetError(
                f"{self._mask_path(image_id)}: mask size {mask.shape[::-1]} differs from image size {image.size}"
            )
        labels = None
        if self.has_parts and self._parts_path(image_id).is_file():
            labels = read_labels(self._parts_path(image_id))
        return RawSample(id=image_id, image=image, fg_mask=mask, part_labels=labels)


class ImageFolderDataset(PartDataset):
    """Raw images (any folder of pictures), optionally with a folder of masks named ``<stem>.png``.

    Used by ``predict`` on a user's own photos. Without masks the foreground is the whole image
    (or the model's learned background, if it has one).
    """

    def __init__(self, images: str | Path, masks: str | Path | None = None) -> None:
        self.root = Path(images)
        self.split = "all"
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: image folder does not exist")
        self.paths = sorted(
            p for p in self.root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not self.paths:
            raise DatasetError(f"{self.root}: no images found (extensions {', '.join(IMAGE_EXTENSIONS)})")
        self.ids = [p.stem for p in self.paths]
        self.masks = Path(masks) if masks else None
        if self.masks is not None and not self.masks.is_dir():
            raise DatasetError(f"{self.masks}: mask folder does not exist")

    def load(self, index: int) -> RawSample:
        image = read_image(self.paths[index])
        if self.masks is None:
            mask = np.ones((image.height, image.width), dtype=bool)
            return RawSample(id=self.ids[index], image=image, fg_mask=mask, extra={"mask_given": False})
        mask = read_mask(self.masks / f"{self.ids[index]}.png")
        if mask.shape[::-1] != image.size:
            raise DatasetError(
                f"{self.masks / self.ids[index]}.png: mask size {mask.shape[::-1]} "
                f"differs from image size {image.size}"
            )
        return RawSample(id=self.ids[index], image=image, fg_mask=mask, extra={"mask_given": True})
