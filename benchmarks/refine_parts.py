"""Edge-aware refinement of the part maps (``predict.refine``): the same trained runs and the same clusterings
scored with and without it, at several window radii, on one split.

Each run of ``benchmarks/quality.py`` (``--split val --set train.restarts=1``; its ``quality.json`` names the
runs) is loaded once; f's part maps of every image are combined with the given masks as ``predict`` combines
them, then refined by every setting and scored (FG-NMI / FG-ARI); ``plain`` rows blur the maps by a box of the
same window without the image as guide, to tell the edges' part from the smoothing's. k-means and DFF (the
preset's φ and input size, fitted on ``train_minus_val``) are refined from their hard part maps as ``baseline``
refines them (:func:`partdiscovery.models.refine.refine_labels`).

    python benchmarks/quality.py --datasets ccp --parts 4 --seeds 0 1 2 3 4 5 6 7 --methods method \\
        --steps 120 --split val --threads 1 --set train.restarts=1 --out OUT
    python benchmarks/refine_parts.py --quality OUT --data ../shared/data/ccp --baselines kmeans dff \\
        --radii 0.08 0.16 0.24 --out ccp_refine.json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import kornia
import numpy as np
import torch

from partdiscovery.config import PredictConfig, load_config
from partdiscovery.data import open_dataset
from partdiscovery.data.image_io import read_labels
from partdiscovery.data.part_folder import HOLDOUT_SPLIT
from partdiscovery.evaluation.metrics import PartMetrics
from partdiscovery.models.refine import refine_labels, refine_probs
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.utils.io import atomic_write_json
from partdiscovery.workflows import run_baseline

ROOT = Path(__file__).resolve().parents[1]


def _validation_runs(folders: list[Path], parts: int, dataset: str) -> dict:
    spec = importlib.util.spec_from_file_location(
        "restart_criteria", ROOT / "benchmarks" / "restart_criteria.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("restart_criteria", module)
    spec.loader.exec_module(module)
    return module.validation_runs(folders, parts, dataset)


def settings(radii: list[float], eps: float) -> dict[str, PredictConfig]:
    """``{row name: PredictConfig}``: no refinement, then the guided filter at each radius."""
    rows = {"none": PredictConfig(refine="none")}
    for radius in radii:
        rows[f"guided {radius}"] = PredictConfig(refine="guided", refine_radius=radius, refine_eps=eps)
    return rows


def plain_blur(probs: torch.Tensor, radius: float) -> torch.Tensor:
    """The part channels box-blurred by the guided filter's window, no guide: smoothing alone."""
    r = max(1, round(radius * min(probs.shape[-2:])))
    parts = kornia.filters.box_blur(probs[:, 1:], (2 * r + 1, 2 * r + 1), separable=True)
    return torch.cat([probs[:, :1], parts], dim=1)


def score_run(
    run: Path, dataset, rows: dict[str, PredictConfig], radii: list[float]
) -> dict[str, list[float]]:
    """FG-NMI / FG-ARI of one trained run under every row (and a plain blur per radius): f's maps combined with
    the given masks by ``predict_dataset`` (unrefined), then refined here by each row."""
    seg = PartSegmenter.load(run, device="cpu", refine="none")
    metrics = {name: PartMetrics() for name in [*rows, *(f"plain {r}" for r in radii)]}
    predictions = seg.predict_dataset(dataset, keep_probs=True, progress=False)
    for index, pred in enumerate(predictions):
        raw = dataset.load(index)
        image = torch.from_numpy(np.array(raw.image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
        probs = torch.from_numpy(pred.probs)[None]
        variants = {name: refine_probs(image / 255, probs, cfg) for name, cfg in rows.items()}
        variants.update({f"plain {r}": plain_blur(probs, r) for r in radii})
        for name, refined in variants.items():
            labels = seg.labels_from_probs(refined[0])
            metrics[name].update(np.where(raw.fg_mask, labels, 0), raw.part_labels, raw.fg_mask)
    return {name: _pair(m) for name, m in metrics.items()}


def score_baseline(
    pred_dir: Path, dataset, parts: int, rows: dict[str, PredictConfig]
) -> dict[str, list[float]]:
    """FG-NMI / FG-ARI of a clustering's predictions refined by every row."""
    metrics = {name: PartMetrics() for name in rows}
    for index in range(len(dataset)):
        raw = dataset.load(index)
        labels = np.where(raw.fg_mask, read_labels(pred_dir / f"{raw.id}.png"), 0)
        image = np.array(raw.image.convert("RGB"))
        for name, cfg in rows.items():
            refined = refine_labels(image, labels, parts, cfg)
            metrics[name].update(np.where(raw.fg_mask, refined, 0), raw.part_labels, raw.fg_mask)
    return {name: _pair(m) for name, m in metrics.items()}


def _pair(metrics: PartMetrics) -> list[float]:
    summary = metrics.summary()
    return [round(summary["fg_nmi"], 2), round(summary["fg_ari"], 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", nargs="*", type=Path, default=[], help="quality.py --out folders")
    parser.add_argument("--data", required=True, help="the part folder the runs trained on")
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--split", default="val")
    parser.add_argument(
        "--baselines",
        nargs="*",
        default=[],
        help="kmeans / dff, fitted on train (train_minus_val for --split val)",
    )
    parser.add_argument("--preset", default="photos", help="φ and input size of the baselines")
    parser.add_argument("--radii", nargs="+", type=float, default=[0.08, 0.16, 0.24])
    parser.add_argument("--eps", type=float, default=1e-4)
    parser.add_argument(
        "--work", type=Path, default=Path("benchmarks/out/refine_parts"), help="baselines' folder"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the record as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = open_dataset(args.data, args.split, require_parts=True)
    rows = settings(args.radii, args.eps)
    record = {"data": args.data, "split": args.split, "parts": args.parts, "eps": args.eps, "runs": {}}
    for seed, (run, _, _) in _validation_runs(args.quality, args.parts, Path(args.data).name).items():
        record["runs"][f"method seed {seed}"] = score_run(run, dataset, rows, args.radii)
        print(json.dumps({f"method seed {seed}": record["runs"][f"method seed {seed}"]}), flush=True)
    cfg = load_config(args.preset)
    cfg = dataclasses.replace(cfg, predict=PredictConfig(refine="none"))  # refined here, at every radius
    for name in args.baselines:
        # The preset names the baselines' φ and input size: a folder per preset, so that another --preset refits.
        folder = args.work / f"{Path(args.data).name}_{name}_K{args.parts}_{args.split}_{args.preset}"
        fit_split = HOLDOUT_SPLIT if args.split == "val" else "train"
        if not (folder / "baseline_info.json").is_file():
            run_baseline(
                name,
                args.data,
                folder,
                args.parts,
                cfg,
                split=args.split,
                fit_split=fit_split,
                overwrite=True,
            )
        record["runs"][name] = score_baseline(folder, dataset, args.parts, rows)
        print(json.dumps({name: record["runs"][name]}), flush=True)
    if args.out:
        atomic_write_json(args.out, record)


if __name__ == "__main__":
    main()
