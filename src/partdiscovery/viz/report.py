"""A self-contained HTML report of one training run: config, curves, summary, metrics and the parts.

Everything is inline (PNG images as base64 data URIs, curves as SVG drawn here, CSS in the page), so
the single file can be mailed, archived or opened offline. With a dataset, the report also shows test
images with their predicted parts and, for every part, the images where that part covers the largest
fraction of the foreground, so a person can name the discovered parts.

Example:
    >>> write_report("runs/ccp", data="../shared/data/ccp")      # -> runs/ccp/report.html
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import heapq
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from partdiscovery.errors import CheckpointError, InvalidArgumentError, PartDiscoveryError
from partdiscovery.utils.io import atomic_write_text
from partdiscovery.viz.overlay import overlay, part_colour

REPORT_FILE = "report.html"
SKIP_JSON = {"train_summary.json", "run_info.json"}
METRIC_KEYS = {"fg_nmi", "fg_ari", "nmi", "ari"}
NOT_CURVES = {"step", "elapsed_s"}
THUMB = 144
CURVE_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#882255", "#444444")

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto; max-width: 1150px;
       color: #222; background: #fff; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 1.6em; }
.muted { color: #666; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 0.85em; border-radius: 4px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts, .cells { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; text-align: center; font-size: 0.8em; color: #444; }
figure img { display: block; border: 1px solid #ccc; image-rendering: auto; }
.swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid #555; vertical-align: middle;
          margin-right: 4px; }
.legend span.item { margin-right: 14px; white-space: nowrap; }
details summary { cursor: pointer; font-weight: 600; }
.part { margin-bottom: 18px; } .part h3 { margin: 8px 0; }
svg text { font-family: system-ui, sans-serif; }
"""


# ------------------------------------------------------------------------------------------- small bits
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (int, str)):
        return str(value)
    text = json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def _table(rows: list[tuple[str, Any]], header: tuple[str, str] = ("key", "value")) -> str:
    cells = []
    for key, value in rows:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        cell = '<td class="num">' if numeric else "<td>"
        cells.append(f"<tr><td>{_e(key)}</td>{cell}{_e(_fmt(value))}</td></tr>")
    body = "".join(cells)
    return f"<table><tr><th>{_e(header[0])}</th><th>{_e(header[1])}</th></tr>{body}</table>"


def _png_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(image: Image.Image, caption: str, alt: str) -> str:
    return (
        f'<figure><img src="{_png_uri(image)}" width="{image.width}" height="{image.height}" '
        f'alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


def _thumb(image: Image.Image, size: int = THUMB) -> Image.Image:
    """Fit ``image`` in ``size`` x ``size``: smooth when shrinking, nearest when enlarging small images."""
    image = image.convert("RGB")
    scale = size / max(image.width, image.height)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if new == image.size:
        return image
    return image.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST)


