"""The HTML run report: contents, escaping, self-containment, and rendering in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from partdiscovery.viz.report import (
    CHART_PIXELS,
    _Predicted,
    _spans_decades,
    curve_chart,
    read_metrics_csv,
    render_report,
    smooth_ema,
)
from partdiscovery.workflows import write_report

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")

EVIL = "<script>alert('x')</script>"
PNG_PREFIX = "data:image/png;base64,"


class _Collector(HTMLParser):
    """Collects <img> attributes (the curves' apart), element ids, and every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.curves: list[dict[str, str | None]] = []
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs)
            if (attrs.get("alt") or "").startswith("curve: "):
                self.curves.append(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        self.links += [attrs[k] for k in ("src", "href") if attrs.get(k)]


def _parse(text: str) -> _Collector:
    collector = _Collector()
    collector.feed(text)
    return collector


def _decode_png(src: str | None) -> Image.Image:
    assert src and src.startswith(PNG_PREFIX), (src or "")[:60]
    image = Image.open(io.BytesIO(base64.b64decode(src[len(PNG_PREFIX) :], validate=True)))
    assert image.format == "PNG"
    image.load()  # decodes the pixels: a truncated PNG fails here
    assert image.width > 0 and image.height > 0
    return image


@pytest.fixture(scope="module")
def run_copy(tiny_run, tmp_path_factory) -> Path:
    """A copy of the shared tiny run (the report writes into the folder) with a stored metrics JSON."""
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_run, run)
    stored = {"fg_nmi": 12.5, "fg_ari": 3.25, "nmi": 40.0, "ari": 50.0, EVIL: 1}
    (run / "test_metrics.json").write_text(json.dumps(stored))
    return run


@pytest.fixture(scope="module")
def report(run_copy, tiny_dataset) -> Path:
    return write_report(run_copy, data=str(tiny_dataset), max_images=2, gallery_size=3)


def test_report_with_data(report, run_copy, tiny_dataset):
    assert report == run_copy / "report.html"
    text = report.read_text(encoding="utf-8")
    page = _parse(text)
    assert {"config", "curves", "summary", "metrics", "images", "galleries"} <= page.ids
    # Self-contained: every link is an in-page anchor or an embedded image.
    assert all(link.startswith(("#", PNG_PREFIX)) for link in page.links), page.links
    assert "url(" not in text and "<script" not in text
    # Escaped text: the stored metric with HTML in its name shows as text.
    assert "&lt;script&gt;" in text
    # One chart per logged loss (and the total and lr), each a decodable PNG of the chart's size.
    columns = [c for c in read_metrics_csv(run_copy / "metrics.csv") if c not in ("step", "elapsed_s")]
    assert "total" in columns
    assert sorted(img["alt"] for img in page.curves) == sorted(
        f"curve: {c} against the training step" for c in columns
    )
    assert all(_decode_png(img["src"]).size == CHART_PIXELS for img in page.curves)
    assert "Computed now on split test" in text and "fg_nmi" in text and "test_metrics.json" in text
    # The table under that heading holds evaluate's scores (fg_nmi is also a stored metric's name, shown below it).
    from partdiscovery.workflows import evaluate

    computed = text.split("Computed now on split test")[1].split("</table>")[0]
    scores = evaluate(str(tiny_dataset), "test", run=str(run_copy), device="cpu", progress=False)
    for key in ("fg_nmi", "fg_ari", "nmi", "ari"):
        assert f'<td>{key}</td><td class="num">{scores[key]:.4g}</td>' in computed, key
    # 2 grid cells (image | parts side by side), then up to 3 gallery images per part.
    grid = [img for img in page.imgs if "image and predicted parts" in (img.get("alt") or "")]
    gallery = [img for img in page.imgs if "highlighted" in (img.get("alt") or "")]
    assert len(grid) == 2 and 1 <= len(gallery) <= 3 * 3
    assert len(page.imgs) == len(grid) + len(gallery) + len(page.curves)
    for img in page.imgs:
        image = _decode_png(img["src"])
        assert (str(image.width), str(image.height)) == (img["width"], img["height"])
    assert _decode_png(grid[0]["src"]).width > _decode_png(grid[0]["src"]).height  # side by side
    # The run's record, without the list of its training ids (their number is there).
    info = json.loads((run_copy / "run_info.json").read_text())
    assert info["ids"] and info["ids"][0] not in text and f">{info['images']}<" in text


