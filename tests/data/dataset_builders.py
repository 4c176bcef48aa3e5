"""Builders of tiny datasets in each supported layout, shared by the data tests.

Each ``make_*`` writes a few-image dataset in the original layout of its kind under a given folder and
returns the folder to open. :data:`SPECS` opens every registered dataset kind from them, so that the
contract test and the end-to-end test cover each kind without copying fixtures.

Imported as ``from tests.data.dataset_builders import make_cub``: the test folders are packages, so
pytest puts the repository root on ``sys.path`` and test files may share a name across folders.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.io
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

from partdiscovery.data.cub import NUM_KEYPOINTS
from partdiscovery.data.deepfashion import PALETTE

# ------------------------------------------------------------------------------------------ CUB
# id: (relative path, class, is_train, (w, h), box (x, y, w, h))
CUB_IMAGES = {
    1: ("001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg", 1, 1, (48, 40), (8, 6, 30, 24)),
    2: ("001.Black_footed_Albatross/Black_Footed_Albatross_0002_2.jpg", 1, 0, (56, 44), (10, 4, 36, 30)),
    3: ("002.Laysan_Albatross/Laysan_Albatross_0003_3.jpg", 2, 1, (40, 48), (4, 10, 28, 30)),
    4: ("002.Laysan_Albatross/Laysan_Albatross_0004_4.jpg", 2, 0, (44, 44), (6, 6, 30, 30)),
    5: ("003.Sooty_Albatross/Sooty_Albatross_0005_5.jpg", 3, 0, (52, 40), (12, 8, 26, 22)),
}


def keypoints_of(image_id: int) -> np.ndarray:
    """Deterministic keypoints: even part ids visible, inside the box; odd invisible (0, 0, 0)."""
    _, _, _, _, (x, y, w, h) = CUB_IMAGES[image_id]
    kp = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
    for p in range(NUM_KEYPOINTS):
        if (p + image_id) % 2 == 0:
            kp[p] = (x + (3 * p + image_id) % w, y + (5 * p + 2 * image_id) % h, 1)
    return kp


def make_cub(base: Path, segmentations: str = "inside") -> Path:
    """Write the fixture; ``segmentations``: ``inside`` CUB_200_2011/, ``beside`` it, or ``none``."""
    root = base / "CUB_200_2011"
    seg_roots = {"inside": root / "segmentations", "beside": base / "segmentations", "none": None}
    seg_root = seg_roots[segmentations]
    rng = np.random.default_rng(0)
    lines = {name: [] for name in ("images", "split", "boxes", "labels", "parts")}
    for image_id, (rel, cls, train, (w, h), (x, y, bw, bh)) in CUB_IMAGES.items():
        path = root / "images" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        (image.convert("L") if image_id == 3 else image).save(path, quality=95)  # one grayscale JPEG
        if seg_root is not None:
            soft = np.zeros((h, w), dtype=np.uint8)
            soft[y : y + bh, x : x + bw] = 255
            soft[y, x : x + bw] = 128  # >= 0.5 * 255: foreground
            soft[y + bh - 1, x : x + bw] = 127  # < 0.5 * 255: background
            seg = seg_root / Path(rel).with_suffix(".png")
            seg.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(soft).save(seg)
        lines["images"].append(f"{image_id} {rel}")
        lines["split"].append(f"{image_id} {train}")
        lines["boxes"].append(f"{image_id} {float(x)} {float(y)} {float(bw)} {float(bh)}")
        lines["labels"].append(f"{image_id} {cls}")
        for p, (kx, ky, vis) in enumerate(keypoints_of(image_id), 1):
            lines["parts"].append(f"{image_id} {p} {kx} {ky} {int(vis)}")
    (root / "parts").mkdir(parents=True, exist_ok=True)
    files = (
        ("images", "images.txt"),
        ("split", "train_test_split.txt"),
        ("boxes", "bounding_boxes.txt"),
        ("labels", "image_class_labels.txt"),
        ("parts", "parts/part_locs.txt"),
    )
    for name, file in files:
        (root / file).write_text("\n".join(lines[name]) + "\n", encoding="utf-8")
    return root


# ------------------------------------------------------------------------------------------ DeepFashion
DF_SPLITS = {
    "train": ["img/WOMEN/Dresses/id_00000001/02_1_front.jpg", "img/WOMEN/Dresses/id_00000001/02_2_side.jpg"],
    "query": ["img/MEN/Denim/id_00000007/01_1_front.jpg"],
    "gallery": ["img/MEN/Denim/id_00000007/01_2_side.jpg", "img/WOMEN/Tees/id_00000009/03_4_full.jpg"],
}
DF_WIDTH, DF_HEIGHT = 40, 56


def label_map(index: int) -> np.ndarray:
    """Horizontal bands of labels; every image uses different labels, all 16 colours appear overall."""
    labels = np.zeros((DF_HEIGHT, DF_WIDTH), dtype=np.int64)
    for band in range(1, 4):
        labels[band * 12 : band * 12 + 10, 6:34] = (index * 3 + band) % 16 or 15
    return labels


def paint(labels: np.ndarray) -> np.ndarray:
    return np.asarray(PALETTE, dtype=np.uint8)[labels]


def make_deepfashion(base: Path, image_root: str = "Anno/segmentation") -> Path:
    """Write the fixture: JSON files in Anno/segmentation/, images and segments under ``image_root``."""
    root = base / "In-shop Clothes Retrieval Benchmark"
    annotations = root / "Anno" / "segmentation"
    annotations.mkdir(parents=True)
    rng = np.random.default_rng(0)
    index = 0
    for split, names in DF_SPLITS.items():
        entries = [
            {"file_name": n, "id": k, "height": DF_HEIGHT, "width": DF_WIDTH} for k, n in enumerate(names)
        ]
        (annotations / f"DeepFashion_segmentation_{split}.json").write_text(json.dumps({"images": entries}))
        for name in names:
            image = root / image_root / name
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, size=(DF_HEIGHT, DF_WIDTH, 3), dtype=np.uint8)).save(
                image, quality=95
            )
            segment = image.with_name(image.stem + "_segment.png")
            Image.fromarray(paint(label_map(index))).save(segment)
            index += 1
    return root


# ------------------------------------------------------------------------------------------ PASCAL-Part
PASCAL_HEIGHT, PASCAL_WIDTH = 48, 64


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Mask of the rectangle with *inclusive* corners."""
    m = np.zeros((PASCAL_HEIGHT, PASCAL_WIDTH), dtype=np.uint8)
    m[y0 : y1 + 1, x0 : x1 + 1] = 1
    return m


