"""Foreground alternatives that were tried and not adopted: boundary connectivity and an edge-aware filter.

The chosen coarse step, ``border_contrast``, calls a φ cell object when it is unlike the image's border cells;
an object that touches the border (a person cut off at the knees) then looks like background where it does.
*Boundary connectivity* (Zhu, Liang, Wei, Sun, "Saliency Optimization from Robust Background Detection",
CVPR 2014) asks instead how much of a region's extent lies on the border: with geodesic distances between φ
cells (edges between 8-neighbours weighted by their cosine dissimilarity, raised to ``power``), a soft region
around each cell has area ``A = sum_i exp(-d^2 / 2 s^2)`` and border length ``L`` (the same sum over border
cells), ``s`` the ``quantile`` of the image's geodesic distances; ``BndCon = L / sqrt(A)`` and the object
probability is ``exp(-BndCon^2 / 2)`` (the paper's sigma of 1). Scored alone (``bnd``), times the border
contrast (``bc*bnd``), and as a background-weighted contrast (``wctr*bnd``: dissimilarity to all cells weighted
by their background probability, times ``bnd``).

Each map is thresholded by Otsu (as ``border_contrast``) and refined by ``none``, a guided filter of the soft map
(kornia's ``guided_blur``, radius 16 px, the image as guide: edge-aware without GrabCut's colour models) or
``grabcut`` with the certain core of the default config, exactly as ``partdiscovery masks`` refines. Scored
like ``benchmarks/masks.py`` (mean over images of IoU, precision, recall against the given masks) on the
validation images (the hashed 20 % of train ids), or on all train images with ``--images train`` (nothing
here is fitted, so the train masks are never seen before scoring).

    python benchmarks/masks_connectivity.py --datasets ccp pascal_person
    python benchmarks/masks_connectivity.py --datasets ade_chairs --images train
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import kornia
import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path
from skimage.filters import threshold_otsu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from masks import SHARED, is_val, mask_scores  # noqa: E402

from partdiscovery.config import ForegroundConfig  # noqa: E402
from partdiscovery.data import PartFolderDataset  # noqa: E402
from partdiscovery.foreground import create_phi, image_features  # noqa: E402
from partdiscovery.foreground.cosegment import BorderContrast, certain_core  # noqa: E402
from partdiscovery.foreground.features import border_cells  # noqa: E402
from partdiscovery.foreground.model import upsample  # noqa: E402
from partdiscovery.foreground.refine import refine_grabcut  # noqa: E402
from partdiscovery.utils.io import atomic_write_json  # noqa: E402

SCORES = ("bc", "bnd:0.05_2", "bc*bnd:0.05_2", "bc*bnd:0.1_2", "wctr*bnd:0.1_2")
REFINERS = ("none", "guided", "grabcut")


def unit_cells(features: np.ndarray) -> np.ndarray:
    """``float32 [h, w, C]`` -> ``[h * w, C]`` L2-normalised."""
    cells = features.reshape(-1, features.shape[-1])
    return cells / np.maximum(np.linalg.norm(cells, axis=1, keepdims=True), 1e-6)


def geodesic_distances(features: np.ndarray, power: float) -> np.ndarray:
    """``float [h * w, h * w]`` shortest-path distances over the 8-neighbour grid of φ cells, each edge
    weighted by ``(1 - cosine similarity) ** power`` (scipy's Dijkstra)."""
    h, w, _ = features.shape
    cells, index = unit_cells(features), np.arange(h * w).reshape(h, w)
    pairs = [
        (index[:, :-1], index[:, 1:]),
        (index[:-1], index[1:]),
        (index[:-1, :-1], index[1:, 1:]),
        (index[:-1, 1:], index[1:, :-1]),
    ]
    a = np.concatenate([p.ravel() for p, _ in pairs])
    b = np.concatenate([q.ravel() for _, q in pairs])
    weight = np.clip(1 - (cells[a] * cells[b]).sum(1), 1e-4, None) ** power
    graph = coo_matrix((weight, (a, b)), shape=(h * w, h * w)).tocsr()
    return shortest_path(graph, method="D", directed=False)


def connectivity_object(features: np.ndarray, quantile: float, power: float) -> np.ndarray:
    """``float [h, w]`` object probability from boundary connectivity (module docstring)."""
    h, w, _ = features.shape
    distances = geodesic_distances(features, power)
    sigma = np.quantile(distances, quantile)
    kernel = np.exp(-(distances**2) / (2 * sigma**2))
    length = kernel[:, border_cells(h, w).ravel()].sum(1)
    bndcon = length / np.sqrt(kernel.sum(1))
    return np.exp(-(bndcon**2) / 2).reshape(h, w)


def coarse_score(name: str, features: np.ndarray) -> np.ndarray:
    """``float32 [h, w]`` graded object score of one of :data:`SCORES` (higher: more object)."""
    if name == "bc":
        return BorderContrast().score(features)
    kind, setting = name.split(":")
    quantile, power = map(float, setting.split("_"))
    obj = connectivity_object(features, quantile, power)
    if kind == "bnd":
        return obj.astype(np.float32)
    if kind == "bc*bnd":
        return (BorderContrast().score(features) * obj).astype(np.float32)
    cells = unit_cells(features)
    background = (1 - obj).ravel()
    weighted = 1 - (cells @ cells.T * background[None]).sum(1) / background.sum()
    return (weighted.reshape(obj.shape) * obj).astype(np.float32)


def refine(name: str, image: np.ndarray, score: np.ndarray, cfg: ForegroundConfig) -> np.ndarray:
    """``bool [H, W]`` mask from the Otsu-thresholded ``score``, by one of :data:`REFINERS`."""
    height, width = image.shape[:2]
    spread = float(np.ptp(score))
    threshold = threshold_otsu(score) if spread > 1e-6 else np.inf
    coarse = (score > threshold).astype(np.float32)
    if name == "none":
        return upsample(coarse, height, width) >= 0.5
    if name == "guided":
        soft = 1 / (1 + np.exp(-(score - threshold) / (0.3 * score.std() + 1e-6)))
        soft = torch.from_numpy(upsample(soft.astype(np.float32), height, width))[None, None]
        guide = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
        return kornia.filters.guided_blur(guide, soft, 33, 1e-3)[0, 0].numpy() >= 0.5
    core = certain_core(coarse, score, cfg.certain_fraction)
    certain = None if core is None else upsample(core.astype(np.float32), height, width) >= 0.5
    return refine_grabcut(image, upsample(coarse, height, width), cfg, certain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ccp", "pascal_person", "ade_chairs"])
    parser.add_argument("--images", choices=["val", "train"], default="val")
    parser.add_argument("--scores", nargs="+", default=list(SCORES))
    parser.add_argument("--refiners", nargs="+", default=list(REFINERS), choices=REFINERS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ForegroundConfig()
    phi = create_phi(cfg)
    rows = []
    for name in args.datasets:
        train = PartFolderDataset(SHARED / name, "train", validate=False)
        indices = [i for i, image_id in enumerate(train.ids) if args.images == "train" or is_val(image_id)]
        scores = {(s, r): [] for s in args.scores for r in args.refiners}
        seconds = dict.fromkeys(scores, 0.0)
        for i in indices:
            sample = train.load(i)
            image = np.asarray(sample.image.convert("RGB"))
            with torch.no_grad():
                features = image_features(phi, sample.image, cfg.input_size)
            for score_name in args.scores:
                started = time.perf_counter()
                score = coarse_score(score_name, features)
                score_s = time.perf_counter() - started
                for refiner in args.refiners:
                    started = time.perf_counter()
                    mask = refine(refiner, image, score, cfg)
                    seconds[score_name, refiner] += score_s + time.perf_counter() - started
                    scores[score_name, refiner].append(mask_scores(mask, sample.fg_mask))
        for (score_name, refiner), values in scores.items():
            iou, precision, recall = 100 * np.asarray(values).mean(0)
            rows.append(
                {
                    "dataset": name,
                    "images": args.images,
                    "n_images": len(indices),
                    "score": score_name,
                    "refiner": refiner,
                    "iou": round(float(iou), 1),
                    "precision": round(float(precision), 1),
                    "recall": round(float(recall), 1),
                    "ms_per_image": round(1000 * seconds[score_name, refiner] / len(indices)),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, rows)


if __name__ == "__main__":
    main()