def test_part_names_title_the_legend_and_the_galleries(run_copy, tiny_dataset, tmp_path):
    names = ["head", EVIL, "tail"]
    out = write_report(
        run_copy, data=str(tiny_dataset), out=tmp_path / "named.html", max_images=1, part_names=names
    )
    text = out.read_text(encoding="utf-8")
    legend = text.split('<p class="legend">')[1].split("</p>")[0]
    assert (
        "head" in legend and "&lt;script&gt;alert" in legend and "tail" in legend and "part 1" not in legend
    )
    galleries = text.split('id="galleries"')[1]
    assert [h.split("</span>", 1)[1].split(" <span")[0] for h in galleries.split("<h3>")[1:]] == [
        "head",
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;",
        "tail",
    ]
    alts = [img["alt"] for img in _parse(text).imgs if "highlighted" in (img.get("alt") or "")]
    assert alts and all(
        alt.endswith(("head highlighted", f"{EVIL} highlighted", "tail highlighted")) for alt in alts
    )


def test_report_without_data(run_copy, tmp_path):
    out = write_report(run_copy, out=tmp_path / "sub" / "r.html")
    text = out.read_text(encoding="utf-8")
    page = _parse(text)
    assert page.curves and page.imgs == page.curves and "--data" in text
    assert "config.yaml" in text and "train_summary.json" not in text.split('id="summary"')[1][:200]
    assert '<td class="num">12.5</td>' in text and "&lt;script&gt;" in text
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


BLUE = (0, 114, 178)  # curve_chart's default colour, #0072b2
FAINT_BLUE = tuple(round(0.3 * c + 0.7 * 255) for c in BLUE)  # the logged values, alpha 0.3 on white


def _near(image: Image.Image, rgb: tuple[float, ...], tol: int = 40) -> np.ndarray:
    """``bool [H, W]``: pixels within ``tol`` of ``rgb`` in every channel (the palette shifts colours)."""
    pixels = np.asarray(image.convert("RGB"), dtype=int)
    return np.abs(pixels - np.array(rgb)).max(axis=-1) <= tol


def test_curve_chart_breaks_on_non_finite_values():
    chart = curve_chart("loss", [1, 2, 3, 4, 5], [1.0, float("nan"), 2.0, 3.0, float("inf")])
    assert chart.size == CHART_PIXELS and chart.mode == "P"
    # A dot at step 1, then nothing until the line from step 3 to 4: a gap of about 2/3 of the width.
    columns = np.flatnonzero(_near(chart, BLUE).any(axis=0))
    assert np.diff(columns).max() > (columns[-1] - columns[0]) / 3
    joined = curve_chart("loss", [1, 2, 3, 4, 5], [1.0, 1.5, 2.0, 3.0, 2.0])
    assert np.diff(np.flatnonzero(_near(joined, BLUE).any(axis=0))).max() <= 2


def test_curve_chart_without_finite_values_draws_no_curve():
    chart = curve_chart("loss", [1, 2], [float("nan"), float("inf")])
    assert chart.size == CHART_PIXELS and not _near(chart, BLUE).any()
    assert _near(curve_chart("loss", [1, 2], [1.0, 2.0]), BLUE).sum() > 50
    with pytest.raises(ValueError, match="one length"):
        curve_chart("loss", [1, 2], [1.0])


