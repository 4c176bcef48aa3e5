"""Masks from a trained run's learned background: which way of making them, against the given masks.

A run trained without masks learns a background channel (``train`` turns it on). Its object probability p
(1 - background) can seed a second round of masks. Candidates, each against the first round's masks (the
run's ``RUN/masks``, ``border_contrast`` + ``grabcut``):

- ``f >= t``: p thresholded at t (0.5, 0.4, 0.3);
- ``f + grabcut, core 5 % / 30 %``: GrabCut seeded by p >= 0.5, the top 5 % / 30 % of the object by p fixed
  (``certain_core``, as the first round fixes φ's most object-like cells);
- ``f + grabcut, fixed p >= c``: GrabCut seeded by p >= 0.5, every pixel of p >= c fixed as object (c = 0.6,
  0.75, 0.9; what ``partdiscovery masks --from-run`` does with ``foreground.run_certain`` = c);
- ``f and first round (+ grabcut)``: p inside the first round's mask only.

Scored on the training images' *given* masks (never used by the masks or the run): mean per-image IoU,
precision and recall (%). ``--ids val`` scores the hashed validation ids of the training split (the choice),
``--ids train`` all training images (for a folder too small for a validation subset, like ade_chairs).

    python benchmarks/masks_from_run.py --run RUN --data ../shared/data/ccp --ids val
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from masks import mask_scores  # noqa: E402

from partdiscovery.config import ForegroundConfig  # noqa: E402
from partdiscovery.data.image_io import read_image  # noqa: E402
from partdiscovery.data.part_folder import find_image, read_split_file, validation_ids  # noqa: E402
from partdiscovery.foreground.cosegment import certain_core  # noqa: E402
from partdiscovery.foreground.distill import object_probability  # noqa: E402
from partdiscovery.foreground.refine import refine_grabcut  # noqa: E402
from partdiscovery.segmenter import PartSegmenter  # noqa: E402
from partdiscovery.utils.io import atomic_write_json  # noqa: E402


def candidates(
    cfg: ForegroundConfig,
) -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]:
    """``{name: fn(image uint8 [H, W, 3], p float32 [H, W], first bool [H, W]) -> bool [H, W]}``."""

    def grabcut(image, p, fixed):
        return refine_grabcut(image, p, cfg, fixed)

    rows = {"first round (the run's masks)": lambda image, p, first: first}
    for t in (0.5, 0.4, 0.3):
        rows[f"f >= {t}"] = lambda image, p, first, t=t: p >= t
    for fraction in (0.05, 0.3):
        rows[f"f + grabcut, core {fraction:.0%}"] = lambda image, p, first, q=fraction: grabcut(
            image, p, certain_core(p, p, q)
        )
    for c in (0.6, 0.75, 0.9):
        rows[f"f + grabcut, fixed p >= {c}"] = lambda image, p, first, c=c: grabcut(image, p, p >= c)
    rows["f and first round"] = lambda image, p, first: first & (p >= 0.5)
    rows["f and first round + grabcut"] = lambda image, p, first: grabcut(
        image, np.where(first, p, 0).astype(np.float32), certain_core(np.where(first, p, 0), p, 0.05)
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--run", type=Path, required=True, help="a run trained without masks (RUN/masks inside)"
    )
    parser.add_argument("--data", type=Path, required=True, help="the part folder, with its given masks/")
    parser.add_argument("--ids", choices=["val", "train"], default="val")
    parser.add_argument("--first", type=Path, default=None, help="first-round masks (default RUN/masks)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    first_dir = args.first or args.run / "masks"
    ids = read_split_file(args.data / "train.txt")
    ids = validation_ids(ids) if args.ids == "val" else ids
    run = PartSegmenter.load(args.run, device="cpu", refine="none")
    rows = candidates(run.cfg.foreground)  # the run's own settings, as train's second round uses them
    scores = {name: [] for name in rows}
    started = time.perf_counter()
    for image_id in ids:
        image = np.array(read_image(find_image(args.data / "images", image_id)).convert("RGB"))
        gt = np.asarray(Image.open(args.data / "masks" / f"{image_id}.png")) > 0
        first = np.asarray(Image.open(first_dir / f"{image_id}.png")) > 0
        p = object_probability(run, image)
        for name, make in rows.items():
            scores[name].append(mask_scores(make(image, p, first), gt))
    result = {
        "command": "python benchmarks/masks_from_run.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items() if v is not None and k != "json"),
        "images": len(ids),
        "seconds": round(time.perf_counter() - started),
        "rows": {name: (100 * np.mean(v, 0)).round(1).tolist() for name, v in scores.items()},
    }
    print("| masks | IoU | precision | recall |\n|---|---:|---:|---:|")
    for name, (iou, precision, recall) in result["rows"].items():
        print(f"| {name} | {iou} | {precision} | {recall} |")
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
