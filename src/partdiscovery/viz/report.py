"""A self-contained HTML report of one training run: config, curves, summary, metrics and the parts.

Everything is inline (pictures and charts as PNG data URIs, CSS in the page), so the single file can be
mailed, archived or opened offline. The curves are drawn with matplotlib, the page is the jinja2 template
``templates/report.html.j2`` with autoescaping on, so every run name, metric key and config line is shown
as text. With a dataset, the report also shows test images with their predicted parts and, for every
part, the images where that part covers the largest fraction of the foreground, so a person can name the
discovered parts.

This module draws the page; :func:`partdiscovery.workflows.write_report` finds the run's model, predicts,
scores and writes the file (``partdiscovery report RUN --data DATA``).
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import heapq
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from partdiscovery.runs import (
    METRICS_FILE,
    REPORT_GENERATOR,
    RUN_INFO_FILE,
    SUMMARY_FILE,
)
from partdiscovery.utils.moved import moved_names
from partdiscovery.viz.overlay import overlay, part_colour, part_name

SKIP_JSON = {SUMMARY_FILE, RUN_INFO_FILE}
METRIC_KEYS = {"fg_nmi", "fg_ari", "nmi", "ari"}
NOT_CURVES = {"step", "elapsed_s"}
THUMB = 144
CURVE_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#882255", "#444444")

CHART_PIXELS = (340, 210)
CHART_DPI = 100
# A chart is a few flat colours plus their anti-aliasing: 16 colours (chosen by Pillow's max-coverage
# quantiser, which keeps small areas such as a lone dot or the tick labels within ~10% of their colour)
# are a third of the size of the 24-bit PNG: ~4 KB a chart, whatever the number of logged steps.
CHART_PALETTE = 16
# Smooth over about 1/20 of the logged points, so a 40-step and a 20 000-step run look equally smooth.
SMOOTHING_FRACTION = 20
# Positive values whose range spans two decades or more get a log-scale y axis.
LOG_SCALE_RATIO = 100.0
# matplotlib's defaults plus these, so a user's matplotlibrc or style cannot change the report's charts.
_CHART_STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#999999",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "axes.labelcolor": "#555555",
}

Score = Callable[[Iterable[Any]], dict]
"""Scores predictions (``partdiscovery.evaluation.score_pixels``): an iterable of
:class:`partdiscovery.Prediction` with ground truth -> ``{metric: value}``; ``ValueError`` when no
ground-truth pixel was counted. Passed in because evaluation is a layer above the pictures."""


# ------------------------------------------------------------------------------------------- small bits
def _fmt(value: Any) -> str:
    """A table cell's text: 4 significant digits for floats, JSON (cut at 300 characters) for the rest."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (int, str)):
        return str(value)
    text = json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def _is_number(value: Any) -> bool:
    """Numbers are right-aligned in the tables; a bool is shown as a word."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts -> ``[("a.b", value), ...]`` rows for a two-column table."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def _png_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class _Picture:
    """An embedded PNG as the template shows it: ``<figure><img ...><figcaption>``."""

    uri: str
    width: int
    height: int
    alt: str
    caption: str = ""


def _picture(image: Image.Image, caption: str, alt: str) -> _Picture:
    return _Picture(_png_uri(image), image.width, image.height, alt, caption)


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


def smooth_ema(values: Sequence[float], span: float) -> np.ndarray:
    """Exponential moving average with weight ``2 / (span + 1)`` on the newest value, bias-corrected.

    The correction (divide by the sum of the weights so far, as Adam and TensorBoard do) keeps the start
    of the curve at the level of the first values instead of pulling it towards zero. Non-finite values
    are skipped and stay NaN in the output, so the smoothed curve has the same gaps as the raw one.

    Args:
        values: ``float [N]``.
        span: about how many values are averaged; 1 returns the finite values unchanged.

    Returns:
        ``float64 [N]``.

    Example:
        >>> smooth_ema([1.0, 3.0, float("nan"), 3.0], span=3).round(3).tolist()
        [1.0, 2.333, nan, 2.714]
    """
    if span < 1:
        raise ValueError(f"span must be >= 1, got {span}")
    alpha = 2.0 / (span + 1.0)
    out = np.full(len(values), np.nan)
    total = weight = 0.0
    for i, value in enumerate(values):
        if math.isfinite(value):
            total = (1 - alpha) * total + alpha * value
            weight = (1 - alpha) * weight + alpha
            out[i] = total / weight
    return out


def _spans_decades(values: np.ndarray) -> bool:
    """Whether the finite ``values`` are all positive and span :data:`LOG_SCALE_RATIO` or more."""
    finite = values[np.isfinite(values)]
    return bool(finite.size > 1 and finite.min() > 0 and finite.max() >= LOG_SCALE_RATIO * finite.min())


def curve_chart(
    name: str, steps: Sequence[float], values: Sequence[float], colour: str = "#0072b2"
) -> Image.Image:
    """A small chart of one logged quantity against the training step, as a palette image.

    The logged values are drawn faint (they show the noise), their :func:`smooth_ema` solid on top (it
    shows the trend); a lone finite value between non-finite ones is drawn as a dot. Positive values
    spanning two decades or more get a log-scale y axis and are smoothed in log space, so the smoothed
    curve follows what the eye reads on that axis (a spike to ten times the value weighs like a dip to a
    tenth, instead of dragging the average up). Non-finite values break both lines.

    Args:
        name: the quantity, the chart's title.
        steps: ``float [N]`` training steps.
        values: ``float [N]``.
        colour: the curve's colour (any matplotlib colour).

    Returns:
        A :data:`CHART_PIXELS` mode-``P`` image.

    Example:
        >>> curve_chart("total", [1, 2, 3], [1.0, 0.8, 0.7]).size
        (340, 210)
    """
    xs = np.asarray(steps, dtype=np.float64)
    ys = np.asarray(values, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"steps and values must be 1-D of one length, got {xs.shape} and {ys.shape}")
    ys = np.where(np.isfinite(xs) & np.isfinite(ys), ys, np.nan)
    finite = ~np.isnan(ys)
    log = _spans_decades(ys)
    with matplotlib.style.context(["default", _CHART_STYLE]):
        figure = Figure(figsize=(CHART_PIXELS[0] / CHART_DPI, CHART_PIXELS[1] / CHART_DPI), dpi=CHART_DPI)
        FigureCanvasAgg(figure)  # attaches the Agg canvas: no display, no pyplot state
        figure.set_layout_engine("constrained")
        ax = figure.add_subplot()
        ax.set_title(name, parse_math=False)  # a quantity named like "a$b$" is a name, not TeX
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))  # 5-digit steps must not overlap
        ax.set_xlabel("step")
        if finite.any():
            span = max(1.0, finite.sum() / SMOOTHING_FRACTION)
            smooth = np.exp(smooth_ema(np.log(ys), span)) if log else smooth_ema(ys, span)
            ax.plot(xs, ys, color=colour, alpha=0.3, linewidth=0.8)
            lone = finite & ~np.r_[False, finite[:-1]] & ~np.r_[finite[1:], False]
            ax.plot(xs[lone], ys[lone], linestyle="none", marker="o", markersize=3, color=colour)
            ax.plot(xs, smooth, color=colour, linewidth=1.6)
            if log:
                ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center", color="#888888")
            ax.set_xticks([])
            ax.set_yticks([])
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=CHART_DPI)
    chart = Image.open(buffer).convert("RGB")
    return chart.quantize(colors=CHART_PALETTE, method=Image.Quantize.MAXCOVERAGE)


@dataclass(frozen=True)
class _Curves:
    """The curves section: how many steps were logged, over how long, and one chart per quantity."""

    steps: int
    elapsed_s: float | None
    charts: list[_Picture]


def _curves(metrics: dict[str, list[float]]) -> _Curves | None:
    """One chart per logged quantity (losses first, then the weighted total and the learning rate)."""
    if not metrics.get("step"):
        return None
    names = [n for n in metrics if n not in NOT_CURVES and n not in ("total", "lr")]
    names += [n for n in ("total", "lr") if n in metrics]
    charts = [
        _picture(
            curve_chart(name, metrics["step"], metrics[name], CURVE_COLOURS[i % len(CURVE_COLOURS)]),
            caption="",
            alt=f"curve: {name} against the training step",
        )
        for i, name in enumerate(names)
    ]
    elapsed = [v for v in metrics.get("elapsed_s", []) if math.isfinite(v)]
    return _Curves(len(metrics["step"]), elapsed[-1] if elapsed else None, charts)


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
    segmenter, dataset, max_images: int, gallery_size: int, progress: bool, score: Score | None
) -> tuple[_Predicted, dict | None]:
    """Predict the whole split once, keeping what the pictures need and scoring the labelled images."""
    kept = _Predicted(segmenter.num_parts, max_images, gallery_size)

    def labelled():
        for index, pred in enumerate(segmenter.predict_dataset(dataset, progress=progress)):
            kept.add(index, pred.id, pred.parts)
            if pred.part_labels is not None:
                kept.labelled += 1
                yield pred

    if score is None:
        for _ in labelled():
            pass
        return kept, None
    try:
        metrics = score(labelled())
    except ValueError:  # no ground-truth pixels were counted
        metrics = None
    return kept, metrics if kept.labelled else None


@dataclass(frozen=True)
class _Part:
    """One part's entry in the legend and galleries."""

    k: int
    name: str
    css: str
    share: str = ""
    pictures: list[_Picture] = field(default_factory=list)


