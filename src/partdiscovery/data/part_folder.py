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

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from partdiscovery.data.base import PartDataset, RawSample, raise_problems, read_text_lines, safe_join
from partdiscovery.data.image_io import HEIF_READ, read_image, read_labels, read_mask
from partdiscovery.data.registry import register_dataset
from partdiscovery.errors import DatasetError, some_of

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jfif", ".jpe") + (
    (".heic", ".heif") if HEIF_READ else ()
)


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted: by extension (any case), hidden files skipped.

    Why skip names that start with a dot: macOS writes ``._<name>.jpg`` companions (resource forks,
    not images) beside every photo on a FAT or network drive, and they would stop a run as unreadable.
    """
    found = (
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )
    # A link to a missing file is kept, so that reading it reports it (skipped, it would vanish unsaid).
    return sorted(p for p in found if p.is_file() or (p.is_symlink() and not p.exists()))


PARTS_FILE = "parts.json"
"""What each part label depicts: ``{"names": {"1": "head", ...}}`` (a part folder's own, and ``predict``'s)."""
VAL_FRACTION = 0.2
"""Share of the training ids that form the validation split when a folder has no ``val.txt``."""
HOLDOUT_SPLIT = "train_minus_val"
"""The training ids that are not in the validation split: train on it, tune on ``val``."""


def validation_ids(train_ids: list[str], fraction: float = VAL_FRACTION) -> list[str]:
    """A deterministic share of ``train_ids`` for validation, chosen by hashing each id.

    Why hashing: the choice of an id does not depend on the order of train.txt or on which other ids
    are there, so adding images to a folder never moves an old image between train and validation.
    At least one id is held out, and at least one is left for training.

    Example:
        >>> validation_ids([f"{i:04d}" for i in range(10)])
        ['0000', '0001', '0002']
    """
    if len(train_ids) < 2:
        return []

    def position(image_id: str) -> float:
        digest = hashlib.sha256(f"partdiscovery-val:{image_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    ranked = sorted(train_ids, key=position)
    count = min(len(train_ids) - 1, max(1, sum(position(i) < fraction for i in train_ids)))
    chosen = set(ranked[:count])
    return [i for i in train_ids if i in chosen]


def _checked(problems: list[str], read, path: Path):
    """``read(path)``, or ``None`` with its :class:`DatasetError` added to ``problems``."""
    try:
        return read(path)
    except DatasetError as e:
        problems.append(str(e))
        return None


def _header_size(path: Path, oriented: bool = False) -> tuple[int, int] | None:
    """An image file's width and height from its header, or ``None`` where it cannot be read: the size of a
    mask that :func:`read_mask` refused, so that a wrong size is reported with the other problem. ``oriented``:
    as the image is shown (and read by :func:`read_image`), swapped where the EXIF orientation turns it by 90°."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # read_mask has said so already
            with Image.open(path) as img:
                turned = oriented and img.getexif().get(0x0112) in (5, 6, 7, 8)
                return img.size[::-1] if turned else img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def read_split_file(path: Path, problems: list[str] | None = None) -> list[str]:
    """The ids of a split file, in order. Ids listed more than once are an error, raised at once, or, with
    ``problems``, added to that list (the ids kept once) so that they are reported with the folder's others."""
    lines = read_text_lines(path, "split", "expected one image id per line")
    ids = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise DatasetError(f"{path}: split file lists no image ids")
    dupes = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dupes:
        problem = f"{path}: split file lists ids more than once: {', '.join(dupes[:5])}"
        if problems is None:
            raise DatasetError(problem)
        problems.append(problem)
        ids = list(dict.fromkeys(ids))
    return ids


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)  # case-insensitive file systems: a.jpg and a.JPG are one file
    except OSError:
        return False


def _ambiguity(found: list[Path]) -> str | None:
    """The problem line for an image id with several files, or None."""
    if len(found) < 2:
        return None
    return (
        f"{found[0].with_suffix('')}: ambiguous image id, several files match: "
        + ", ".join(p.name for p in found)
        + "; keep one"
    )


