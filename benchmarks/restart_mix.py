"""Simulated restarts whose candidates train in different ways: what ``train`` keeps from a cycle of variants.

``train.restarts`` with variants (``workflows/restarts.py``: on automatic masks every second candidate
erodes the masks; on given masks, with ``train.restarts_temperature``, every second one trains at that
temperature) keeps the candidate of highest R² whichever way it trained. Given single validation runs of
each kind, scored by ``benchmarks/restart_criteria.py`` (one ``--out`` JSON per kind, all on the same
``--data``, so their R² are comparable), every choice of runs with a given make-up (e.g. three plain runs and
two eroded ones) is one simulated restart; this prints the mean validation FG-NMI / FG-ARI of the run R²
keeps over all of them.
Runs of different kinds from the same seed are different runs and may be drawn together (as in the earlier
sections of BENCHMARKS.md: three of five plain and two of five eroded runs are 100 choices); with
``--distinct-seeds`` they are not, as in ``train``, where each seed trains once.

    python benchmarks/restart_criteria.py --quality OUT_D_S0 ... --data FOLDER --out r2_D.json   # per kind
    python benchmarks/restart_mix.py --kinds D=r2_D.json B=r2_B.json T=r2_T.json \\
        --make-up D=3,B=2 --make-up D=2,B=2,T=1
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np


def parse_make_up(text: str) -> dict[str, int]:
    """``"D=3,B=2"`` -> ``{"D": 3, "B": 2}``."""
    return {kind: int(count) for kind, count in (item.split("=") for item in text.split(","))}


def simulate(runs: dict[str, dict], make_up: dict[str, int], distinct_seeds: bool = False) -> dict:
    """Mean ``[FG-NMI, FG-ARI]`` of the run of highest R² over every choice of ``make_up[kind]`` runs of each
    kind (with ``distinct_seeds``, no seed twice), and how many choices and how often each kind was kept."""
    per_kind = []
    for kind, count in make_up.items():
        seeds = runs[kind]["seeds"]
        per_kind.append(
            [
                [(kind, seeds[i], i) for i in subset]
                for subset in itertools.combinations(range(len(seeds)), count)
            ]
        )
    kept, kinds_kept = [], dict.fromkeys(make_up, 0)
    for parts in itertools.product(*per_kind):
        chosen = [run for part in parts for run in part]
        if distinct_seeds and len({seed for _, seed, _ in chosen}) < len(chosen):
            continue
        kind, _, i = max(chosen, key=lambda run: runs[run[0]]["r2"][run[2]])
        kept.append(runs[kind]["fg_nmi_fg_ari"][i])
        kinds_kept[kind] += 1
    if not kept:
        raise SystemExit(
            f"restart_mix.py: no choice of runs has the make-up {make_up} (too few runs, or seeds)"
        )
    return {
        "make_up": make_up,
        "choices": len(kept),
        "kept": np.mean(kept, 0).round(2).tolist(),
        "kinds_kept": kinds_kept,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", nargs="+", required=True, help="KIND=restart_criteria.json")
    parser.add_argument("--make-up", action="append", required=True, help="KIND=COUNT,KIND=COUNT,...")
    parser.add_argument("--distinct-seeds", action="store_true", help="never draw one seed twice")
    parser.add_argument("--out", type=Path, default=None, help="write the record as JSON here")
    args = parser.parse_args()
    runs = {}
    for item in args.kinds:
        kind, file = item.split("=", 1)
        runs[kind] = json.loads(Path(file).read_text())
    record = {
        "kinds": dict(item.split("=", 1) for item in args.kinds),
        "one_run_mean": {kind: np.mean(r["fg_nmi_fg_ari"], 0).round(2).tolist() for kind, r in runs.items()},
        "distinct_seeds": args.distinct_seeds,
        "simulated": [simulate(runs, parse_make_up(m), args.distinct_seeds) for m in args.make_up],
    }
    print(json.dumps(record, indent=1))
    if args.out:
        from partdiscovery.utils.io import atomic_write_json

        atomic_write_json(args.out, record)


if __name__ == "__main__":
    main()
