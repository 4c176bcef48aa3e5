"""DeepFashion In-shop Clothes Retrieval Benchmark (Liu et al. 2016) with its segmentation annotations.

::

    In-shop Clothes Retrieval Benchmark/Anno/segmentation/DeepFashion_segmentation_train.json
    In-shop Clothes Retrieval Benchmark/Anno/segmentation/DeepFashion_segmentation_query.json
    In-shop Clothes Retrieval Benchmark/Anno/segmentation/DeepFashion_segmentation_gallery.json
    In-shop Clothes Retrieval Benchmark/Anno/segmentation/<file_name>             image (.jpg)
    In-shop Clothes Retrieval Benchmark/Anno/segmentation/<stem>_segment.png      colour-coded parts

Why: the paper's DeepFashion numbers (Choudhury et al. 2021, Tab. 4) are computed on these colour-coded
segmentations; split ``train`` is the train JSON and split ``test`` is query + gallery, as in the
reference code.

Where the files are: the JSON files list ``images[].file_name`` (``img_highres/WOMEN/...jpg``). The
reference implementation reads both the image and ``<stem>_segment.png`` from ``Anno/segmentation/``
(where ``img_highres_seg.zip`` of the segmentation release unpacks), so that folder is tried first;
then ``Img/`` (where the image downloads unpack, as in MMFashion/MMDetection) and finally the
benchmark folder itself.
The image and its segment PNG are looked up independently, every path through
:func:`~partdiscovery.data.base.safe_join` (a ``file_name`` that leaves the dataset folder is refused).

Labels: the segment PNGs are RGB with one fixed colour per class. :data:`PALETTE` is the exact
colour table of the reference implementation (``unsup-parts``, ``datasets/deepfashion.py``): 16
colours, black = background, and the label of a pixel is the index of its colour in that table
(0..15), exactly as the reference decodes it (we match the full RGB triple; the reference matched
``r + g + b``, which is unambiguous for these 16 colours). A colour outside the table is an error that
names the file and the colour. Note: the reference also lists 15 class *names*
(:data:`REFERENCE_CLASS_NAMES`, background + 14) while its palette has 16 colours, and the name <->
colour correspondence is not recoverable from it (the palette is sorted by RGB value), so
``part_names`` are the colour names. Clustering scores (NMI/ARI) do not depend on label names or order.

ids are ``file_name`` without its extension (they contain ``/``: a predictions folder mirrors the
dataset's sub-folders, ``<pred_dir>/img_highres/WOMEN/.../02_1_front.png``).

Foreground: ``labels > 0``, or a folder of *predicted* masks (``mask_dir``): the reference computed
the full-image NMI/ARI of its DeepFashion table with foreground masks predicted for the test split by
a supervised segmenter (its ``supervisedlabels`` download, ``<file_name>.png``), while its FG scores
only count ground-truth foreground pixels. So with ``mask_dir`` the predicted mask is ``fg_mask`` (what
predictions are cut with) and ``labels > 0`` is ``gt_fg_mask`` (the pixels the FG metrics count:
:func:`~partdiscovery.evaluation.evaluate.score_pixels`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from partdiscovery.data.base import (
    ObjectBox,
    PartDataset,
    RawSample,
    find_mask_file,
    raise_problems,
    safe_join,
)
from partdiscovery.data.image_io import open_image_file, read_image, read_predicted_mask
from partdiscovery.data.registry import parse_spec_options, register_dataset
from partdiscovery.errors import DatasetError

PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (0, 100, 0),
    (16, 78, 139),
    (50, 205, 50),
    (70, 130, 180),
    (127, 255, 212),
    (144, 238, 144),
    (211, 211, 211),
    (220, 220, 220),
    (245, 222, 179),
    (250, 235, 215),
    (255, 0, 0),
    (255, 140, 0),
    (255, 250, 205),
    (255, 250, 250),
    (255, 255, 0),
)
"""Segment colour -> label (the index); from the reference implementation's decoding table."""
COLOUR_NAMES = (
    "black",
    "darkgreen",
    "dodgerblue4",
    "limegreen",
    "steelblue",
    "aquamarine",
    "lightgreen",
    "lightgray",
    "gainsboro",
    "wheat",
    "antiquewhite",
    "red",
    "darkorange",
    "lemonchiffon",
    "snow",
    "yellow",
)
"""X11 names of :data:`PALETTE`'s colours, used as ``part_names``."""
REFERENCE_CLASS_NAMES = (
    "background",
    "eyeglass",
    "face",
    "accessories",
    "leggings",
    "headwear",
    "skin",
    "pants",
    "outer",
    "footwear",
    "skirt",
    "hair",
    "bag",
    "dress",
    "top",
)
"""Class names listed by the reference code; not aligned with :data:`PALETTE` (see the module doc)."""
SPLIT_FILES = {
    "train": ("train",),
    "test": ("query", "gallery"),
    "query": ("query",),
    "gallery": ("gallery",),
    "all": ("train", "query", "gallery"),
}
TRAIN_CROP_SCALE = (0.5, 1.0)
TRAIN_CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)