def find_image(images: Path, image_id: str) -> Path | None:
    """``images/<image_id>.<ext>`` for the first extension of :data:`IMAGE_EXTENSIONS` that exists."""
    for ext in IMAGE_EXTENSIONS:
        path = safe_join(images, image_id + ext, "image id")
        if path.is_file():
            return path
    return None


def missing_image(images: Path, image_id: str, listed: str = "", others: dict[str, str] | None = None) -> str:
    """The problem line of an id with no image: ``images/<id>.*: image is missing (<listed>)``, naming a file of the
    id in a format that is not read (``<id>.gif``, ``<id>.heic``), so the user knows to convert it. ``others``:
    :func:`other_pictures_by_id` of ``images``, computed once by a caller that reports many ids."""
    other = (other_pictures_by_id(images) if others is None else others).get(image_id)
    hint = f"; {other} is of a format not read: {convert_hint([Path(other)])}" if other else ""
    return f"{images / image_id}.*: image is missing{f' ({listed})' if listed else ''}{hint}"


def other_pictures_by_id(images: Path) -> dict[str, str]:
    """``{id: file name}`` of :func:`other_pictures` in ``images`` (empty when there is no such folder)."""
    return {p.stem: p.name for p in other_pictures(images)} if images.is_dir() else {}


def split_ids(root: Path, split: str, problems: list[str] | None = None) -> list[str]:
    """The image ids of a part folder's ``split``, in order: ``all`` = every image in images/; ``val`` =
    ``val.txt`` if there is one, else a hashed :data:`VAL_FRACTION` of ``train.txt`` (:func:`validation_ids`);
    :data:`HOLDOUT_SPLIT` = ``train.txt`` without the ``val`` ids; any other name, ``<split>.txt``.
    ``problems``: as :func:`read_split_file`'s."""
    if split == "all":
        ids = sorted({p.stem for p in image_files(root / "images")})
        if not ids:
            raise DatasetError(f"{root / 'images'}: no images found")
        return ids
    if split not in ("val", HOLDOUT_SPLIT) or (root / f"{split}.txt").is_file():
        return read_split_file(root / f"{split}.txt", problems)
    train = read_split_file(root / "train.txt")
    val_file = root / "val.txt"
    val = read_split_file(val_file) if val_file.is_file() else validation_ids(train)
    if not val:
        raise DatasetError(f"{root / 'train.txt'}: too few training images to hold out a validation split")
    if split == "val":
        return val
    held_out = set(val)
    return [i for i in train if i not in held_out]


def split_file_name(root: Path, split: str) -> str:
    """The file a split's ids come from: ``<split>.txt``, or ``train.txt`` for a ``val`` or :data:`HOLDOUT_SPLIT`
    without a file of its own (:func:`split_ids`)."""
    own = f"{split}.txt"
    return own if split not in ("val", HOLDOUT_SPLIT) or (root / own).is_file() else "train.txt"


def is_part_folder(spec: str | Path) -> bool:
    """Whether a dataset spec names a part folder (a plain path or ``folder:PATH``), without opening it."""
    from partdiscovery.data.registry import dataset_kind

    return issubclass(dataset_kind(spec).dataset_class, PartFolderDataset)


def open_to_score(spec: str | Path, split: str, **kwargs) -> PartDataset:
    """:func:`~partdiscovery.data.registry.open_dataset` for scoring or showing a split: a part folder without
    ``masks/`` (one ``train`` made automatic masks for) takes its labelled parts' union as the ground-truth
    foreground (``foreground_from_parts``); other datasets open as they are."""
    from partdiscovery.data.registry import open_dataset

    if is_part_folder(spec):
        kwargs.setdefault("foreground_from_parts", True)
    return open_dataset(spec, split, **kwargs)