def _part(k: int, name: str, **kwargs: Any) -> _Part:
    r, g, b = part_colour(k)
    return _Part(k, name, f"rgb({r},{g},{b})", **kwargs)


@dataclass(frozen=True)
class _Predictions:
    """The image grid and the per-part galleries (``shown`` says how much of the split the grid is)."""

    split: str
    shown: str
    grid: list[_Picture]
    parts: list[_Part]


def _grid(kept: _Predicted, dataset) -> list[_Picture]:
    """Each kept image beside its predicted parts."""
    cells = []
    for index, image_id, parts in kept.grid:
        image = dataset.load(index).image
        both = _side_by_side(_thumb(image), _thumb(overlay(image, parts.astype(np.int64))))
        cells.append(_picture(both, image_id, f"{image_id}: image and predicted parts"))
    return cells


def _galleries(kept: _Predicted, dataset, names: dict[int, str]) -> list[_Part]:
    """Per part: its share of the predicted foreground and its best images with only it highlighted."""
    parts = []
    total = kept.counts.sum() if kept.counts is not None else 0
    for k in range(1, kept.num_parts + 1):
        share = f"{100.0 * kept.counts[k] / total:.1f}% of the predicted foreground" if total else "none"
        pictures = []
        for fraction, neg_index, image_id, labels in sorted(kept.best.get(k, []), reverse=True):
            only_k = np.where(labels == k, k, 0).astype(np.int64)
            pictures.append(
                _picture(
                    _thumb(overlay(dataset.load(-neg_index).image, only_k)),
                    f"{image_id} · {100 * fraction:.0f}%",
                    f"{image_id}: {names[k]} highlighted",
                )
            )
        parts.append(_part(k, names[k], share=share, pictures=pictures))
    return parts


