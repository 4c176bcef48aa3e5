"""How much of the foreground each of the K parts holds: finds parts a run left empty.

Counts the predicted pixels of every part over a folder of label PNGs (``quality.py``'s ``.../method_seed<S>/pred``:
0 = background, 1..K parts) or over a run's predictions on a split (the given masks applied, unrefined), and
prints each part's share of the predicted foreground, the parts under 0.01 % ("empty") and under 1 %.

    python benchmarks/part_usage.py --parts 8 --predictions OUT/ccp/test/K8/method_seed0/pred
    python benchmarks/part_usage.py --parts 8 --run RUN --data ../shared/data/ccp --split test --images 60
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from PIL import Image


def shares(counts: np.ndarray) -> dict:
    """The record of one set of per-part pixel counts ``[K]``."""
    share = counts / max(int(counts.sum()), 1)
    return {
        "pixels": counts.tolist(),
        "share_pct": np.round(100 * share, 2).tolist(),
        "empty": int((share < 1e-4).sum()),
        "below_1pct": int((share < 0.01).sum()),
    }


def count_folder(folder: Path, parts: int) -> tuple[np.ndarray, int]:
    counts, files = np.zeros(parts + 1, dtype=np.int64), sorted(folder.glob("*.png"))
    for file in files:
        counts += np.bincount(np.asarray(Image.open(file)).ravel(), minlength=parts + 1)[: parts + 1]
    return counts[1:], len(files)


def count_run(run: str, data: str, split: str, parts: int, images: int) -> tuple[np.ndarray, int]:
    from partdiscovery.data import open_dataset
    from partdiscovery.segmenter import PartSegmenter

    segmenter = PartSegmenter.load(run, device="cpu", refine="none")
    counts, n = np.zeros(parts + 1, dtype=np.int64), 0
    for prediction in itertools.islice(
        segmenter.predict_dataset(open_dataset(data, split), progress=False), images
    ):
        counts += np.bincount(prediction.parts.ravel(), minlength=parts + 1)[: parts + 1]
        n += 1
    return counts[1:], n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, required=True)
    parser.add_argument("--predictions", nargs="*", default=[], help="folders of label PNGs")
    parser.add_argument("--run", nargs="*", default=[], help="run folders (with --data)")
    parser.add_argument("--data", help="the runs' dataset")
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=60, help="the first N images of the split")
    args = parser.parse_args()
    if args.run and not args.data:
        parser.error("--run needs --data")
    rows = []
    for folder in args.predictions:
        counts, n = count_folder(Path(folder), args.parts)
        rows.append({"source": folder, "images": n, **shares(counts)})
    for run in args.run:
        counts, n = count_run(run, args.data, args.split, args.parts, args.images)
        rows.append({"source": run, "split": args.split, "images": n, **shares(counts)})
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