def split_image_paths(root: str | Path, split: str) -> list[Path]:
    """The image files of a part folder's ``split`` (no masks needed), or a DatasetError naming the
    missing ones: what ``train`` reads to compute masks for a part folder that has none."""
    root = Path(root)
    if not (root / "images").is_dir():
        raise DatasetError(f"{root}: missing images/ folder (see the part folder format in the README)")
    ids = split_ids(root, split)
    paths = [find_image(root / "images", i) for i in ids]
    listed = split_file_name(root, split)
    others = other_pictures_by_id(root / "images") if None in paths else {}
    missing = [
        missing_image(root / "images", i, f"listed in {listed}", others)
        for i, p in zip(ids, paths)
        if p is None
    ]
    raise_problems(root, split, missing)
    return paths


class PartFolderDataset(PartDataset):
    """A dataset in the part folder format.

    Args:
        root: the dataset folder.
        split: ``train``, ``test`` or any name with a ``<split>.txt`` file; ``all``, ``val`` and
            ``train_minus_val`` as :func:`split_ids` says.
        validate: check every file up front (sizes, binary masks, non-empty foreground).
        require_parts: fail if ``parts/`` labels are missing (evaluation needs them).
        masks: the folder of ``<id>.png`` foreground masks (default ``root/masks``); e.g. the automatic
            masks that ``train`` computes for a part folder that has none.
        foreground_from_parts: for scoring (:func:`open_to_score`): a folder with ``parts/`` and neither ``masks/``
            nor ``masks`` takes the labelled parts' union (``parts > 0``, what a mask of the shared datasets is to
            the pixel) as its ground-truth foreground. Off by default: training and fitting never get a
            label-derived foreground without asking (``train`` computes masks for such a folder).

    Example:
        >>> ds = PartFolderDataset("../shared/data/ccp", "test")  # doctest: +SKIP
        >>> sample = ds.load(0); sample.image.size, sample.fg_mask.shape  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        validate: bool = True,
        require_parts: bool = False,
        masks: str | Path | None = None,
        foreground_from_parts: bool = False,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.masks_dir = Path(masks) if masks is not None else self.root / "masks"
        self._split_problems: list[
            str
        ] = []  # the split file's own (ids listed twice), listed with the others
        if not self.root.is_dir():
            problem = (
                "is a file, not a dataset folder" if self.root.exists() else "dataset folder does not exist"
            )
            raise DatasetError(f"{self.root}: {problem}")
        if not (self.root / "images").is_dir():
            raise DatasetError(
                f"{self.root}: missing images/ folder (see the part folder format in the README)"
            )
        self.foreground_from_parts = (
            foreground_from_parts
            and masks is None
            and not self.masks_dir.is_dir()
            and (self.root / "parts").is_dir()
        )
        if not self.masks_dir.is_dir() and not self.foreground_from_parts:
            raise DatasetError(
                f"{self.root}: missing masks/ folder (see the part folder format in the README; "
                "`partdiscovery train` computes masks when there are none, `baseline --masks RUN/masks` fits on "
                "those)"
                if masks is None
                else f"{self.masks_dir}: mask folder does not exist"
            )
        self.ids = split_ids(self.root, split, self._split_problems)
        if split != "test":
            self._warn_if_in_test()
        self.has_parts = (self.root / "parts").is_dir()
        self.require_parts = require_parts
        if require_parts and not self.has_parts:
            raise DatasetError(
                f"{self.root}: missing parts/ folder; evaluation needs ground-truth part labels"
            )
        self.part_names = self._read_part_names()
        self._candidates = [self._find_images(i) for i in self.ids]
        self._image_paths = [found[0] if len(found) == 1 else None for found in self._candidates]
        if validate:
            self.validate()
        else:
            ambiguous = [p for p in map(_ambiguity, self._candidates) if p]
            raise_problems(self.root, self.split, self._split_problems + ambiguous)

    def _warn_if_in_test(self) -> None:
        """Warn when ids of this split are also in ``test.txt``: a model trained on them would be scored on images it
        was trained on (the folder is still usable; the lists are the user's to fix)."""
        try:
            test = (
                set(read_split_file(self.root / "test.txt")) if (self.root / "test.txt").is_file() else set()
            )
        except DatasetError:
            return  # test.txt's own problems are reported when the test split is opened
        both = [i for i in self.ids if i in test]
        if both:
            warnings.warn(
                f"{self.root}: {len(both)} id(s) of the {self.split!r} split are also in test.txt (e.g. {both[0]}); "
                "test scores would include images trained on",
                stacklevel=3,
            )

    def _read_part_names(self) -> dict[int, str]:
        path = self.root / PARTS_FILE
        if not path.is_file():
            return {}
        try:
            names = json.loads(path.read_text(encoding="utf-8-sig")).get("names", {})
            return {int(k): str(v) for k, v in names.items()}
        except (ValueError, AttributeError, OSError) as e:
            raise DatasetError(f"{path}: cannot parse parts.json ({e})") from None

    def _find_images(self, image_id: str) -> list[Path]:
        """Every image file of ``image_id`` (any listed extension, in either case). More than one is an
        error: picking one silently would train on a picture the user may not expect."""
        found: list[Path] = []
        for ext in IMAGE_EXTENSIONS:
            for variant in dict.fromkeys((ext, ext.upper())):
                path = safe_join(self.root / "images", image_id + variant, "image id")
                if path.is_file() and not any(_same_file(path, other) for other in found):
                    found.append(path)
        return found

    def _mask_path(self, image_id: str) -> Path:
        return safe_join(self.masks_dir, image_id + ".png", "image id")

    def _parts_path(self, image_id: str) -> Path:
        return safe_join(self.root / "parts", image_id + ".png", "image id")

    def validate(self) -> None:
        """Check every sample; raise one :class:`DatasetError` listing every problem found."""
        problems: list[str] = list(self._split_problems)
        unlabelled: list[Path] = []  # images without part labels, in a split that is not scored
        unnamed: dict[int, Path] = {}  # part label -> first file using it, for labels parts.json lacks
        others = other_pictures_by_id(self.root / "images") if None in self._image_paths else {}
        for image_id, image_path, found in zip(self.ids, self._image_paths, self._candidates):
            if len(found) > 1:
                problems.append(_ambiguity(found))
                continue
            if image_path is None:
                listed = (
                    "an image of images/"
                    if self.split == "all"
                    else f"listed in {split_file_name(self.root, self.split)}"
                )
                problems.append(missing_image(self.root / "images", image_id, listed, others))
                continue
            # Each file is checked on its own, so that a sample with several problems shows them all at once.
            # Decode fully (a truncated file fails here, not mid-training) with EXIF orientation applied.
            image = _checked(problems, read_image, image_path)
            size = image.size if image is not None else None
            mask_size = size  # without masks/, the part labels are checked against the image
            if not self.foreground_from_parts:
                mask_path = self._mask_path(image_id)
                mask = _checked(problems, read_mask, mask_path)
                mask_size = mask.shape[::-1] if mask is not None else _header_size(mask_path)
                if size is not None and mask_size is not None and mask_size != size:
                    problems.append(
                        f"{mask_path}: mask is {mask_size[0]}x{mask_size[1]} but the image is {size[0]}x{size[1]}"
                    )
                elif mask is not None and not mask.any():
                    problems.append(f"{mask_path}: mask has no foreground pixel")
            if not self.has_parts:
                continue
            parts_path = self._parts_path(image_id)
            if not parts_path.is_file():
                if self.require_parts or self.foreground_from_parts:  # scoring needs them; training does not
                    problems.append(f"{parts_path}: part labels are missing")
                else:
                    unlabelled.append(parts_path)
                continue
            labels = _checked(problems, read_labels, parts_path)
            if labels is None:
                continue
            if self.foreground_from_parts and not labels.any():
                problems.append(f"{parts_path}: no labelled part pixel, and no masks/ to give the foreground")
            if mask_size is not None and labels.shape[::-1] != mask_size:
                problems.append(
                    f"{parts_path}: part labels are {labels.shape[1]}x{labels.shape[0]} "
                    f"but the {'image' if self.foreground_from_parts else 'mask'} is {mask_size[0]}x{mask_size[1]}"
                )
            if self.part_names:
                for label in np.unique(labels):
                    if label > 0 and int(label) not in self.part_names:
                        unnamed.setdefault(int(label), parts_path)
        raise_problems(self.root, self.split, problems)
        if unlabelled:
            warnings.warn(
                f"{self.root / 'parts'}: {len(unlabelled)} image(s) of split {self.split!r} have no part labels "
                f"(first: {unlabelled[0].name}); they train as the others, scoring needs them",
                stacklevel=2,
            )
        if self.foreground_from_parts:
            warnings.warn(
                f"{self.root}: no masks/ folder: scored on the labelled parts' union (parts > 0) as the foreground",
                stacklevel=2,
            )
        if unnamed:
            labels = sorted(unnamed)
            warnings.warn(
                f"{self.root / 'parts.json'}: names parts {', '.join(map(str, sorted(self.part_names)))} "
                f"but the part labels also use {', '.join(map(str, labels))} (first in "
                f"{unnamed[labels[0]]}); they are scored as parts of their own",
                stacklevel=2,
            )

    def load(self, index: int) -> RawSample:
        image_id = self.ids[index]
        image_path = self._image_paths[index]
        if len(self._candidates[index]) > 1:
            raise DatasetError(_ambiguity(self._candidates[index]))
        if image_path is None:
            raise DatasetError(missing_image(self.root / "images", image_id))
        image = read_image(image_path)
        labels = None
        if self.has_parts and self._parts_path(image_id).is_file():
            labels = read_labels(self._parts_path(image_id))
        if self.foreground_from_parts:
            if labels is None:
                raise DatasetError(
                    f"{self._parts_path(image_id)}: part labels are missing (no masks/ either)"
                )
            mask, mask_path = labels > 0, self._parts_path(image_id)
        else:
            mask, mask_path = read_mask(self._mask_path(image_id)), self._mask_path(image_id)
        if mask.shape[::-1] != image.size:
            raise DatasetError(
                f"{mask_path}: mask size {mask.shape[::-1]} differs from image size {image.size}"
            )
        return RawSample(id=image_id, image=image, fg_mask=mask, part_labels=labels)


def list_images(folder: str | Path) -> list[Path]:
    """The image files of ``folder`` (sorted; by extension), or a :class:`DatasetError` naming it."""
    folder = Path(folder)
    if folder.is_file():
        raise DatasetError(f"{folder}: is a file; give the folder that holds the images")
    if not folder.is_dir():
        raise DatasetError(f"{folder}: image folder does not exist")
    paths = image_files(folder)
    nested = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and image_files(p)]
    where = f"; its subfolder {nested[0].name}/ holds images, give that folder" if nested else ""
    skipped = other_pictures(folder)
    shown = some_of(p.name for p in skipped)
    if not paths:
        other = f"; it holds {len(skipped)} picture(s) of another format ({shown}): {convert_hint(skipped)}"
        raise DatasetError(
            f"{folder}: no images found (extensions {', '.join(IMAGE_EXTENSIONS)}){where}{other if skipped else ''}"
        )
    if nested:
        warnings.warn(
            f"{folder}: the images in {len(nested)} subfolder(s) ({nested[0].name}/, ...) are not used, only those "
            "directly in the folder",
            stacklevel=2,
        )
    if skipped:
        warnings.warn(
            f"{folder}: {len(skipped)} picture(s) of another format are not used ({shown}); the images read are "
            f"{', '.join(IMAGE_EXTENSIONS)}: {convert_hint(skipped)} to use them",
            stacklevel=2,
        )
    return paths