def _predictions(kept: _Predicted, dataset, split: str, names: dict[int, str] | None) -> _Predictions:
    n = len(kept.grid)
    shown = f"The first {n} of {kept.n_images} images" if kept.n_images > n else f"All {n} images"
    titles = {k: part_name(k, names) for k in range(1, kept.num_parts + 1)}
    return _Predictions(split, shown, _grid(kept, dataset), _galleries(kept, dataset, titles))


# ---------------------------------------------------------------------------------------------- report
def _stored_metrics(folder: Path) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The run folder's metrics JSON files (``test_metrics.json`` first) as table rows."""
    found = []
    first = folder / "test_metrics.json"
    paths = [first] + sorted(p for p in folder.glob("*.json") if p.name != first.name)
    for path in paths:
        if path.name in SKIP_JSON or not path.is_file():
            continue
        data = _read_json(path)
        if isinstance(data, dict) and METRIC_KEYS & set(data):
            found.append((path.name, _flatten(data)))
    return found


def _summary_rows(folder: Path) -> list[tuple[str, Any]] | None:
    """``train_summary.json`` as rows, without the ``loss_<name>`` entries that repeat ``final_losses``."""
    summary = _read_json(folder / SUMMARY_FILE)
    if not isinstance(summary, dict):
        return None
    final = summary.get("final_losses")
    if isinstance(final, dict):
        summary = {k: v for k, v in summary.items() if not (k.startswith("loss_") and k[5:] in final)}
    return _flatten(summary)