# voc id -> [(class, object mask, [(part name, part mask), ...])]
PASCAL_OBJECTS = {
    "2008_000001": [  # big cat (36.8 % by the reference's formula), tiny cat, dog
        (
            "cat",
            rect(10, 8, 49, 37),
            [("lear", rect(10, 8, 14, 12)), ("head", rect(10, 8, 25, 20)), ("torso", rect(26, 8, 49, 37))],
        ),
        ("cat", rect(50, 40, 59, 45), [("head", rect(50, 40, 59, 45))]),
        ("dog", rect(0, 0, 63, 47), [("torso", rect(0, 0, 63, 47))]),
    ],
    "2008_000002": [("cat", rect(20, 10, 43, 30), [("head", rect(20, 10, 43, 30))])],  # 23 * 20 / 3072 = 15 %
    "2008_000004": [("cat", rect(0, 0, 39, 29), [("torso", rect(0, 0, 39, 29))])],  # at the image corner
    "2008_000010": [
        (
            "car",
            rect(4, 4, 59, 43),
            [
                ("wheel_1", rect(4, 34, 14, 43)),
                ("wheel_2", rect(49, 34, 59, 43)),
                ("door_1", rect(20, 10, 40, 30)),
                ("frontside", rect(4, 4, 19, 33)),
            ],
        )
    ],
}
PASCAL_LISTS = {
    "cat_train.txt": "2008_000001  1\n2008_000002  1\n2008_000003 -1\n",
    "cat_val.txt": "2008_000001  1\n2008_000002  1\n2008_000004  0\n2008_000005  1\n",  # 000005 has no .mat
    "car_train.txt": "2008_000010  1\n",
}


def write_annotation(path: Path, objects) -> None:
    """A .mat file in the PASCAL-Part structure: anno[0, 0]['objects'][0, i] with its 4 fields."""
    fields = [("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")]
    objs = np.zeros((1, len(objects)), dtype=fields)
    for i, (cls, mask, parts) in enumerate(objects):
        if parts:
            arr = np.zeros((1, len(parts)), dtype=[("part_name", "O"), ("mask", "O")])
            for j, (name, part_mask) in enumerate(parts):
                arr[0, j] = (name, part_mask)
        else:
            arr = np.zeros((0, 0))
        objs[0, i] = (cls, 8 if cls == "cat" else 7, mask, arr)
    anno = np.zeros((1, 1), dtype=[("imname", "O"), ("objects", "O")])
    anno[0, 0] = (path.stem, objs)
    scipy.io.savemat(str(path), {"anno": anno})


