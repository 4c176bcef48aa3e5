"""Partitions that need no training, scored like the method: what a score is worth on a dataset.

FG-NMI / FG-ARI are pooled over a split's pixels, so how high a method can go depends on the labels:
a dataset that labels 54 garment types (CCP) pools "blouse", "t-shirt" and "coat" as different classes,
and a part "upper body" scores low there however clean it is. Two reference partitions put a method's
score in scale:

- ``bands K``: K horizontal bands of equal height over each image's given foreground (no learning, no
  labels besides the mask the method is also given). A method near this score has found where things
  are in an upright object, not what they are.
- ``groups FILE``: the labelled parts merged into groups by name (``{"group": ["label", ...], ...}``;
  labels in no group form one more group). It uses the labels, so it is a ceiling for parts at that
  granularity, not a baseline. ``benchmarks/ccp_groups.json`` groups CCP's labels into head, upper
  garments, lower garments and footwear.

    python benchmarks/reference_partitions.py --datasets ccp pascal_person ade_chairs --bands 4 8
    python benchmarks/reference_partitions.py --datasets ccp --groups benchmarks/ccp_groups.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from partdiscovery.data import PartFolderDataset
from partdiscovery.evaluation.metrics import PartMetrics
from partdiscovery.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def bands(fg_mask: np.ndarray, k: int) -> np.ndarray:
    """``bool [H, W]`` foreground -> ``int64 [H, W]`` band ids 1..k over the rows the foreground spans
    (0 outside the foreground)."""
    rows = np.flatnonzero(fg_mask.any(1))
    if rows.size == 0:
        return np.zeros(fg_mask.shape, np.int64)
    top, height = rows[0], rows[-1] + 1 - rows[0]
    band = np.clip((np.arange(fg_mask.shape[0]) - top) * k // height, 0, k - 1) + 1
    return np.where(fg_mask, band[:, None], 0)


def group_lookup(part_names: dict[int, str], groups: dict[str, list[str]]) -> np.ndarray:
    """Label id -> group id (1..G, labels in no group -> G + 1); ``int64 [max id + 1]``."""
    unknown = {n for names in groups.values() for n in names} - set(part_names.values())
    if unknown:
        raise SystemExit(f"error: group file names labels the dataset does not have: {sorted(unknown)}")
    of_name = {n: g for g, names in enumerate(groups.values(), start=1) for n in names}
    lookup = np.zeros(max(part_names) + 1, np.int64)
    for label, name in part_names.items():
        lookup[label] = of_name.get(name, len(groups) + 1)
    return lookup


def score(dataset: PartFolderDataset, ks: list[int], groups: dict[str, list[str]] | None) -> dict[str, dict]:
    """``{partition name: PartMetrics.summary()}`` for K bands per ``ks`` (and the label groups) over ``dataset``."""
    metrics = {f"bands {k}": PartMetrics() for k in ks}
    lookup = group_lookup(dataset.part_names, groups) if groups else None
    if lookup is not None:
        metrics[f"groups ({len(groups)} + rest)"] = PartMetrics()
    for i in range(len(dataset)):
        sample = dataset.load(i)
        gt, fg = sample.part_labels, sample.part_labels > 0
        for k in ks:
            metrics[f"bands {k}"].update(bands(fg, k), gt)
        if lookup is not None:
            metrics[f"groups ({len(groups)} + rest)"].update(np.where(fg, lookup[gt], 0), gt)
    return {name: m.summary() for name, m in metrics.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ccp", "pascal_person", "ade_chairs"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--bands", nargs="*", type=int, default=[4, 8])
    parser.add_argument("--groups", type=Path, help="JSON {group: [label name, ...]} (uses the labels)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    groups = json.loads(args.groups.read_text(encoding="utf-8")) if args.groups else None
    rows = []
    print("| dataset | split | partition | FG-NMI | FG-ARI |\n|---|---|---|---:|---:|")
    for name in args.datasets:
        root = Path(name) if Path(name).is_dir() else SHARED / name
        dataset = PartFolderDataset(root, args.split, require_parts=True)
        for partition, s in score(dataset, args.bands, groups).items():
            rows.append({"dataset": root.name, "split": args.split, "partition": partition, **s})
            print(f"| {root.name} | {args.split} | {partition} | {s['fg_nmi']:.1f} | {s['fg_ari']:.1f} |")
    if args.json:
        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