def _side_by_side(*images: Image.Image, pad: int = 2) -> Image.Image:
    width = sum(im.width for im in images) + pad * (len(images) - 1)
    canvas = Image.new("RGB", (width, max(im.height for im in images)), (255, 255, 255))
    x = 0
    for im in images:
        canvas.paste(im, (x, 0))
        x += im.width + pad
    return canvas


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------ the curves
def read_metrics_csv(path: Path) -> dict[str, list[float]]:
    """``metrics.csv`` -> ``{column: values}`` (unparsable cells become NaN); ``{}`` if absent."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = {name: [] for name in reader.fieldnames or []}
        for row in reader:
            for name in columns:
                try:
                    columns[name].append(float(row.get(name) or "nan"))
                except ValueError:
                    columns[name].append(float("nan"))
    return columns


def svg_line_chart(
    title: str, xs: list[float], ys: list[float], colour: str = "#0072b2", width: int = 340, height: int = 210
) -> str:
    """An inline SVG line chart of ``ys`` against ``xs`` (non-finite values break the line)."""
    left, right, top, bottom = 64, 14, 28, 36
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" stroke="#ddd"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13" '
        f'font-weight="600">{_e(title)}</text>',
    ]
    if not pts:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="12" '
            'fill="#888">no finite values</text></svg>'
        )
        return "".join(parts)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) or 1) * 0.05, y1 + (abs(y1) or 1) * 0.05
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    for frac in (0.0, 0.5, 1.0):  # horizontal grid lines with their values
        y = y0 + frac * (y1 - y0)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#555">{_e(f"{y:.3g}")}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#999"/>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#999"/>')
    for x, anchor in ((x0, "start"), (x1, "end")):
        parts.append(
            f'<text x="{sx(x):.1f}" y="{top + ph + 15}" text-anchor="{anchor}" font-size="11" '
            f'fill="#555">{_e(_fmt(int(x) if float(x).is_integer() else x))}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle" font-size="11" '
        'fill="#555">step</text>'
    )
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if math.isfinite(x) and math.isfinite(y):
            segments[-1].append((x, y))
        elif segments[-1]:
            segments.append([])
    for seg in segments:
        if len(seg) == 1:
            ((x, y),) = seg
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>')
        elif seg:
            points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in seg)
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8" '
                'stroke-linejoin="round"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _curves_section(metrics: dict[str, list[float]]) -> str:
    if not metrics or "step" not in metrics or not metrics["step"]:
        return '<p class="muted">No metrics.csv in the run folder (no training log to plot).</p>'
    names = [n for n in metrics if n not in NOT_CURVES and n not in ("total", "lr")]
    names += [n for n in ("total", "lr") if n in metrics]
    charts = [
        svg_line_chart(name, metrics["step"], metrics[name], CURVE_COLOURS[i % len(CURVE_COLOURS)])
        for i, name in enumerate(names)
    ]
    elapsed = [v for v in metrics.get("elapsed_s", []) if math.isfinite(v)]
    note = f" over {_fmt(elapsed[-1])} s" if elapsed else ""
    return (
        f'<p class="muted">{len(metrics["step"])} logged steps{_e(note)}; each loss, the weighted total '
        "and the learning rate against the training step.</p>"
        f'<div class="charts">{"".join(charts)}</div>'
    )


# ----------------------------------------------------------------------------------------- predictions
@dataclass
class _Predicted:
    """What the report keeps of the predictions: a few label maps, the per-part best images, metrics."""

    num_parts: int
    max_images: int
    gallery_size: int
    grid: list[tuple[int, str, np.ndarray]] = field(default_factory=list)
    best: dict[int, list[tuple[float, int, str, np.ndarray]]] = field(default_factory=dict)
    counts: np.ndarray | None = None
    n_images: int = 0
    labelled: int = 0

    def add(self, index: int, image_id: str, parts: np.ndarray) -> None:
        self.n_images += 1
        small = parts.astype(np.uint8 if parts.max(initial=0) <= 255 else np.int32)
        if len(self.grid) < self.max_images:
            self.grid.append((index, image_id, small))
        fg = small > 0
        total = int(fg.sum())
        counts = np.bincount(small[fg].ravel(), minlength=self.num_parts + 1)[: self.num_parts + 1]
        self.counts = counts if self.counts is None else self.counts + counts
        if total == 0:
            return
        for k in range(1, self.num_parts + 1):
            if counts[k] == 0:
                continue
            heap = self.best.setdefault(k, [])
            # Ties go to the earlier image: -index makes it compare larger.
            item = (counts[k] / total, -index, image_id, small)
            if len(heap) < self.gallery_size:
                heapq.heappush(heap, item)
            elif item[:2] > heap[0][:2]:
                heapq.heapreplace(heap, item)


def _predict(
    segmenter, dataset, max_images: int, gallery_size: int, progress: bool
) -> tuple[_Predicted, dict | None]:
    from partdiscovery.evaluation import score_pixels

    kept = _Predicted(segmenter.num_parts, max_images, gallery_size)

    def tap():
        for index, pred in enumerate(segmenter.predict_dataset(dataset, progress=progress)):
            kept.add(index, pred.id, pred.parts)
            if pred.part_labels is not None:
                kept.labelled += 1
                yield pred

    try:
        metrics = score_pixels(tap())
    except ValueError:  # no ground-truth pixels were counted
        metrics = None
    if kept.labelled == 0:
        metrics = None
    return kept, metrics


def _legend(num_parts: int, names: dict[int, str] | None = None) -> str:
    items = []
    for k in range(1, num_parts + 1):
        r, g, b = part_colour(k)
        items.append(
            f'<span class="item"><span class="swatch" style="background: rgb({r},{g},{b})"></span>'
            f"part {k}</span>"
        )
    return f'<p class="legend">{"".join(items)}</p>'


def _grid_section(kept: _Predicted, dataset) -> str:
    if not kept.grid:
        return '<p class="muted">No images to show.</p>'
    cells = []
    for index, image_id, parts in kept.grid:
        image = dataset.load(index).image
        both = _side_by_side(_thumb(image), _thumb(overlay(image, parts.astype(np.int64))))
        cells.append(_img(both, image_id, f"{image_id}: image and predicted parts"))
    n = len(kept.grid)
    shown = f"The first {n} of {kept.n_images} images" if kept.n_images > n else f"All {n} images"
    return (
        f'<p class="muted">{_e(shown)} of the split: each image, then its predicted parts '
        f'(background darkened).</p>{_legend(kept.num_parts)}<div class="cells">{"".join(cells)}</div>'
    )


def _gallery_section(kept: _Predicted, dataset) -> str:
    blocks = []
    total = kept.counts.sum() if kept.counts is not None else 0
    for k in range(1, kept.num_parts + 1):
        r, g, b = part_colour(k)
        share = f"{100.0 * kept.counts[k] / total:.1f}% of the predicted foreground" if total else "none"
        title = (
            f'<h3><span class="swatch" style="background: rgb({r},{g},{b})"></span>part {k} '
            f'<span class="muted">({_e(share)})</span></h3>'
        )
        ranked = sorted(kept.best.get(k, []), reverse=True)
        if not ranked:
            blocks.append(
                f'<div class="part">{title}<p class="muted">Part {k} was not predicted on any '
                "image.</p></div>"
            )
            continue
        cells = []
        for fraction, neg_index, image_id, parts in ranked:
            image = dataset.load(-neg_index).image
            only_k = np.where(parts == k, k, 0).astype(np.int64)
            cells.append(
                _img(
                    _thumb(overlay(image, only_k)),
                    f"{image_id} · {100 * fraction:.0f}%",
                    f"{image_id}: part {k} highlighted",
                )
            )
        blocks.append(f'<div class="part">{title}<div class="cells">{"".join(cells)}</div></div>')
    return (
        '<p class="muted">For each part, the images where it covers the largest fraction of the '
        "predicted foreground (the percentage), with only that part highlighted: look at them to name "
        f"the part.</p>{''.join(blocks)}"
    )


# ---------------------------------------------------------------------------------------------- report
RUN_FILES = ("config.yaml", "metrics.csv", "train_summary.json", "run_info.json")
GENERATOR = "partdiscovery report"
"""Content of the page's ``<meta name="generator">``: how a report of ours is told from a user's file."""


def is_report(path: str | Path) -> bool:
    """Whether ``path`` is an HTML report written by :func:`write_report` (then it may be replaced)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}' in head