_CODES = np.array([(r << 16) | (g << 8) | b for r, g, b in PALETTE], dtype=np.int64)
_ORDER = np.argsort(_CODES)
_SORTED = _CODES[_ORDER]


def decode_segment_colours(rgb: np.ndarray, source: str | Path = "segment") -> np.ndarray:
    """``uint8 [H, W, 3]`` colour-coded segmentation -> ``int64 [H, W]`` labels 0..15 (:data:`PALETTE` index).

    Raises :class:`DatasetError` naming ``source``, the first unknown colour, where it is and how many
    pixels have unknown colours.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DatasetError(f"{source}: segment must be an RGB image, got an array of shape {rgb.shape}")
    wide = rgb.astype(np.int64)
    codes = (wide[..., 0] << 16) | (wide[..., 1] << 8) | wide[..., 2]
    pos = np.clip(np.searchsorted(_SORTED, codes), 0, len(_SORTED) - 1)
    known = _SORTED[pos] == codes
    if not known.all():
        ys, xs = np.nonzero(~known)
        colour = tuple(int(v) for v in rgb[ys[0], xs[0]])
        raise DatasetError(
            f"{source}: unknown segment colour {colour} at pixel (x={xs[0]}, y={ys[0]}) "
            f"({ys.size} pixel(s) with colours outside the {len(PALETTE)}-colour "
            "DeepFashion palette)"
        )
    return _ORDER[pos].astype(np.int64)


def random_resized_crop_box(
    width: int,
    height: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = TRAIN_CROP_SCALE,
    ratio: tuple[float, float] = TRAIN_CROP_RATIO,
) -> tuple[int, int, int, int]:
    """A box ``(x0, y0, x1, y1)`` drawn like ``torchvision.transforms.RandomResizedCrop.get_params``
    (area fraction ``U(scale)``, log-uniform aspect ratio in ``ratio``, 10 tries, then a centre crop)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            x0 = int(rng.integers(0, width - w + 1))
            y0 = int(rng.integers(0, height - h + 1))
            return (x0, y0, x0 + w, y0 + h)
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    x0, y0 = (width - w) // 2, (height - h) // 2
    return (x0, y0, x0 + w, y0 + h)