# fmt: off
OTHER_PICTURE_EXTENSIONS = tuple(ext for ext in (
    ".gif", ".apng", ".avif", ".heic", ".heif", ".jxl", ".jp2", ".j2k", ".jpf", ".jpx", ".psd", ".tga", ".ico",
    ".ppm", ".pgm", ".pbm", ".pnm", ".qoi", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf",
) if ext not in IMAGE_EXTENSIONS)
# fmt: on
"""Picture formats that are not read (animations, a phone's HEIC without ``pillow-heif``, JPEG 2000, editors' files,
cameras' RAW): a file of one beside the photos is named, so that it is converted, not missed. Not every format Pillow
registers: it also registers PDF, HDF5 or MPEG, which a folder of photos may hold without them being pictures."""


def convert_hint(paths: list[Path]) -> str:
    """What to do with pictures of a format not read: convert them, or for HEIC install the reader."""
    heif = any(p.suffix.lower() in (".heic", ".heif") for p in paths)
    which = "it" if len(paths) == 1 else "them"
    return f"convert {which} to JPEG or PNG" + (
        " (HEIC: or `pip install pillow-heif`, which reads it)" if heif else ""
    )


def other_pictures(folder: Path) -> list[Path]:
    """The files directly in ``folder`` that are pictures of a format not read (:data:`OTHER_PICTURE_EXTENSIONS`):
    skipped, and said so, unlike a notes file."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in OTHER_PICTURE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


class ImageFolderDataset(PartDataset):
    """Raw images (any folder of pictures, or one picture), optionally with a folder of masks named ``<stem>.png``.

    Used by ``predict`` on a user's own photos. Without masks the foreground is the whole image
    (or the model's learned background, if it has one).
    """

    def __init__(self, images: str | Path, masks: str | Path | None = None) -> None:
        self.root = Path(images)
        self.split = "all"
        # One photo is a collection of one (`predict --images photo.jpg`); a missing folder, no images, a file that
        # is not an image: one line.
        if self.root.is_file() and self.root.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DatasetError(
                f"{self.root}: is not an image of a format read ({', '.join(IMAGE_EXTENSIONS)}); give an image or "
                "a folder of images"
            )
        self.paths = [self.root] if self.root.is_file() else list_images(self.root)
        self.ids = [p.stem for p in self.paths]
        by_id: dict[str, list[Path]] = {}
        for path in self.paths:
            by_id.setdefault(path.stem, []).append(path)
        self.masks = Path(masks) if masks else None
        if self.masks is not None and not self.masks.is_dir():
            raise DatasetError(f"{self.masks}: mask folder does not exist")
        # Every problem a file's header shows, at once, before anything is written: two files with one stem
        # (one labels/<stem>.png would replace the other), a file that is no image, a missing or mis-sized mask.
        # (A file whose header reads but whose data is cut short is found when it is decoded.)
        problems = [p for p in map(_ambiguity, by_id.values()) if p]
        for path in self.paths:
            size = _header_size(path, oriented=True)
            if size is None:
                dangling = path.is_symlink() and not path.exists()
                problems.append(
                    f"{path}: " + ("a link to a missing file" if dangling else "not a readable image")
                )
            elif self.masks is not None:
                mask = self.masks / f"{path.stem}.png"
                mask_size = _header_size(mask) if mask.is_file() else None
                if not mask.is_file():
                    problems.append(f"{mask}: mask file is missing")
                elif mask_size is None:
                    problems.append(f"{mask}: not a readable image")
                elif mask_size != size:
                    problems.append(f"{mask}: mask size {mask_size} differs from image size {size}")
        raise_problems(self.root, None, problems, kind="image")

    def load(self, index: int) -> RawSample:
        image = read_image(self.paths[index])
        if self.masks is None:
            mask = np.ones((image.height, image.width), dtype=bool)
            return RawSample(id=self.ids[index], image=image, fg_mask=mask, mask_given=False)
        mask = read_mask(self.masks / f"{self.ids[index]}.png")
        if mask.shape[::-1] != image.size:
            raise DatasetError(
                f"{self.masks / self.ids[index]}.png: mask size {mask.shape[::-1]} "
                f"differs from image size {image.size}"
            )
        return RawSample(id=self.ids[index], image=image, fg_mask=mask, mask_given=True)


@register_dataset("folder", PartFolderDataset)
def _open_part_folder(args: str, split: str, **kwargs) -> PartDataset:
    """``folder:PATH``, or a plain ``PATH`` (the default kind)."""
    return PartFolderDataset(args, split, **kwargs)
