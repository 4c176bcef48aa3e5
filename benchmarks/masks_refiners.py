"""Edge-aware refiners of the first round's coarse mask other than GrabCut: superpixels and a random walker.

The first round (``border_contrast`` + ``grabcut``) errs two ways: on CCP the coarse mask spills over most of the
plain background (precision about 40 %) and GrabCut's colour models clean it; on PASCAL-Person GrabCut cuts the
person's limbs away (recall 87 % -> 73 %). A refiner that follows the photo's edges without a global colour model
might keep the limbs. Each variant below starts from the same φ features and border-contrast maps as
``partdiscovery masks`` (:class:`~partdiscovery.foreground.cosegment.BorderContrast`, the certain core of
``foreground.certain_fraction``), at GrabCut's working size (``foreground.refine_size``) unless said otherwise:

- ``none`` / ``grabcut``: the coarse mask thresholded, and the default refiner (the references);
- ``slicN>=T``: SLIC superpixels (scikit-image, ``n_segments`` N, compactness 10), a superpixel is object where the
  mean coarse probability inside it is at least T; ``felzenszwalb>=0.5`` the same with Felzenszwalb's graph segments;
- ``grabcut|slicN>=0.75``: GrabCut's mask plus the superpixels the coarse mask covers at least 75 % (limbs back);
- ``grabcut core=slic200>=0.75``: GrabCut with those superpixels fixed as object (a core at superpixel level);
- ``random_walker fgQ bg=B``: scikit-image's random walker (beta 1000, at 160 px) from object seeds (the top Q of
  the coarse object's cells by border dissimilarity) and background seeds (``border``: the outermost pixels;
  ``low``: those and the lower half of the non-object cells' dissimilarity).

Also per image: the fraction of the coarse mask that GrabCut keeps, and the best of ``none`` and ``grabcut``
chosen with the labels (an upper bound on any per-image choice between the two).

    python benchmarks/masks_refiners.py --datasets ade_chairs ccp pascal_person --limit 70

Images: the validation subset of ``benchmarks/masks.py`` (hashed 20 % of train ids), at most ``--limit`` each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage.segmentation import felzenszwalb, random_walker, slic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from masks import SHARED, is_val, mask_scores  # noqa: E402

from partdiscovery.config import ForegroundConfig, load_config  # noqa: E402
from partdiscovery.data import PartFolderDataset  # noqa: E402
from partdiscovery.foreground import create_phi, image_features  # noqa: E402
from partdiscovery.foreground.cosegment import BorderContrast  # noqa: E402
from partdiscovery.foreground.model import maps_at_size, upsample  # noqa: E402
from partdiscovery.foreground.refine import refine_grabcut  # noqa: E402
from partdiscovery.utils.io import atomic_write_json  # noqa: E402

RANDOM_WALKER_SIZE = 160
RANDOM_WALKER_SEEDS = ((0.05, "border"), (0.05, "low"), (0.3, "low"))


def resize(array: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    return cv2.resize(array, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)


def working_size(height: int, width: int, longest: int) -> tuple[int, int]:
    scale = min(1.0, longest / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def segment_mean(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean of ``values`` over each segment of ``labels``, painted back (``float [h, w]``)."""
    sums = np.bincount(labels.ravel(), weights=values.ravel())
    counts = np.bincount(labels.ravel())
    return (sums / np.maximum(counts, 1))[labels]


def walk(
    rgb: np.ndarray, score: np.ndarray, probability: np.ndarray, object_top: float, background: str
) -> np.ndarray:
    """Random-walker mask (``bool`` at the image's size) from seeds of the border-contrast maps."""
    height, width = probability.shape
    size = working_size(height, width, RANDOM_WALKER_SIZE)
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    s, p = resize(score, size), resize(probability, size)
    inside = p >= 0.5
    if not inside.any():
        return probability >= 0.5
    seeds = np.zeros(s.shape, np.int32)
    seeds[inside & (s >= np.quantile(s[inside], 1 - object_top))] = 1
    back = np.zeros_like(inside)
    if background == "low" and (~inside).any():
        back = ~inside & (s <= np.quantile(s[~inside], 0.5))
    back[[0, -1], :] = True
    back[:, [0, -1]] = True
    seeds[back & (seeds == 0)] = 2
    segments = random_walker(small, seeds, beta=1000, mode="cg_j", tol=1e-3, channel_axis=-1)
    return resize((segments == 1).astype(np.uint8), (width, height), nearest=True).astype(bool)


