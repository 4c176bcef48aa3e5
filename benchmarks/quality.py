"""Quality benchmark: the method vs k-means, DFF and SCOPS on the same data and evaluation.

For every dataset (default: a synthetic set plus ``../shared/data/ccp`` and ``../shared/data/pascal_person``
when present) and every K, it trains the method and SCOPS with the same CPU budget (steps, batch, input
size), fits k-means and DFF on the training split, scores everything on the test split (FG-NMI, FG-ARI,
NMI, ARI, %), and writes a markdown table with wall times to ``OUT/quality.md`` (and ``quality.json``, one
row per method, seed and K; default ``OUT``: ``benchmarks/out/quality``), plus one overlay grid per dataset.
Runs land in ``OUT/DATASET/SPLIT/K<K>/<method>_seed<S>/run`` (baselines in ``.../K<K>/<method>``; each trained
row records its ``seed`` and its ``run`` relative to ``OUT``), so a second call with other seeds or the other split
leaves the first call's runs in place; ``quality.json`` and ``quality.md`` hold the last call's rows only, so the
studies that read them (``restart_criteria.py``, ``refine_parts.py``, ``ensemble_restarts.py``) take one ``OUT``
per call (several ``--quality`` folders).
``--ablation`` also trains the method with each loss dropped in turn (first K only, every seed). The trained
methods use the ``cpu`` preset on the synthetic set and the ``photos`` preset (192 px) on real photographs; the
baselines use the same input size.

    python benchmarks/quality.py                    # full: K = 4 and 8, all datasets, the presets' steps
    python benchmarks/quality.py --quick            # K = 4, 40 steps, one run, <= 200/100 images: < 10 minutes
    python benchmarks/quality.py --datasets ccp pascal_person --ablation --update BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import sys
import time
import warnings
from pathlib import Path

import torch

from partdiscovery.config import load_config
from partdiscovery.data import open_dataset
from partdiscovery.data.image_io import read_labels
from partdiscovery.data.part_folder import HOLDOUT_SPLIT
from partdiscovery.data.synth import generate_synthetic_dataset
from partdiscovery.evaluation import read_prediction_dir, score_pixels, write_predictions
from partdiscovery.runs.checkpoint import checkpoint_path
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.utils.io import atomic_save_image, atomic_write_json, atomic_write_text
from partdiscovery.viz import colourise, grid, overlay
from partdiscovery.workflows import run_baseline, run_training

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LOSSES = ("feature", "contrastive", "visual", "equivariance")


def subset_folder(source: Path, target: Path, max_train: int, max_test: int, seed: int = 0) -> Path:
    """A part folder at ``target`` with at most ``max_train`` / ``max_test`` ids of ``source``'s splits
    (a seeded random choice, kept in file order) whose images, masks and parts link to ``source``'s,
    so that nothing is copied. Returns ``source`` itself when both splits are already small enough."""
    splits = {name: (source / f"{name}.txt").read_text().split() for name in ("train", "test")}
    limits = {"train": max_train, "test": max_test}
    if all(len(ids) <= limits[name] for name, ids in splits.items()):
        return source
    target.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for name, ids in splits.items():
        keep = set(rng.sample(ids, min(limits[name], len(ids))))
        atomic_write_text(target / f"{name}.txt", "\n".join(i for i in ids if i in keep) + "\n")
    for entry in ("images", "masks", "parts", "parts.json"):
        link = target / entry
        if not link.exists():
            link.symlink_to((source / entry).resolve())
    return target


def dataset_paths(names: list[str], out: Path, quick: bool) -> dict[str, Path]:
    """Name -> part folder; ``quick`` uses at most 200 training and 100 test images of each."""
    paths = {}
    for name in names:
        if name == "synth":
            target = out / "data" / "synth"
            if not (target / "test.txt").exists():
                generate_synthetic_dataset(target, n=400, num_parts=4, size=128, seed=0, overwrite=True)
            paths[name] = target
        elif "/" in name and Path(name).is_dir():  # any part folder, named by its folder
            paths[Path(name).name] = Path(name)
        elif (SHARED / name).is_dir():
            paths[name] = SHARED / name
        else:
            print(f"skipping {name}: {SHARED / name} not found", file=sys.stderr)
    if quick:
        paths = {
            name: subset_folder(path, out / "data" / f"{name}_quick", 200, 100)
            for name, path in paths.items()
        }
    return paths


SPLITS = {"test": ("train", "test"), "val": (HOLDOUT_SPLIT, "val")}
"""``--split`` -> (split that trains / fits, split that is scored). Tuning uses ``val``: a hashed 20 %
of each training split, held out of training (:func:`partdiscovery.data.part_folder.validation_ids`)."""


def score_dir(data: Path, pred_dir: Path, split: str = "test") -> dict:
    return score_pixels(read_prediction_dir(pred_dir, open_dataset(data, split, require_parts=True)))


def train_and_predict(
    data: Path,
    out: Path,
    preset: str,
    overrides: list[str],
    split: str = "test",
    curve: list[int] | None = None,
    device: str = "cpu",
) -> tuple[dict, float]:
    """Train on the split that ``split`` tunes against, score on ``split``. With ``curve``, also score the
    checkpoints at those steps (one run; the schedule spans the whole run): ``result["curve"]``."""
    fit_split, eval_split = SPLITS[split]
    cfg = load_config(preset, overrides=overrides + (["train.keep_checkpoints=0"] if curve else []))
    started = time.perf_counter()
    run_training(cfg, str(data), out / "run", device=device, overwrite=True, quiet=True, split=fit_split)
    wall = time.perf_counter() - started
    scored = open_dataset(data, eval_split, require_parts=True)

    def score(model: Path, pred: Path) -> dict:
        seg = PartSegmenter.load(model, device=device)
        for _ in write_predictions(seg.predict_dataset(scored, progress=False), pred):
            pass
        return score_dir(data, pred, eval_split)

    result = score(out / "run", out / "pred")
    if curve:
        result["curve"] = {
            step: score(checkpoint_path(out / "run", step), out / f"pred_{step}")
            for step in curve
            if checkpoint_path(out / "run", step).is_file()
        }
    return result, wall


def learned_background_rows(
    data: Path, out: Path, preset: str, overrides: list[str], split: str = "test", device: str = "cpu"
) -> list[dict]:
    """Train with a learned background on ``split``'s training images; score ``split``'s evaluation images with
    the given masks and with the model's own background."""
    t = time.perf_counter()
    with_masks, _ = train_and_predict(
        data, out, preset, overrides + ["model.learned_background=true"], split, device=device
    )
    seg = PartSegmenter.load(out / "run", device=device)
    scored = open_dataset(data, SPLITS[split][1], require_parts=True)
    own = score_pixels(seg.predict_dataset(scored, use_masks=False, progress=False), use_given_masks=False)
    wall = round(time.perf_counter() - t, 1)
    return [
        {"method": "method + learned bg, given masks", **with_masks, "wall_s": wall},
        {"method": "method + learned bg, own background", **own, "wall_s": wall},
    ]