def _read_file_names(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(
            f"{path}: segmentation annotation file is missing (download the DeepFashion "
            "In-shop segmentation annotations into Anno/segmentation/)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{path}: cannot parse JSON ({e})") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise DatasetError(f"{path}: expected a JSON object with an 'images' list")
    names = []
    for k, entry in enumerate(images):
        name = entry.get("file_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise DatasetError(f"{path}: images[{k}] has no file_name")
        names.append(name)
    return names


class DeepFashionDataset(PartDataset):
    """DeepFashion In-shop with part segmentations (Liu et al. 2016).

    Args:
        root: the ``In-shop Clothes Retrieval Benchmark`` folder.
        split: ``train``; ``test`` (= query + gallery, the paper's test set); ``query``; ``gallery``; ``all``.
        mask_dir: optional folder of predicted foreground masks, ``<file_name>.png`` (the reference's
            ``supervisedlabels`` layout) or ``<id>.png``, 0/1 or 0..255; replaces ``labels > 0`` as
            ``fg_mask`` (the part labels stay the ground truth).
        validate: locate every image and segment PNG up front and report every missing one at once.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        mask_dir: str | Path | None = None,
        validate: bool = True,
    ) -> None:
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.root}: dataset folder does not exist (expected the "
                "'In-shop Clothes Retrieval Benchmark' folder)"
            )
        if split not in SPLIT_FILES:
            raise DatasetError(
                f"{self.root}: unknown DeepFashion split {split!r}; choose one of {', '.join(SPLIT_FILES)}"
            )
        annotations = self.root / "Anno" / "segmentation"
        self.search_roots = (annotations, self.root / "Img", self.root)
        file_names: list[str] = []
        for part in SPLIT_FILES[split]:
            file_names += _read_file_names(annotations / f"DeepFashion_segmentation_{part}.json")
        if not file_names:
            raise DatasetError(f"{annotations}: split {split!r} lists no images")
        counts: dict[str, int] = {}
        for name in file_names:
            counts[name] = counts.get(name, 0) + 1
        dupes = sorted(n for n, c in counts.items() if c > 1)
        if dupes:
            raise DatasetError(
                f"{annotations}: split {split!r} lists images more than once: {', '.join(dupes[:5])}"
            )
        for name in file_names:  # refuse escapes before touching the disk
            safe_join(self.root, name, "file_name")
        self.file_names = file_names
        self.ids = [str(Path(n).with_suffix("")) for n in file_names]
        self.part_names = {i: COLOUR_NAMES[i] for i in range(1, len(PALETTE))}
        self.mask_dir = Path(mask_dir) if mask_dir else None
        if self.mask_dir is not None and not self.mask_dir.is_dir():
            raise DatasetError(f"{self.mask_dir}: mask folder does not exist")
        self._paths: dict[int, tuple[Path, Path]] = {}
        if validate:
            self.validate()

    @staticmethod
    def segment_name(file_name: str) -> str:
        p = Path(file_name)
        return str(p.with_name(p.stem + "_segment.png"))

    def _locate(self, relative: str, what: str) -> Path | None:
        for base in self.search_roots:
            path = safe_join(base, relative, what)
            if path.is_file():
                return path
        return None

    def paths(self, index: int) -> tuple[Path, Path]:
        """``(image, segment)`` paths of sample ``index``; :class:`DatasetError` if either is missing."""
        if index not in self._paths:
            name = self.file_names[index]
            image = self._locate(name, "file_name")
            segment = self._locate(self.segment_name(name), "file_name")
            for path, what, rel in ((image, "image", name), (segment, "segment", self.segment_name(name))):
                if path is None:
                    tried = ", ".join(str(b / rel) for b in self.search_roots)
                    raise DatasetError(f"{rel}: {what} not found (tried {tried})")
            self._paths[index] = (image, segment)
        return self._paths[index]

    def mask_path(self, index: int) -> Path:
        """The predicted mask of sample ``index`` in ``mask_dir``."""
        return find_mask_file(self.mask_dir, (self.file_names[index] + ".png", self.ids[index] + ".png"))

    def validate(self) -> None:
        problems = []
        for index in range(len(self.ids)):
            try:
                self.paths(index)
                if self.mask_dir is not None and not self.mask_path(index).is_file():
                    problems.append(f"{self.mask_path(index)}: predicted mask is missing")
            except DatasetError as e:
                problems.append(str(e))
        raise_problems(self.root, self.split, problems)

    def load(self, index: int) -> RawSample:
        image_path, segment_path = self.paths(index)
        image = read_image(image_path)
        rgb = np.asarray(open_image_file(segment_path, "segment").convert("RGB"))
        labels = decode_segment_colours(rgb, segment_path)
        if labels.shape[::-1] != image.size:
            raise DatasetError(
                f"{segment_path}: segment is {labels.shape[1]}x{labels.shape[0]} but the "
                f"image is {image.width}x{image.height}"
            )
        gt_fg = labels > 0
        fg = gt_fg if self.mask_dir is None else read_predicted_mask(self.mask_path(index), image.size)
        return RawSample(
            id=self.ids[index],
            image=image,
            fg_mask=fg,
            gt_fg_mask=None if self.mask_dir is None else gt_fg,
            part_labels=labels,
            extra={"path": self.file_names[index]},
        )

    def train_box(
        self, width: int, height: int, bbox: ObjectBox | None, rng: np.random.Generator
    ) -> tuple[int, int, int, int]:
        """The reference's training crop: ``RandomResizedCrop(scale=(0.5, 1), ratio=(3/4, 4/3))`` of the
        whole image (resized to the square input, so it may distort)."""
        return random_resized_crop_box(width, height, rng)


@register_dataset("deepfashion", DeepFashionDataset)
def _open_deepfashion(args: str, split: str, **kwargs) -> PartDataset:
    """``deepfashion:PATH`` or ``deepfashion:PATH?mask_dir=DIR`` (PATH: the In-shop benchmark folder)."""
    path, options = parse_spec_options(args, ("mask_dir",))
    kwargs.pop("require_parts", None)  # always has part labels
    return DeepFashionDataset(path, split, **{**options, **kwargs})
