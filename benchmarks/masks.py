"""Automatic foreground masks: IoU against the given masks, per approach, and time per image.

For each dataset (default: the shared real datasets ``ccp``, ``pascal_person``, ``ade_chairs``) the
foreground model is fitted on the **train split's images only, never their masks**, and every
approach (a coarse co-segmentation x a refiner) predicts the masks of the evaluation images, which are
scored against the dataset's given masks:

- ``--split val``: a hashed 20% of the train ids (md5 of the id, mod 5 == 0); used to choose the approach.
- ``--split test``: the test split; reported once, for the approaches chosen on val.

IoU is the mean over images of |pred ∩ gt| / |pred ∪ gt| at the image's resolution; precision and recall
(means over images of |pred ∩ gt| / |pred| and / |gt|) say which way a mask errs, which matters for training:
at the object's rim, masks that spill into the background cost the parts more than masks that miss it
(BENCHMARKS.md, "Which mask errors cost the parts"). Time per image is
the wall time of φ features (once per image, shared by the approaches) plus each approach's
clustering assignment and refinement, on the threads given by ``--threads``.

    python benchmarks/masks.py --split val
    python benchmarks/masks.py --split test --approaches kmeans_border+grabcut --update BENCHMARKS.md
    python benchmarks/masks.py --split val --approaches border_contrast+grabcut --sweep certain_fraction=0,0.05

``--sweep KEY=V1,V2,...`` scores every approach at every value of one foreground setting, on the same φ
features (a row per approach and value): for settings of the coarse step and the refiner
(``certain_fraction``, ``grabcut_iterations``, ``refine_size``, ...); φ and the fitting cells are computed
once with the base config, so ``input_size``, ``feature_extractor`` and ``fit_*`` are not swept this way.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from partdiscovery.config import Config, ForegroundConfig, load_config, with_overrides
from partdiscovery.data import PartFolderDataset
from partdiscovery.foreground import COARSE, ForegroundModel, create_phi, image_features
from partdiscovery.foreground.cosegment import NEEDS_FIT, NEEDS_TEACHER
from partdiscovery.foreground.model import collect_fit_cells, fit_subset
from partdiscovery.utils.io import atomic_write_json, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_APPROACHES = [
    "box+grabcut",
    "cluster2+none",
    "cluster2+grabcut",
    "kmeans_border+none",
    "kmeans_border+grabcut",
    "border_contrast+none",
    "border_contrast+grabcut",
    "selftrain+none",
    "selftrain+grabcut",
]
BEGIN, END = "<!-- masks.py:begin -->", "<!-- masks.py:end -->"


def is_val(image_id: str) -> bool:
    """The hashed 20% of train ids used for choosing the approach (stable across machines).

    Not the package's validation split (:func:`partdiscovery.data.part_folder.validation_ids`, sha256, which
    ``train --holdout-val``, ``quality.py --split val`` and ``masks_from_run.py --ids val`` use): this one
    predates it and is kept so that the mask tables recorded with it reproduce. The two share about a fifth of
    their ids (chance), so a validation IoU of this family and one of ``masks_from_run.py`` are on different
    images. The foreground model is fitted on the train split's images, these included (labels are never used)."""
    return int(hashlib.md5(image_id.encode()).hexdigest(), 16) % 5 == 0


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return float(np.logical_and(pred, gt).sum() / union) if union else 1.0


def precision_recall(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """|pred ∩ gt| / |pred| and |pred ∩ gt| / |gt| (1 where the denominator is empty)."""
    both = np.logical_and(pred, gt).sum()
    n_pred, n_gt = pred.sum(), gt.sum()
    return float(both / n_pred) if n_pred else 1.0, float(both / n_gt) if n_gt else 1.0


def mask_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, float]:
    """IoU, precision and recall of one predicted mask."""
    return (iou(pred, gt), *precision_recall(pred, gt))


def sweep_configs(cfg: ForegroundConfig, sweep: str | None) -> dict[str, ForegroundConfig]:
    """``{label: config}``: ``cfg`` alone (label ``""``), or one copy per value of ``KEY=V1,V2,...``."""
    if not sweep:
        return {"": cfg}
    key, values = sweep.split("=", 1)
    field = key.removeprefix("foreground.")
    return {
        f"{field}={value}": with_overrides(Config(foreground=cfg), [f"foreground.{field}={value}"]).foreground
        for value in values.split(",")
    }


