"""Two priors for the first round's masks that were tried and not adopted: a centre prior, and border references
filtered by a first pass.

The first round (``border_contrast`` + ``grabcut``, :mod:`partdiscovery.foreground.cosegment`) calls a φ cell object
when it is unlike the image's own border cells. Two ways it could err, and a prior against each:

- ``centre{σ}``: clutter away from the object that is unlike the border (another person, a table beside the chair)
  is taken for the object. Photo collections of one object class are mostly framed on the object, so the
  dissimilarity is multiplied by a Gaussian of the distance to the image centre (``σ`` in units of the image's
  sides) before the Otsu threshold and the certain core.
- ``reffilter``: where the object touches the border, its border cells make it look like background. The border
  cells closer (cosine) to the mean φ of the first pass's object than to the mean of its background are dropped
  from the references, and the dissimilarity is computed again (when at least a quarter of the border is left).

``base`` is the first round as ``partdiscovery masks`` makes it. Each is scored with no refiner and with GrabCut
(the certain core at ``certain_fraction``, as the first round), on the same validation subset as
``benchmarks/masks.py`` (the hashed 20 % of the train ids; their given masks score, never train).

    python benchmarks/masks_priors.py --datasets ade_chairs ccp pascal_person --out benchmarks/out/masks_priors.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from masks import SHARED, iou, is_val, precision_recall  # noqa: E402

from partdiscovery.config import ForegroundConfig  # noqa: E402
from partdiscovery.data import PartFolderDataset  # noqa: E402
from partdiscovery.foreground import create_phi, image_features  # noqa: E402
from partdiscovery.foreground.cosegment import (  # noqa: E402
    BorderContrast,
    dissimilarity,
    otsu_object,
    unit_rows,
)
from partdiscovery.foreground.features import border_cells  # noqa: E402
from partdiscovery.foreground.model import maps_at_size  # noqa: E402
from partdiscovery.foreground.refine import refine_grabcut  # noqa: E402
from partdiscovery.utils.io import atomic_write_json  # noqa: E402

CENTRE_SIGMAS = (0.35, 0.5)


def centre_prior(h: int, w: int, sigma: float) -> np.ndarray:
    """``float32 [h, w]`` Gaussian of the cell centres' distance to the image centre, in units of the sides."""
    y = (np.arange(h) + 0.5) / h - 0.5
    x = (np.arange(w) + 0.5) / w - 0.5
    return np.exp(-(y[:, None] ** 2 + x[None] ** 2) / (2 * sigma**2)).astype(np.float32)


def scores(features: np.ndarray, neighbours: int = BorderContrast.neighbours) -> dict[str, np.ndarray]:
    """``{variant: float32 [h, w]}`` graded object scores of one image's φ cells (higher: more object)."""
    h, w, c = features.shape
    cells = unit_rows(features.reshape(-1, c))
    border = border_cells(h, w).reshape(-1)
    base = BorderContrast(neighbours).score(features)  # the first round's score
    out = {"base": base} | {f"centre{s}": base * centre_prior(h, w, s) for s in CENTRE_SIGMAS}
    out["reffilter"] = base
    first = otsu_object(base).reshape(-1) > 0
    if first.any() and (~first).any():
        keep = border & (cells @ cells[first].mean(0) < cells @ cells[~first].mean(0))
        if keep.sum() >= 0.25 * border.sum():
            out["reffilter"] = dissimilarity(cells, cells[keep], neighbours).reshape(h, w).astype(np.float32)
    return out


def masks(score: np.ndarray, rgb: np.ndarray, cfg: ForegroundConfig) -> dict[str, np.ndarray]:
    """``{refiner: bool [H, W]}``: the Otsu-thresholded score, and GrabCut seeded by it with its certain core (the
    first round's steps, :func:`~partdiscovery.foreground.model.coarse_maps`, on another score)."""
    probability, certain = maps_at_size(otsu_object(score), score, *rgb.shape[:2], cfg.certain_fraction)
    return {"none": probability >= 0.5, "grabcut": refine_grabcut(rgb, probability, cfg, certain)}


def score_dataset(root: Path, phi: torch.nn.Module, cfg: ForegroundConfig) -> dict:
    train = PartFolderDataset(root, "train", validate=False)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    started = time.perf_counter()
    for index in (i for i, image_id in enumerate(train.ids) if is_val(image_id)):
        sample = train.load(index)
        gt = np.asarray(sample.fg_mask) > 0
        rgb = np.asarray(sample.image.convert("RGB"))
        for variant, score in scores(image_features(phi, sample.image, cfg.input_size)).items():
            for refiner, mask in masks(score, rgb, cfg).items():
                rows.setdefault(f"{variant}+{refiner}", []).append(
                    (iou(mask, gt), *precision_recall(mask, gt))
                )
    table = {
        name: dict(
            zip(("iou", "precision", "recall"), (round(100 * float(v), 1) for v in np.mean(r, axis=0)))
        )
        for name, r in rows.items()
    }
    return {
        "images": len(next(iter(rows.values()))),
        "wall_s": round(time.perf_counter() - started),
        "rows": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["ade_chairs", "ccp", "pascal_person"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the scores as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ForegroundConfig()
    phi = create_phi(cfg)
    result = {
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/masks_priors.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
        "datasets": {},
    }
    for name in args.datasets:
        result["datasets"][name] = score_dataset(SHARED / name, phi, cfg)
        print(name, json.dumps(result["datasets"][name]), flush=True)
    if args.out:
        atomic_write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