def test_curve_chart_draws_the_moving_average_solid_over_the_faint_values():
    chart = curve_chart("loss", list(range(400)), [1.0, 3.0] * 200)
    right = slice(CHART_PIXELS[0] // 2, None)  # past the average's warm-up
    solid = np.flatnonzero(_near(chart, BLUE)[:, right].any(axis=1))
    faint = np.flatnonzero(_near(chart, FAINT_BLUE, tol=30)[:, right].any(axis=1))
    assert faint.size and solid.size
    assert np.ptp(solid) < np.ptp(faint) / 3  # the average is flat at 2; the values swing from 1 to 3


@pytest.mark.parametrize(
    ("values", "log"),
    [
        ([1e-3, 1.0], True),
        ([float("nan"), 1.0, 1e3], True),
        ([1.0, 50.0], False),
        ([0.0, 1.0, 1e3], False),
        ([-1.0, 1e3], False),
        ([5.0], False),
    ],
)
def test_log_scale_where_positive_values_span_two_decades(values, log):
    assert _spans_decades(np.array(values)) is log


def test_smooth_ema_is_bias_corrected_and_keeps_the_gaps():
    nan = float("nan")
    np.testing.assert_allclose(smooth_ema([4.0] * 5, span=9), [4.0] * 5)  # no pull towards 0 at the start
    np.testing.assert_array_equal(smooth_ema([1.0, nan, 5.0], span=1), [1.0, nan, 5.0])
    got = smooth_ema([1.0, 3.0, nan, 3.0], span=3)
    a = 2 / (3 + 1)  # weights (1 - a)^age over the finite values, normalised; the NaN does not age them
    expected = (a * (1 - a) ** 2 * 1.0 + a * (1 - a) * 3.0 + a * 3.0) / (a * (1 - a) ** 2 + a * (1 - a) + a)
    assert np.isnan(got[2]) and got[3] == pytest.approx(expected) and got[0] == 1.0
    with pytest.raises(ValueError, match="span"):
        smooth_ema([1.0], span=0.5)


def test_run_names_and_curve_names_are_escaped(run_copy, tmp_path):
    run = tmp_path / "<i>run"
    shutil.copytree(run_copy, run)
    (run / "metrics.csv").write_text(f"step,{EVIL}\n1,0.5\n2,0.25\n")
    text = write_report(run, out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in text and "<i>" not in text and "&lt;i&gt;run" in text
    (curve,) = _parse(text).curves
    assert curve["alt"] == f"curve: {EVIL} against the training step"  # the parser unescapes attributes
    assert "curve: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text


def test_without_a_scoring_function_the_pictures_are_made_but_nothing_is_scored(
    run_copy, tiny_dataset, tmp_path
):
    from partdiscovery.data import open_dataset
    from partdiscovery.segmenter import PartSegmenter

    segmenter = PartSegmenter.load(run_copy, device="cpu")
    dataset = open_dataset(tiny_dataset, "test")
    text = render_report(
        run_copy, run_copy, None, segmenter=segmenter, dataset=dataset, data=str(tiny_dataset), max_images=0
    )
    assert "was not scored" in text and "Computed now" not in text and "No images to show." in text
    page = _parse(text)
    assert "galleries" in page.ids and [img for img in page.imgs if "highlighted" in img["alt"]]


def test_galleries_rank_images_by_part_fraction():
    kept = _Predicted(num_parts=2, max_images=1, gallery_size=2)
    fractions = [0.25, 0.75, 0.5, 0.0]  # of part 1 in the foreground of images 0..3
    for index, fraction in enumerate(fractions):
        parts = np.zeros((4, 10), np.int64)
        parts[:2] = 2
        parts[:2].flat[: int(20 * fraction)] = 1
        kept.add(index, f"im{index}", parts)
    assert [i for i, _, _ in kept.grid] == [0]
    ranked = sorted(kept.best[1], reverse=True)
    assert [image_id for _, _, image_id, _ in ranked] == ["im1", "im2"]
    assert [round(f, 2) for f, *_ in ranked] == [0.75, 0.5]
    assert [image_id for _, _, image_id, _ in sorted(kept.best[2], reverse=True)] == ["im3", "im0"]
    assert kept.n_images == 4 and kept.counts.tolist() == [0, 30, 50]  # foreground pixels only


# --------------------------------------------------------------------------------------------- browser
def _chromium() -> str | None:
    return next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)


def _run_chromium(binary: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp / 'profile'}",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=90)


def test_report_renders_in_headless_chromium(report, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    url = report.resolve().as_uri()
    shot = tmp_path / "shot.png"
    result = _run_chromium(binary, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2000, 1200)
    assert (pixels.min(axis=2) < 200).mean() > 0.01  # text, charts and tables, not a blank page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50

    dom = _run_chromium(binary, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _parse(dom.stdout)
    assert {"config", "curves", "images", "galleries"} <= page.ids
    assert page.imgs and len(page.imgs) == len(_parse(report.read_text(encoding="utf-8")).imgs)
    for img in page.imgs:  # no broken images
        _decode_png(img["src"])