def _is_our_run(folder: Path) -> bool:
    """A run folder of ours (marked, or from before markers), where the default report may be written."""
    from partdiscovery.training.checkpoint import list_checkpoints
    from partdiscovery.training.trainer import RunFolder

    return RunFolder(folder).output.is_ours() or bool(list_checkpoints(folder))


def _resolve(run: Path) -> tuple[Path, Path]:
    """``run`` (a run folder, or a checkpoint / exported file) -> (folder of the run's files, model)."""
    from partdiscovery.training.checkpoint import list_checkpoints

    if run.is_dir():
        if not list_checkpoints(run) and not any((run / name).is_file() for name in RUN_FILES):
            raise PartDiscoveryError(
                f"{run}: not a run folder (no checkpoints/ and none of {', '.join(RUN_FILES)}); "
                "give the --out folder of a training run"
            )
        return run, run
    if run.is_file():
        folder = run.parent.parent if run.parent.name == "checkpoints" else run.parent
        return folder, run
    raise PartDiscoveryError(f"{run}: no such run folder, checkpoint or exported model")


def _config_text(folder: Path, source: Path, segmenter) -> str | None:
    """The model's config as YAML: the loaded model's, else the run's config.yaml, else the checkpoint's."""
    if segmenter is not None:
        return segmenter.cfg.to_yaml()
    if (folder / "config.yaml").is_file():
        return (folder / "config.yaml").read_text(encoding="utf-8")
    from partdiscovery.training.checkpoint import checkpoint_config, load_checkpoint, load_latest

    try:
        if source.suffix == ".safetensors":
            from partdiscovery.export import load_safetensors

            return load_safetensors(source)[0].to_yaml()
        path, payload = load_latest(source) if source.is_dir() else (source, load_checkpoint(source))
        return checkpoint_config(payload, path).to_yaml()
    except CheckpointError:
        return None


def _stored_metrics(folder: Path) -> list[tuple[str, dict]]:
    found = []
    first = folder / "test_metrics.json"
    paths = [first] + sorted(p for p in folder.glob("*.json") if p.name != first.name)
    for path in paths:
        if path.name in SKIP_JSON or not path.is_file():
            continue
        data = _read_json(path)
        if isinstance(data, dict) and METRIC_KEYS & set(data):
            found.append((path.name, data))
    return found