def make_pascal(base: Path, objects=PASCAL_OBJECTS) -> Path:
    root = base / "VOCdevkit_2010"
    images, lists, annotations = (
        root / "VOC2010" / "JPEGImages",
        root / "VOC2010" / "ImageSets" / "Main",
        root / "Annotations_Part",
    )
    for folder in (images, lists, annotations):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for voc_id, objs in objects.items():
        Image.fromarray(rng.integers(1, 256, size=(PASCAL_HEIGHT, PASCAL_WIDTH, 3), dtype=np.uint8)).save(
            images / f"{voc_id}.jpg"
        )
        write_annotation(annotations / f"{voc_id}.mat", objs)
    for name, text in PASCAL_LISTS.items():
        (lists / name).write_text(text, encoding="utf-8")
    return root


# ------------------------------------------------------------------------------------------ part folder
FOLDER_WIDTH, FOLDER_HEIGHT = 20, 14


def rgb_image(colour=(200, 60, 30)) -> Image.Image:
    arr = np.zeros((FOLDER_HEIGHT, FOLDER_WIDTH, 3), dtype=np.uint8)
    arr[:] = colour
    arr[: FOLDER_HEIGHT // 2, : FOLDER_WIDTH // 2] = (10, 220, 90)
    return Image.fromarray(arr)


def mask_array(h=FOLDER_HEIGHT, w=FOLDER_WIDTH) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    m[2:-2, 3:-3] = 255
    return m


def make_folder(root: Path, ids=("a", "b", "c"), parts=True) -> Path:
    for sub in ("images", "masks") + (("parts",) if parts else ()):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in ids:
        rgb_image().save(root / "images" / f"{i}.png")
        mask = mask_array()
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
        if parts:
            labels = np.where(mask > 0, 1, 0).astype(np.uint8)
            labels[:, FOLDER_WIDTH // 2 :] *= 2
            Image.fromarray(labels).save(root / "parts" / f"{i}.png")
    (root / "train.txt").write_text("\n".join(ids) + "\n")
    (root / "test.txt").write_text(ids[0] + "\n")
    (root / "parts.json").write_text(json.dumps({"names": {"1": "left", "2": "right"}}))
    return root


def exif_rotated(path: Path) -> Path:
    """A 20x14 JPEG whose EXIF orientation 6 says: display rotated 90 degrees clockwise (14x20).
    Its top-left quadrant is red, so the displayed top-right corner must be red."""
    arr = np.zeros((FOLDER_HEIGHT, FOLDER_WIDTH, 3), dtype=np.uint8)
    arr[:] = (0, 0, 255)
    arr[: FOLDER_HEIGHT // 2, : FOLDER_WIDTH // 2] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(path, exif=exif, quality=100)
    return path


# ------------------------------------------------------------------------------------------ broken files
def _png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _image_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "truncated", "png", "empty"]))
    if kind == "random":
        return draw(st.binary(min_size=0, max_size=256))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    channels = draw(st.sampled_from([None, 3, 4]))
    shape = (h, w) if channels is None else (h, w, channels)
    array = np.asarray(
        draw(st.lists(st.integers(0, 255), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
        dtype=np.uint8,
    ).reshape(shape)
    data = _png_bytes(array)
    if kind == "truncated":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return b"" if kind == "empty" else data


file_bytes = st.composite(lambda draw: _image_bytes(draw))
"""Hypothesis strategy: the bytes of a file that may be an image, a truncated one, an empty one or noise."""
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
"""Settings of the fuzz tests: 60 examples each, no deadline (the test machine may be busy)."""


# ------------------------------------------------------------------------------------------ every kind
SPECS: dict[str, Callable[[Path], str]] = {
    "cub": lambda base: f"cub:{make_cub(base)}",
    "deepfashion": lambda base: f"deepfashion:{make_deepfashion(base)}",
    "folder": lambda base: f"folder:{make_folder(base / 'folder')}",
    "pascal-part": lambda base: f"pascal-part:cat:{make_pascal(base)}",
}
"""Registered dataset kind -> ``build(folder) -> spec`` of a tiny dataset of that kind."""