def save_grid(data: Path, pred_dirs: dict[str, Path], path: Path, n: int = 6) -> None:
    test = open_dataset(data, "test", require_parts=True)
    rows = []
    for index in range(min(n, len(test))):
        raw = test.load(index)
        from PIL import Image

        row = [raw.image, Image.fromarray(colourise(raw.part_labels))]
        row += [overlay(raw.image, read_labels(d / f"{raw.id}.png")) for d in pred_dirs.values()]
        rows.append(row)
    atomic_save_image(path, grid(rows, cell=128))


BEGIN, END = "<!-- quality.py:begin -->", "<!-- quality.py:end -->"


def replace_section(path: Path, text: str) -> None:
    """Put ``text`` between the :data:`BEGIN` and :data:`END` markers of ``path`` (atomically), so the
    measured table lands in BENCHMARKS.md exactly as the script wrote it, next to hand-written prose."""
    doc = path.read_text(encoding="utf-8")
    start, stop = doc.find(BEGIN), doc.find(END)
    if start < 0 or stop < start:
        raise SystemExit(f"{path}: needs the markers {BEGIN} and {END} (in that order) around the table")
    atomic_write_text(path, doc[: start + len(BEGIN)] + "\n" + text + "\n" + doc[stop:])


def run_entry(folder: Path, out: Path) -> str:
    """A row's ``run``: the run folder relative to ``--out``, so that a moved or copied ``OUT`` still finds its runs
    (readers join it to the folder of ``quality.json``)."""
    return str((folder / "run").relative_to(out))


