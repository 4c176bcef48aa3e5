"""Restart candidates averaged instead of one kept (not adopted; BENCHMARKS.md, "f's backbone", "Not adopted").

For every subset of ``--choose`` validation runs, the run of highest R² (the restarts' criterion, read from the
record of ``--r2``) is the reference, as ``train.restarts`` keeps it. Every other run's parts are matched to the
reference's by the Hungarian assignment on their soft co-occurrence over the foreground of 120 training images
(no labels); its *agreement* is the matched share of that co-occurrence. The members (the reference and the runs
whose agreement is at least tau; ``top3``: the three of highest R²) have their part probabilities averaged and
the argmax is scored on the validation split (FG-NMI / FG-ARI, unrefined; the best tau also refined by the
guided filter at 0.16), as the mean over all subsets.

    python benchmarks/ensemble_restarts.py --quality RUN_SEED_0 ... RUN_SEED_7 --data ../shared/data/ccp \\
        --r2 docs/experiments/2026-12-05-val-early-choice-8-seeds.json --out ccp_ensemble.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from functools import cache
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from partdiscovery.config import PredictConfig
from partdiscovery.data import open_dataset
from partdiscovery.data.part_folder import HOLDOUT_SPLIT
from partdiscovery.evaluation.metrics import PartMetrics
from partdiscovery.models.refine import refine_probs
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.utils.io import atomic_write_json

TAUS = (0.0, 0.7, 0.8, 0.85, 0.9)


def align(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, float]:
    """Match ``other``'s parts to ``reference``'s: ``float [K, N]`` part probabilities of the same N foreground
    pixels -> (``perm`` with ``other[perm[k]]`` matched to part k, the matched share of the co-occurrence)."""
    co = reference @ other.T
    rows, cols = linear_sum_assignment(-co)
    return cols[np.argsort(rows)], float(co[rows, cols].sum() / co.sum())


def average(members: list[np.ndarray], perms: list[np.ndarray]) -> np.ndarray:
    """Mean of ``[K+1, H, W]`` probabilities (background first), each member's parts reordered by its ``perm``."""
    return np.mean([np.concatenate([p[:1], p[1:][perm]]) for p, perm in zip(members, perms)], axis=0)


class _First:
    """The first ``n`` images of a dataset."""

    def __init__(self, dataset, n: int) -> None:
        self.dataset, self.n = dataset, min(n, len(dataset))

    def __len__(self) -> int:
        return self.n

    def __getattr__(self, name):
        return getattr(self.dataset, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", nargs="+", type=Path, required=True, help="quality.py --out folders")
    parser.add_argument("--data", required=True, help="the part folder the runs trained on")
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--choose", type=int, default=5)
    parser.add_argument("--r2", type=Path, required=True, help="a record with runs.<seed>.r2.120 per dataset")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from restart_criteria import validation_runs  # a sibling script: benchmarks/ is on the path when run

    torch.set_num_threads(1)
    name = Path(args.data).name
    runs = validation_runs(args.quality, args.parts, name)
    r2 = {s: json.loads(args.r2.read_text())[name]["runs"][str(s)]["r2"]["120"] for s in runs}
    val = open_dataset(args.data, "val", require_parts=True)
    train = _First(open_dataset(args.data, HOLDOUT_SPLIT, require_parts=False), 120)
    probs, cells = {}, {}
    for seed, (run, _, _) in runs.items():
        seg = PartSegmenter.load(run, device="cpu", refine="none")
        probs[seed] = [
            p.probs.astype(np.float16) for p in seg.predict_dataset(val, keep_probs=True, progress=False)
        ]
        fitted = seg.predict_dataset(train, keep_probs=True, progress=False)
        cells[seed] = np.concatenate([p.probs[1:].reshape(args.parts, -1)[:, ::4] for p in fitted], 1)
    raws = [val.load(i) for i in range(len(val))]
    guided = PredictConfig(refine="guided", refine_radius=0.16, refine_eps=1e-4)

    def score(maps: list[np.ndarray], refine: bool) -> list[float]:
        metrics = PartMetrics()
        for raw, p in zip(raws, maps):
            t = torch.from_numpy(p.astype(np.float32))[None]
            if refine:
                image = torch.from_numpy(np.array(raw.image.convert("RGB"), dtype=np.float32)).permute(
                    2, 0, 1
                )
                t = refine_probs(image[None] / 255, t, guided)
            metrics.update(np.where(raw.fg_mask, t[0].argmax(0).numpy(), 0), raw.part_labels, raw.fg_mask)
        s = metrics.summary()
        return [round(s["fg_nmi"], 2), round(s["fg_ari"], 2)]

    matched = {(a, b): align(cells[a], cells[b]) for a in runs for b in runs}

    @cache
    def ensemble(ref: int, others: tuple[int, ...], refine: bool) -> list[float]:
        seeds = (ref, *others)
        perms = [np.arange(args.parts)] + [matched[(ref, s)][0] for s in others]
        maps = [average([probs[s][i].astype(np.float32) for s in seeds], perms) for i in range(len(raws))]
        return score(maps, refine)

    def rows(refine: bool, taus) -> dict[str, list[float]]:
        kept = {f"tau{t}": [] for t in taus} | {"kept": [], "top3": []}
        for subset in itertools.combinations(sorted(runs), args.choose):
            order = sorted(subset, key=lambda s: -r2[s])
            ref = order[0]
            kept["kept"].append(ensemble(ref, (), refine))
            for t in taus:
                agree = tuple(sorted(s for s in order[1:] if matched[(ref, s)][1] >= t))
                kept[f"tau{t}"].append(ensemble(ref, agree, refine))
            kept["top3"].append(ensemble(ref, tuple(sorted(order[1:3])), refine))
        return {k: np.mean(v, axis=0).round(2).tolist() for k, v in kept.items() if v}

    summary = rows(False, TAUS)
    best = max(TAUS, key=lambda t: summary[f"tau{t}"][0])
    summary["refined"] = {k: v for k, v in rows(True, [best]).items() if k in ("kept", f"tau{best}")}
    record = {
        "single": {s: ensemble(s, (), False) for s in runs},
        "agreement": {f"{a}-{b}": v[1] for (a, b), v in matched.items()},
        "r2": r2,
        "summary": summary,
    }
    print(json.dumps(summary))
    if args.out:
        atomic_write_json(args.out, record)


if __name__ == "__main__":
    main()
