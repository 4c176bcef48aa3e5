"""Label-free ways to choose among restarts, against the runs' validation scores: simulated restarts.

``train.restarts`` keeps the run whose parts explain most of φ's deepest layer across the collection (R²,
:func:`partdiscovery.evaluation.consistency.explained_variance`). An alternative tried here and not adopted:
**consensus**, the run that agrees most with the others (mean NMI between its hard partition of the
training foreground and each other run's; the medoid of the runs), as in consensus clustering. Both are
computed on the same cells as ``train`` scores (120 training images, their training masks, a grid of stride 8).

Input: single validation runs of ``benchmarks/quality.py`` (``--split val --set train.restarts=1``), one
``--out`` folder per seed or one for several seeds. Every subset of ``--choose`` runs is a simulated restart:
each criterion keeps one run, and the mean of the kept runs' validation FG-NMI / FG-ARI over all subsets is
compared with the subsets' mean (one run, no choice) and with the best run of each subset (an oracle).

    python benchmarks/quality.py --datasets ccp --parts 4 --seeds 0 1 2 3 4 5 6 7 --methods method \\
        --steps 120 --split val --threads 1 --set train.restarts=1 --out OUT
    python benchmarks/restart_criteria.py --quality OUT --data ../shared/data/ccp
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import normalized_mutual_info_score

from partdiscovery.data import open_dataset
from partdiscovery.data.part_folder import HOLDOUT_SPLIT
from partdiscovery.evaluation.consistency import deepest_layer_phi, foreground_partitions, partition_r2
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.utils.io import atomic_write_json


def validation_runs(
    folders: list[Path], parts: int, dataset: str | None = None
) -> dict[int, tuple[Path, float, float]]:
    """``{seed: (run folder, FG-NMI, FG-ARI)}`` of the method's K = ``parts`` rows in ``quality.json`` files.

    Only the plain method's rows count (not ``method without X`` or ``method + learned bg``), of one dataset:
    ``dataset``, or the only one the files hold (a ``ValueError`` names them when there are several), and only of
    ``--split val`` calls (a ``ValueError`` otherwise). Rows record their ``seed`` and ``run`` (relative to the
    folder) since 0.27; older files name the run ``method`` for the call's first seed (``--seeds``, default 0) and
    ``method_seed<S>`` for the others, under ``DATASET/K<K>/``.
    """
    runs: dict[str, dict[int, tuple[Path, float, float]]] = {}
    for folder in folders:
        record = json.loads((folder / "quality.json").read_text())
        given = re.search(r"--seeds ([\d ]+)", record["command"])
        first = int(given.group(1).split()[0]) if given else 0
        for row in record["rows"]:
            named = re.fullmatch(r"method(?: \(seed (\d+)\))?", row["method"])
            if row["K"] != parts or not named:
                continue
            if row.get("split", "val") != "val":
                # Runs of --split test trained on the validation images: choosing among them there would be biased.
                raise ValueError(
                    f"{folder / 'quality.json'}: its runs are scored on the {row['split']} split, not val"
                )
            if "seed" in row:
                seed, run = row["seed"], folder / row["run"]
            else:
                seed = int(named.group(1)) if named.group(1) else first
                name = "method" if seed == first else f"method_seed{seed}"
                run = folder / row["dataset"] / f"K{parts}" / name / "run"
            runs.setdefault(row["dataset"], {})[seed] = (run, row["fg_nmi"], row["fg_ari"])
    if dataset is None and len(runs) > 1:
        raise ValueError(f"the quality.json files hold the runs of {sorted(runs)}: name one")
    if dataset is not None and runs and dataset not in runs:
        raise ValueError(f"the quality.json files hold no run of {dataset!r}, only of {sorted(runs)}")
    chosen = runs[dataset] if dataset is not None else next(iter(runs.values()), {})
    return dict(sorted(chosen.items()))


def consensus(parts: list[torch.Tensor]) -> np.ndarray:
    """``float [R, R]`` NMI between the runs' partitions of the same cells (1 on the diagonal)."""
    labels = [p.numpy() for p in parts]
    return np.array([[normalized_mutual_info_score(a, b) for b in labels] for a in labels])


def simulate(
    r2: np.ndarray, agreement: np.ndarray, scores: np.ndarray, choose: int
) -> dict[str, list[float]]:
    """Mean ``scores [R, 2]`` of the run each criterion keeps, over every subset of ``choose`` runs."""
    kept = {"one run (mean)": [], "R² (train)": [], "consensus": [], "oracle": []}
    for subset in map(list, itertools.combinations(range(len(r2)), choose)):
        mean_nmi = (agreement[np.ix_(subset, subset)].sum(1) - 1) / (choose - 1)
        kept["one run (mean)"].append(scores[subset].mean(0))
        kept["R² (train)"].append(scores[subset[int(np.argmax(r2[subset]))]])
        kept["consensus"].append(scores[subset[int(np.argmax(mean_nmi))]])
        kept["oracle"].append(scores[subset[int(np.argmax(scores[subset, 0]))]])
    return {name: np.mean(values, 0).round(2).tolist() for name, values in kept.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", nargs="+", type=Path, required=True, help="quality.py --out folders")
    parser.add_argument(
        "--data", required=True, help="the part folder the runs trained on (its training masks)"
    )
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--choose", type=int, default=5, help="runs per simulated restart")
    parser.add_argument("--out", type=Path, default=None, help="write the record as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = validation_runs(args.quality, args.parts, Path(args.data).name)
    if len(runs) < args.choose:
        raise SystemExit(f"restart_criteria.py: {len(runs)} runs found, --choose {args.choose}")
    dataset = open_dataset(args.data, HOLDOUT_SPLIT, validate=False)
    models = [PartSegmenter.load(folder) for folder, _, _ in runs.values()]
    cfg = models[0].cfg  # φ and input size as train scores its candidates
    phi = deepest_layer_phi(cfg.model.feature_extractor, cfg.model.pretrained, cfg.model.feature_weights)
    cells, parts = foreground_partitions([m.net for m in models], phi, dataset, cfg.data.input_size)
    r2 = np.array([partition_r2(cells, p) for p in parts])
    agreement = consensus(parts)
    scores = np.array([(nmi, ari) for _, nmi, ari in runs.values()])
    mean_nmi = (agreement.sum(1) - 1) / (len(runs) - 1)
    record = {
        "data": args.data,
        "seeds": list(runs),
        "fg_nmi_fg_ari": scores.round(2).tolist(),
        "r2": r2.round(6).tolist(),
        "consensus": mean_nmi.round(4).tolist(),
        "spearman_fg_nmi": {
            "r2": round(float(spearmanr(r2, scores[:, 0])[0]), 2),
            "consensus": round(float(spearmanr(mean_nmi, scores[:, 0])[0]), 2),
        },
        f"kept_of_{args.choose}": simulate(r2, agreement, scores, args.choose),
    }
    print(json.dumps(record, indent=1))
    if args.out:
        atomic_write_json(args.out, record)


if __name__ == "__main__":
    main()