def variants(rgb: np.ndarray, features: np.ndarray, cfg: ForegroundConfig) -> dict[str, np.ndarray]:
    """Every refiner's ``bool [H, W]`` mask of one image."""
    height, width = rgb.shape[:2]
    probability_grid, score_grid = BorderContrast().maps(features)
    probability, certain = maps_at_size(probability_grid, score_grid, height, width, cfg.certain_fraction)
    masks = {"none": probability >= 0.5, "grabcut": refine_grabcut(rgb, probability, cfg, certain)}
    size = working_size(height, width, cfg.refine_size)
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_probability = resize(probability, size)

    def back(mask: np.ndarray) -> np.ndarray:
        return resize(mask.astype(np.uint8), (width, height), nearest=True).astype(bool)

    for segments in (200, 600):
        mean = segment_mean(
            slic(small, n_segments=segments, compactness=10, start_label=0), small_probability
        )
        for threshold in (0.5, 0.4):
            masks[f"slic{segments}>={threshold}"] = back(mean >= threshold)
        covered = back(mean >= 0.75)
        masks[f"grabcut|slic{segments}>=0.75"] = masks["grabcut"] | covered
        if segments == 200:
            core = covered | certain if certain is not None else covered
            masks["grabcut core=slic200>=0.75"] = refine_grabcut(rgb, probability, cfg, core)
    graph = felzenszwalb(small, scale=100, sigma=0.8, min_size=50)
    masks["felzenszwalb>=0.5"] = back(segment_mean(graph, small_probability) >= 0.5)
    score = upsample(score_grid, height, width)
    for object_top, background in RANDOM_WALKER_SEEDS:
        masks[f"random_walker fg{object_top} bg={background}"] = walk(
            rgb, score, probability, object_top, background
        )
    return masks


Variants = Callable[[np.ndarray, np.ndarray, ForegroundConfig], dict[str, np.ndarray]]


def evaluate(
    root: Path, limit: int, cfg: ForegroundConfig, phi: torch.nn.Module, make: Variants | None = None
) -> dict:
    """Scores of every variant of ``make`` (default :func:`variants`; it must include ``none`` and ``grabcut``)
    on the validation images of ``root``."""
    make = make or variants
    train = PartFolderDataset(root, "train", validate=False)
    indices = [i for i, image_id in enumerate(train.ids) if is_val(image_id)][: limit or None]
    scores: dict[str, list] = {}
    per_image = []
    started = time.perf_counter()
    for i in indices:
        sample = train.load(i)
        rgb = np.asarray(sample.image.convert("RGB"))
        masks = make(rgb, image_features(phi, sample.image, cfg.input_size), cfg)
        coarse = masks["none"]
        kept = float((masks["grabcut"] & coarse).sum() / max(coarse.sum(), 1))
        image_scores = {name: mask_scores(mask, sample.fg_mask) for name, mask in masks.items()}
        per_image.append({"id": train.ids[i], "grabcut_kept": kept, **image_scores})
        for name, value in image_scores.items():
            scores.setdefault(name, []).append(value)
    rows = []
    for name, values in scores.items():
        a = np.array(values)
        rows.append(
            {
                "dataset": root.name,
                "variant": name,
                "n_images": len(a),
                "iou": 100 * float(a[:, 0].mean()),
                "precision": 100 * float(a[:, 1].mean()),
                "recall": 100 * float(a[:, 2].mean()),
                "below_50": int((a[:, 0] < 0.5).sum()),
            }
        )
    best = np.maximum(np.array(scores["none"])[:, 0], np.array(scores["grabcut"])[:, 0])
    kept = np.array([p["grabcut_kept"] for p in per_image])
    gain = np.array(scores["grabcut"])[:, 0] - np.array(scores["none"])[:, 0]
    summary = {
        "dataset": root.name,
        "best_of_none_and_grabcut_iou": 100 * float(best.mean()),
        "grabcut_kept_mean": float(kept.mean()),
        "corr_kept_vs_grabcut_gain": float(np.corrcoef(kept, gain)[0, 1]),
        "wall_s": time.perf_counter() - started,
    }
    for row in (*rows, summary):
        print(json.dumps(row), flush=True)
    return {"rows": rows, "summary": summary, "per_image": per_image}


def main(
    description: str = __doc__, make: Variants | None = None, out: str = "benchmarks/out/masks_refiners.json"
) -> None:
    """The command line of this script and of scripts that measure other variants the same way."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["ade_chairs", "ccp", "pascal_person"])
    parser.add_argument("--limit", type=int, default=0, help="at most this many validation images (0: all)")
    parser.add_argument("--out", default=out)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", UserWarning)  # the random walker's tolerance notes
    cfg = load_config("cpu").foreground
    phi = create_phi(cfg)
    results = {}
    for name in args.datasets:
        root = Path(name) if Path(name).is_dir() else SHARED / name
        if not root.is_dir():
            print(f"skipping {name}: {root} not found", file=sys.stderr)
            continue
        results[root.name] = evaluate(root, args.limit, cfg, phi, make)
    atomic_write_json(Path(args.out), {"command": " ".join(["python", *sys.argv]), "results": results})


if __name__ == "__main__":
    main()