def _run_info_rows(folder: Path) -> list[tuple[str, Any]] | None:
    """``run_info.json`` as rows, the command line as one string, without the list of training ids (``images``
    counts them; thousands of ids would be most of the page)."""
    info = _read_json(folder / RUN_INFO_FILE)
    if not isinstance(info, dict):
        return None
    info.pop("ids", None)
    if isinstance(info.get("argv"), list):
        info["argv"] = " ".join(map(str, info["argv"]))
    return _flatten(info)


def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("partdiscovery.viz", "templates"),
        autoescape=True,  # every value is text: run names, metric keys and config lines are escaped
        undefined=jinja2.StrictUndefined,  # a misspelt variable is an error, not an empty section
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["fmt"] = _fmt
    environment.tests["numeric"] = _is_number
    return environment.get_template("report.html.j2")


def render_report(
    folder: Path,
    source: Path,
    config: str | None,
    *,
    segmenter=None,
    dataset=None,
    data: str | None = None,
    split: str = "test",
    max_images: int = 16,
    gallery_size: int = 8,
    part_names: dict[int, str] | None = None,
    score: Score | None = None,
    progress: bool = False,
) -> str:
    """The HTML page of the run in ``folder`` (model ``source``, its ``config`` as YAML), as a string.

    With a loaded ``segmenter`` (anything with ``num_parts`` and ``predict_dataset``) and ``dataset`` (the
    split named ``split`` of the spec ``data``), the page also shows a grid of ``max_images`` images with
    their parts, for every part the ``gallery_size`` images where it is largest, and, with ``score``, the
    split's metrics. ``part_names`` (``{k: name}``) titles the legend and the galleries ("part k" where a part
    has none). :func:`partdiscovery.workflows.write_report` loads the model and writes the file.
    """
    from partdiscovery import __version__

    predictions = computed = None
    if segmenter is not None and dataset is not None:
        kept, computed = _predict(segmenter, dataset, max_images, gallery_size, progress, score)
        predictions = _predictions(kept, dataset, split, part_names)
    return _template().render(
        generator=f"{REPORT_GENERATOR} {__version__}",
        run_name=folder.name,
        run_path=str(folder.resolve()),
        model="the newest checkpoint" if source == folder else source.name,
        stamp=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        config=config,
        curves=_curves(read_metrics_csv(folder / METRICS_FILE)),
        summary=_summary_rows(folder),
        run_info=_run_info_rows(folder),
        data=data,
        split=split,
        scored=score is not None,
        computed=_flatten(computed) if computed is not None else None,
        stored=_stored_metrics(folder),
        predictions=predictions,
    )


__all__ = ["curve_chart", "read_metrics_csv", "render_report", "smooth_ema"]

# moved in 0.23: the run folder owns its file names
__getattr__ = moved_names(__name__, {"REPORT_FILE": "partdiscovery.runs", "is_report": "partdiscovery.runs"})