def evaluate_dataset(
    root: Path,
    split: str,
    approaches: list[str],
    cfg: ForegroundConfig,
    limit: int,
    sweep: str | None = None,
) -> list[dict]:
    train = PartFolderDataset(root, "train", validate=False)
    if split == "val":
        indices = [i for i, image_id in enumerate(train.ids) if is_val(image_id)]
        evaluation = train
    else:
        evaluation = PartFolderDataset(root, "test", validate=False)
        indices = list(range(len(evaluation)))
    indices = indices[:limit] if limit else indices
    phi = create_phi(cfg)

    # Fit: one pass of φ over the fitting subset of the train images (images only), shared by the approaches.
    started = time.perf_counter()
    teacher_needed = any(a.split("+")[0] in NEEDS_TEACHER for a in approaches)
    fit_cfg = ForegroundConfig(**{**cfg.__dict__, "coarse": "selftrain" if teacher_needed else "cluster2"})
    loaders = [lambda i=i: train.load(i).image for i in range(len(train))]
    cells, border, teacher = collect_fit_cells(loaders, fit_cfg, phi)
    chosen = fit_subset(len(train), cfg.fit_images)
    features_fit_s = time.perf_counter() - started
    models = {}
    for approach in approaches:
        for label, scfg in sweep_configs(cfg, sweep).items():
            coarse_name, refine = approach.split("+")
            acfg = ForegroundConfig(**{**scfg.__dict__, "coarse": coarse_name, "refine": refine})
            t = time.perf_counter()
            coarse = COARSE.build(coarse_name, cells, border, acfg, teacher)
            name = f"{approach} {label}".strip()
            models[name] = (ForegroundModel(acfg, coarse, phi), time.perf_counter() - t)

    scores = {a: [] for a in models}  # (IoU, precision, recall) per image
    times = {a: 0.0 for a in models}
    feature_s = 0.0
    for i in indices:
        sample = evaluation.load(i)
        t = time.perf_counter()
        features = image_features(phi, sample.image, cfg.input_size)
        feature_s += time.perf_counter() - t
        for approach, (model, _) in models.items():
            t = time.perf_counter()
            pred = model.predict(sample.image, features)
            times[approach] += time.perf_counter() - t
            scores[approach].append(mask_scores(pred, sample.fg_mask))
    n = len(indices)
    rows = []
    for approach, (model, fit_s) in models.items():
        values, precision, recall = np.array(scores[approach]).reshape(-1, 3).T
        needs_fit = approach.split("+")[0] in NEEDS_FIT
        refined = model.cfg.refine != "none"
        rows.append(
            {
                "dataset": root.name,
                "split": split,
                "approach": approach,
                "n_images": n,
                "iou": 100 * float(values.mean()),
                "iou_median": 100 * float(np.median(values)),
                "precision": 100 * float(precision.mean()),
                "recall": 100 * float(recall.mean()),
                "certain_fraction": model.cfg.certain_fraction if refined else None,
                "below_50": int((values < 0.5).sum()),
                "ms_per_image": 1000 * (feature_s + times[approach]) / n,
                "fit_s": features_fit_s + fit_s if needs_fit else 0.0,
                "fit_images": len(chosen),
                "object_clusters": (
                    f"{int(model.coarse.foreground.sum())}/{len(model.coarse.foreground)}"
                    if hasattr(model.coarse, "foreground")
                    else "-"
                ),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict], command: str, wall_s: float, threads: int, cfg: ForegroundConfig) -> list[str]:
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (φ and the refiners on the CPU), "
        f"torch {torch.__version__}, {threads} thread(s); "
        f"date {datetime.date.today().isoformat()}; total wall time {wall_s:.0f} s  ",
        f"Foreground config: input {cfg.input_size} px, k = {cfg.clusters} (kmeans_border), border ratio "
        f"{cfg.border_ratio}, fitted on <= {cfg.fit_images} train images (no masks), {cfg.fit_pixels} φ cells",
        "",
        "| dataset | split | approach | images | mean IoU | median IoU | precision | recall | images < 50% "
        "| ms / image | fit s | object clusters |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['split']} | {r['approach']} | {r['n_images']} | {r['iou']:.1f} | "
            f"{r['iou_median']:.1f} | {r['precision']:.1f} | {r['recall']:.1f} | {r['below_50']} | "
            f"{r['ms_per_image']:.0f} | {r['fit_s']:.0f} | "
            f"{r['object_clusters']} |"
        )
    return lines


def replace_section(path: Path, text: str) -> None:
    """Replace the text between this script's markers in ``path`` (append the section if absent)."""
    doc = path.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        doc = doc[: doc.index(BEGIN)] + block + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_text(path, doc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["ccp", "pascal_person", "ade_chairs"])
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--approaches", nargs="+", default=DEFAULT_APPROACHES, help="COARSE+REFINER names")
    parser.add_argument(
        "--set", dest="overrides", nargs="*", default=[], help="foreground.key=value overrides"
    )
    parser.add_argument(
        "--sweep", default=None, help="KEY=V1,V2,...: score each approach at each value of one foreground key"
    )
    parser.add_argument("--limit", type=int, default=0, help="at most this many evaluation images (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "masks"))
    parser.add_argument("--update", default=None, help="write the table into this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    cfg = load_config("cpu", overrides=args.overrides).foreground
    started = time.perf_counter()
    rows = []
    for name in args.datasets:
        root = Path(name) if Path(name).is_dir() else SHARED / name
        if not root.is_dir():
            print(f"skipping {name}: {root} not found", file=sys.stderr)
            continue
        rows += evaluate_dataset(root, args.split, args.approaches, cfg, args.limit, args.sweep)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix().split(str(ROOT) + "/")[-1], *sys.argv[1:]])
    lines = table(rows, command, time.perf_counter() - started, args.threads, cfg)
    out = Path(args.out)
    atomic_write_json(out / f"masks_{args.split}.json", rows)
    atomic_write_text(out / f"masks_{args.split}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.update:
        replace_section(Path(args.update), "\n".join(lines))


if __name__ == "__main__":
    main()
