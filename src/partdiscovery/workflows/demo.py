"""The demo: the whole method end to end on synthetic data, on CPU, in minutes.

synth -> train (cpu preset) -> evaluate on the test split -> k-means baseline -> evaluate ->
overlay grid + ``metrics.json``. Every artefact lands in one folder.
"""

from __future__ import annotations

import time
from pathlib import Path

from partdiscovery.errors import InvalidArgumentError
from partdiscovery.utils.io import atomic_save_image, atomic_write_json
from partdiscovery.utils.outputs import OutputFolder

DEMO_IMAGES = 400
DEMO_STEPS = 400
DEMO_PARTS = 4
DEMO_SIZE = 128
DEMO_KIND = "demo"


def run_demo(
    out: str | Path = "runs/demo",
    steps: int | None = None,
    n: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
) -> dict:
    from PIL import Image

    from partdiscovery.config import load_config
    from partdiscovery.data import open_dataset
    from partdiscovery.data.image_io import read_labels
    from partdiscovery.data.synth import generate_synthetic_dataset
    from partdiscovery.evaluation import write_predictions
    from partdiscovery.segmenter import PartSegmenter
    from partdiscovery.viz import colourise, grid, overlay
    from partdiscovery.workflows.baseline import run_baseline
    from partdiscovery.workflows.evaluate import evaluate
    from partdiscovery.workflows.predict import prediction_folder
    from partdiscovery.workflows.train import run_training

    out = Path(out)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise InvalidArgumentError(f"steps must be an integer >= 1, got {steps!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 4):
        raise InvalidArgumentError(f"n must be an integer >= 4, got {n!r}")
    # The demo folder is ours (marked); an interrupted demo continues without --overwrite, a finished
    # one needs it. Every step below then replaces only its own earlier output in that folder.
    folder = OutputFolder(out, DEMO_KIND)
    folder.check(overwrite, has_result=lambda path: (path / "metrics.json").exists())
    # The demo's own files; data/, run/, predictions/ and kmeans/ carry markers of their own.
    results = ["metrics.json", "overlays.png"]
    folder.claim(results)
    steps, n = steps or DEMO_STEPS, n or DEMO_IMAGES
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    timings: dict[str, float] = {}
    started = time.perf_counter()

    say(f"[1/5] synthetic dataset: {n} images, {DEMO_PARTS} parts -> {out / 'data'}")
    t = time.perf_counter()
    data = generate_synthetic_dataset(
        out / "data", n=n, num_parts=DEMO_PARTS, size=DEMO_SIZE, seed=0, overwrite=True
    )
    timings["synth_s"] = time.perf_counter() - t

    say(f"[2/5] training the method (cpu preset, {steps} steps) -> {out / 'run'}")
    cfg = load_config(
        "cpu",
        overrides=[
            f"model.num_parts={DEMO_PARTS}",
            f"train.steps={steps}",
            f"train.checkpoint_every={steps}",
        ],
    )
    t = time.perf_counter()
    summary = run_training(cfg, str(data), out / "run", device="cpu", overwrite=True, quiet=quiet)
    timings["train_s"] = time.perf_counter() - t

    say("[3/5] evaluating the method on the test split")
    segmenter = PartSegmenter.load(out / "run", device="cpu")
    test = open_dataset(data, "test", require_parts=True)
    t = time.perf_counter()
    files = [f"{i}.png" for i in test.ids]
    predictions = prediction_folder(out / "predictions", files, overwrite=True)
    predictions.claim(files)
    for _ in write_predictions(segmenter.predict_dataset(test, progress=False), out / "predictions"):
        pass
    predictions.finish(files)
    method = evaluate(str(data), "test", predictions=str(out / "predictions"), progress=False)
    timings["evaluate_s"] = time.perf_counter() - t

    say("[4/5] k-means baseline on the same φ features")
    t = time.perf_counter()
    run_baseline(
        "kmeans", str(data), out / "kmeans", DEMO_PARTS, cfg, seed=0, progress=not quiet, overwrite=True
    )
    kmeans = evaluate(str(data), "test", predictions=str(out / "kmeans"), progress=False)
    timings["kmeans_s"] = time.perf_counter() - t

    say("[5/5] overlays")
    rows = []
    for index in range(min(8, len(test))):
        raw = test.load(index)
        ours = read_labels(out / "predictions" / f"{raw.id}.png")
        km = read_labels(out / "kmeans" / f"{raw.id}.png")
        gt = Image.fromarray(colourise(raw.part_labels))
        rows.append([raw.image, gt, overlay(raw.image, ours), overlay(raw.image, km)])
    atomic_save_image(out / "overlays.png", grid(rows, cell=DEMO_SIZE))

    timings = {k: round(v, 1) for k, v in timings.items()}
    timings["total_s"] = round(time.perf_counter() - started, 1)
    result = {
        "method": {k: method[k] for k in ("fg_nmi", "fg_ari", "nmi", "ari", "n_images")},
        "kmeans": {k: kmeans[k] for k in ("fg_nmi", "fg_ari", "nmi", "ari", "n_images")},
        "fg_nmi_lead": round(method["fg_nmi"] - kmeans["fg_nmi"], 2),
        "fg_ari_lead": round(method["fg_ari"] - kmeans["fg_ari"], 2),
        "train": {
            k: summary[k]
            for k in ("steps", "batch_size", "input_size", "wall_s", "images_per_s", "peak_rss_mb")
        },
        "timings": timings,
        "columns_of_overlays_png": ["image", "ground truth", "method", "k-means"],
    }
    atomic_write_json(out / "metrics.json", result)
    folder.finish(results, remove_stale=False)
    say(
        f"method  FG-NMI {method['fg_nmi']:.1f}  FG-ARI {method['fg_ari']:.1f}  NMI {method['nmi']:.1f}  "
        f"ARI {method['ari']:.1f}"
    )
    say(
        f"k-means FG-NMI {kmeans['fg_nmi']:.1f}  FG-ARI {kmeans['fg_ari']:.1f}  NMI {kmeans['nmi']:.1f}  "
        f"ARI {kmeans['ari']:.1f}"
    )
    say(f"done in {timings['total_s']:.0f} s: {out / 'metrics.json'}, {out / 'overlays.png'}")
    return result