def write_report(
    run: str | Path,
    data: str | None = None,
    out: str | Path | None = None,
    split: str = "test",
    max_images: int = 16,
    *,
    gallery_size: int = 8,
    device: str = "auto",
    progress: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write a self-contained HTML report of ``run`` and return its path (default ``run/report.html``).

    Args:
        run: a run folder (or a checkpoint / exported model inside or beside one).
        data: a dataset spec; adds metrics computed now, a grid of images with their parts and, for every
            part, the images where it is largest. Without it only the run's own files are shown.
        split: the dataset split to show and score.
        max_images: images in the grid (the galleries and metrics use the whole split).
        gallery_size: images per part in the galleries.
        overwrite: replace an existing ``out`` (only a report of ours). The default ``run/report.html``
            is the run's own and is replaced when it is a report of ours.
    """
    from partdiscovery.data import dataset_root
    from partdiscovery.utils.outputs import check_output_file

    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 0:
        raise InvalidArgumentError(f"max_images must be an integer >= 0, got {max_images!r}")
    if isinstance(gallery_size, bool) or not isinstance(gallery_size, int) or gallery_size < 1:
        raise InvalidArgumentError(f"gallery_size must be an integer >= 1, got {gallery_size!r}")
    folder, source = _resolve(Path(run))
    default = out is None
    if default and not _is_our_run(folder):
        raise PartDiscoveryError(
            f"{folder}: not a run folder written by partdiscovery; the report is not written into it "
            "(give --out FILE to write it elsewhere)"
        )
    out = folder / REPORT_FILE if out is None else Path(out)
    check_output_file(
        out,
        overwrite or (default and is_report(out)),
        what="report",
        ours=is_report,
        inputs=[(dataset_root(data) if data else None, "dataset folder")],
    )
    segmenter = dataset = kept = computed = None
    if data is not None:
        from partdiscovery.data import open_dataset
        from partdiscovery.segmenter import PartSegmenter

        segmenter = PartSegmenter.load(source, device=device)
        dataset = open_dataset(data, split)
        kept, computed = _predict(segmenter, dataset, max(0, max_images), max(1, gallery_size), progress)

    sections: list[tuple[str, str, str]] = []  # (anchor, title, html)
    config = _config_text(folder, source, segmenter)
    config_html = (
        f"<details><summary>config.yaml</summary><pre>{_e(config)}</pre></details>"
        if config
        else '<p class="muted">No config found.</p>'
    )
    sections.append(("config", "Config", config_html))
    sections.append(("curves", "Training curves", _curves_section(read_metrics_csv(folder / "metrics.csv"))))

    summary = _read_json(folder / "train_summary.json")
    info = _read_json(folder / "run_info.json")
    if isinstance(summary, dict) and isinstance(summary.get("final_losses"), dict):
        final = summary["final_losses"]  # loss_<name> entries repeat final_losses.<name>
        summary = {k: v for k, v in summary.items() if not (k.startswith("loss_") and k[5:] in final)}
    summary_html = (
        _table(_flatten(summary))
        if isinstance(summary, dict)
        else '<p class="muted">No train_summary.json (the run has not finished).</p>'
    )
    if isinstance(info, dict):
        if isinstance(info.get("argv"), list):
            info["argv"] = " ".join(map(str, info["argv"]))
        summary_html += f"<h3>Run info</h3>{_table(_flatten(info))}"
    sections.append(("summary", "Training summary", summary_html))

    metric_blocks = []
    if computed is not None:
        metric_blocks.append(
            f"<h3>Computed now on split {_e(split)} of {_e(data)}</h3>"
            + _table(_flatten(computed), ("metric", "value"))
        )
    elif data is not None:
        metric_blocks.append(
            f'<p class="muted">Split {_e(split)} of {_e(data)} has no ground-truth part '
            "labels: no metrics computed.</p>"
        )
    for name, values in _stored_metrics(folder):
        metric_blocks.append(f"<h3>{_e(name)}</h3>" + _table(_flatten(values), ("metric", "value")))
    none = '<p class="muted">No metrics JSON in the run folder; pass a dataset to compute them.</p>'
    sections.append(("metrics", "Metrics", "".join(metric_blocks) or none))

    if kept is not None:
        sections.append(("images", f"Parts on the {split} images", _grid_section(kept, dataset)))
        sections.append(("galleries", "Part galleries", _gallery_section(kept, dataset)))
    else:
        sections.append(
            (
                "images",
                "Parts on the test images",
                '<p class="muted">Give a dataset (<code>--data</code>) to show images with their '
                "parts and the per-part galleries.</p>",
            )
        )

    nav = " · ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in sections)
    body = "".join(f'<section id="{a}"><h2>{_e(t)}</h2>{content}</section>' for a, t, content in sections)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    model = "the newest checkpoint" if source == folder else source.name
    from partdiscovery import __version__

    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="generator" content="{GENERATOR} {_e(__version__)}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Part discovery report: {_e(folder.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Part discovery report: {_e(folder.name)}</h1>"
        f'<p class="muted">Run {_e(folder.resolve())} · model: {_e(model)} · '
        f"generated {_e(stamp)}</p>"
        f"<nav>{nav}</nav>{body}</body></html>\n"
    )
    return atomic_write_text(out, page)


__all__ = ["is_report", "read_metrics_csv", "svg_line_chart", "write_report"]