def table_row(
    context: dict,
    label: str,
    result: dict,
    out: Path,
    folder: Path | None = None,
    seed: int | None = None,
    started: float | None = None,
) -> dict:
    """One row of ``quality.json``: the dataset, K, input, split and steps of ``context``, the scores of ``result``,
    and for a trained run its ``seed`` and ``run`` folder (relative to ``out``); a baseline (``folder`` None) has
    neither, nor steps. ``started``: the ``time.perf_counter()`` of the row's work, for its ``wall_s``."""
    trained = folder is not None
    return {
        "dataset": context["dataset"],
        "K": context["K"],
        "method": label,
        **result,
        **({"wall_s": round(time.perf_counter() - started, 1)} if started is not None else {}),
        "steps": context["steps"] if trained else None,
        "input": context["input"],
        "split": context["split"],
        "seed": seed,
        "run": run_entry(folder, out) if trained else None,
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--datasets",
        nargs="+",
        default=["synth", "ccp", "pascal_person"],
        help="synth, a folder name under ../shared/data, or the path of any part folder",
    )
    ap.add_argument("--parts", nargs="+", type=int, default=None, help="default: 4 8 (quick: 4)")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="train.steps, self-training's included (default: the preset's; quick: 40)",
    )
    ap.add_argument("--methods", nargs="+", default=["method", "scops", "kmeans", "dff"])
    ap.add_argument("--ablation", action="store_true", help="also drop each loss in turn (first K only)")
    ap.add_argument(
        "--learned-background",
        action="store_true",
        help="also train with a learned background and score it without the masks (first K only)",
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--preset",
        default=None,
        help="preset of the trained methods (default: cpu for synth, photos for real photographs)",
    )
    ap.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for the trained methods (e.g. data.input_size=160); k-means and DFF take their φ "
        "(model.feature_extractor, model.feature_layers) and input size from the same config",
    )
    ap.add_argument(
        "--update",
        metavar="MARKDOWN",
        help=f"also replace the part of this file between {BEGIN!r} and {END!r} with the table "
        "(e.g. BENCHMARKS.md)",
    )
    ap.add_argument(
        "--split",
        choices=sorted(SPLITS),
        default="test",
        help="test (train on train, score test) or val (train on train minus val, score val: for tuning)",
    )
    ap.add_argument(
        "--curve",
        nargs="+",
        type=int,
        default=None,
        metavar="STEP",
        help="learning curve: also score the method's checkpoints at these steps (one run of --steps)",
    )
    ap.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="training seeds (rows per seed); with the preset's train.restarts = R, seed S trains S..S+R-1",
    )
    ap.add_argument(
        "--out",
        default=str(ROOT / "benchmarks" / "out" / "quality"),
        help="runs under OUT/DATASET/SPLIT/K<K>/; OUT/quality.json and quality.md hold this call's rows only",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="where the trained methods train and predict (cpu, cuda)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    parts_list = args.parts or ([4] if args.quick else [4, 8])
    out = Path(args.out)
    # Steps: --steps, else 40 in quick mode, else the preset's own train.steps (what a user trains).
    steps_set = args.steps or (40 if args.quick else None)
    # Quick mode is a smoke check: one run per seed, not the preset's restarts (train.restarts), and no
    # self-training (its 40 steps would not leave the method any).
    quick = ["train.restarts=1", "train.self_train_steps=0"] if args.quick else []
    common = [f"train.threads={args.threads}", *quick, *args.set]

    started = time.perf_counter()
    rows = []
    fit_split, eval_split = SPLITS[args.split]
    for name, data in dataset_paths(args.datasets, out, args.quick).items():
        preset = args.preset or ("cpu" if name.startswith("synth") else "photos")
        # The baselines use the trained methods' φ (network and layers) and input size.
        cfg = load_config(preset, overrides=common)
        steps = steps_set or cfg.train.steps
        # A learning curve needs a checkpoint at each of its steps.
        every = math.gcd(steps, *args.curve) if args.curve else steps
        base = [f"train.steps={steps}", f"train.checkpoint_every={every}", *common]
        input_size = cfg.data.input_size
        for k in parts_list:
            # The split is in the path, and every trained run's folder names its seed, so that two calls with
            # the same --out (other seeds, the other split) keep each other's runs; quality.json and quality.md
            # are the last call's.
            where = out / name / args.split / f"K{k}"
            pred_dirs: dict[str, Path] = {}
            context = {"dataset": name, "K": k, "input": input_size, "split": eval_split, "steps": steps}

            for method in args.methods:
                trained = method in ("method", "scops")
                for seed in args.seeds if trained else [0]:
                    t = time.perf_counter()
                    folder = where / (f"{method}_seed{seed}" if trained else method)
                    if trained:
                        # SCOPS trains the method's steps, without the method's self-training.
                        scops = [
                            f"train.steps={steps - cfg.train.self_train_steps}",
                            "train.self_train_steps=0",
                        ]
                        extra = ["method=scops", *scops] if method == "scops" else []
                        result, _ = train_and_predict(
                            data,
                            folder,
                            preset,
                            base + [f"model.num_parts={k}", f"train.seed={seed}"] + extra,
                            args.split,
                            args.curve if method == "method" else None,
                            args.device,
                        )
                        pred_dirs.setdefault(method, folder / "pred")
                    else:
                        run_baseline(
                            method,
                            str(data),
                            folder,
                            k,
                            cfg,
                            split=eval_split,
                            fit_split=fit_split,
                            device=args.device,
                            progress=False,
                            overwrite=True,
                        )
                        result = score_dir(data, folder, eval_split)
                        pred_dirs[method] = folder
                    label = method if not trained or len(args.seeds) == 1 else f"{method} (seed {seed})"
                    if trained:
                        rows.append(table_row(context, label, result, out, folder, seed, started=t))
                    else:
                        rows.append(table_row(context, label, result, out, started=t))
                    print(json.dumps(rows[-1]), flush=True)
            if args.learned_background and k == parts_list[0]:
                seed = args.seeds[0]
                folder = where / f"learned_bg_seed{seed}"
                overrides = base + [f"model.num_parts={k}", f"train.seed={seed}"]
                for row in learned_background_rows(data, folder, preset, overrides, args.split, args.device):
                    rows.append(table_row(context, row.pop("method"), row, out, folder, seed))
                    print(json.dumps(rows[-1]), flush=True)
            if k == parts_list[0] and args.split == "test":
                save_grid(data, pred_dirs, out / f"{name}_K{k}_grid.png")
            if args.ablation and k == parts_list[0]:
                for dropped in LOSSES:
                    for seed in args.seeds:
                        t = time.perf_counter()
                        folder = where / f"no_{dropped}_seed{seed}"
                        result, _ = train_and_predict(
                            data,
                            folder,
                            preset,
                            base + [f"model.num_parts={k}", f"train.seed={seed}", f"loss.{dropped}=0"],
                            args.split,
                            device=args.device,
                        )
                        label = f"method without {dropped}"
                        label = label if len(args.seeds) == 1 else f"{label} (seed {seed})"
                        rows.append(table_row(context, label, result, out, folder, seed, started=t))
                        print(json.dumps(rows[-1]), flush=True)

    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    )
    command = "python benchmarks/quality.py " + " ".join(sys.argv[1:])
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {machine}, {args.threads} threads; date {datetime.date.today()}; "
        f"total wall time {time.perf_counter() - started:.0f} s; scored on the {eval_split} split",
        "",
        "| dataset | K | method | FG-NMI | FG-ARI | NMI | ARI | FG IoU | input px | steps | wall s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for step, c in sorted(r.get("curve", {}).items()):
            lines.append(
                f"| {r['dataset']} | {r['K']} | {r['method']} @ step {step} | {c['fg_nmi']:.1f} | "
                f"{c['fg_ari']:.1f} | {c['nmi']:.1f} | {c['ari']:.1f} | - | {r['input']} | {step} | - |"
            )
        lines.append(
            f"| {r['dataset']} | {r['K']} | {r['method']} | {r['fg_nmi']:.1f} | {r['fg_ari']:.1f} | "
            f"{r['nmi']:.1f} | {r['ari']:.1f} | {fmt(r.get('fg_iou'))} | {r['input']} | {r['steps'] or '-'} | "
            f"{r['wall_s']:.0f} |"
        )
    atomic_write_text(out / "quality.md", "\n".join(lines) + "\n")
    if args.update:
        replace_section(Path(args.update), "\n".join(lines))
    atomic_write_json(out / "quality.json", {"command": command, "machine": machine, "rows": rows})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
