"""Plot learning curves written by ``quality.py --curve``: FG-NMI and FG-ARI against training steps, with
the baselines of the same run as horizontal lines.

    python benchmarks/plot_curves.py OUT/quality.json [OUT2/quality.json ...] --out docs/learning_curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="quality.json files of quality.py --curve runs")
    ap.add_argument("--out", required=True, help="PNG file")
    ap.add_argument(
        "--parts", type=int, default=4, help="the K whose curves are drawn (quality.py runs 4 and 8)"
    )
    args = ap.parse_args()
    rows = [row for path in args.results for row in json.loads(Path(path).read_text())["rows"]]
    rows = [row for row in rows if row["K"] == args.parts]
    if not any(row.get("curve") for row in rows):
        raise SystemExit(
            f"plot_curves.py: no learning curve at K = {args.parts} in {', '.join(args.results)}"
        )
    datasets = sorted({r["dataset"] for r in rows if r.get("curve")})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.6), squeeze=False)
    for ax, name in zip(axes[0], datasets):
        own = [r for r in rows if r["dataset"] == name]
        for row in own:
            if row.get("curve"):
                steps = sorted(int(s) for s in row["curve"])
                for metric, style in (("fg_nmi", "-o"), ("fg_ari", "--o")):
                    ax.plot(
                        steps,
                        [row["curve"][str(s)][metric] for s in steps],
                        style,
                        label=f"{row['method']} {metric.replace('_', '-').upper()}",
                    )
            elif row["method"] in ("kmeans", "dff"):
                colour = "grey" if row["method"] == "kmeans" else "black"
                ax.axhline(row["fg_nmi"], color=colour, lw=1, ls="-", label=f"{row['method']} FG-NMI")
                ax.axhline(row["fg_ari"], color=colour, lw=1, ls="--", label=f"{row['method']} FG-ARI")
        ax.set_xscale("log")
        ticks = sorted({int(s) for r in own if r.get("curve") for s in r["curve"]})
        ax.set_xticks(ticks, [str(t) for t in ticks])  # the scored steps, not log-scale minor labels
        ax.minorticks_off()
        splits = sorted({r.get("split", "test") for r in own})
        ax.set_title(f"{name} ({' / '.join(splits)} split, K = {args.parts})")
        ax.set_xlabel("training steps")
        ax.set_ylabel("score (%)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=72)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
