"""Predicting on large photographs: wall time and peak memory of ``predict`` on one photo, by ``predict.max_side``.

A phone's photo has 12-48 megapixels while f sees 192 pixels; this measures what segmenting at the photo's own
size costs against segmenting at ``max_side`` and enlarging the labels (:func:`partdiscovery.segmenter.
full_size_labels`), the labels written and the overlay drawn as ``partdiscovery predict`` does. Each cell runs in a
fresh process (peak RSS is ``ru_maxrss`` of that process: imports, f, one photo), f of the preset with random
weights (the cost does not depend on them) exported to a model file, a smooth random photo with a given
foreground mask. Seconds: ``predict_folder`` after the imports (f loaded, photo read, labels and overlay written).

    python benchmarks/predict_large.py --sizes 4000x3000 8000x6000 --max-sides 0 2048 --threads 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_cell(width: int, height: int, max_side: int, preset: str, refine: str) -> dict:
    """Predict one ``width x height`` photo with ``predict.max_side = max_side``; runs in its own process."""
    import numpy as np
    import torch
    from PIL import Image

    from partdiscovery.config import load_config
    from partdiscovery.export import EXPORT_FORMATS
    from partdiscovery.models import PartSegmentationNet
    from partdiscovery.workflows.predict import predict_folder

    cfg = load_config(preset, overrides=[f"predict.max_side={max_side}", f"predict.refine={refine}"])
    cfg.model.pretrained, cfg.model.backbone_weights = False, None
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (height // 200 + 2, width // 200 + 2, 3), dtype=np.uint8)
    photo = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    mask = np.zeros((height, width), np.uint8)
    mask[height // 8 : -height // 8, width // 4 : -width // 4] = 255
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        photo.save(tmp / "images" / "photo.jpg", quality=90)
        Image.fromarray(mask).save(tmp / "masks" / "photo.png")
        model = EXPORT_FORMATS.get("safetensors")(PartSegmentationNet(cfg.model), cfg, tmp / "f.safetensors")
        start = time.perf_counter()
        predict_folder(model, tmp / "images", tmp / "out", masks=tmp / "masks", device="cpu", progress=False)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["4000x3000", "8000x6000"], help="WIDTHxHEIGHT")
    parser.add_argument("--max-sides", nargs="+", type=int, default=[0, 2048])
    parser.add_argument("--preset", default="photos")
    parser.add_argument("--refine", default="guided")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/out/predict_large.json")
    parser.add_argument("--cell", help=argparse.SUPPRESS)  # internal: one measurement, in a child process
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.cell:
        width, height, max_side = map(int, args.cell.split(","))
        print(json.dumps(one_cell(width, height, max_side, args.preset, args.refine)))
        return
    rows = []
    for size in args.sizes:
        width, height = map(int, size.split("x"))
        for max_side in args.max_sides:
            command = [
                sys.executable,
                __file__,
                "--cell",
                f"{width},{height},{max_side}",
                "--preset",
                args.preset,
            ]
            command += ["--refine", args.refine, "--threads", str(args.threads)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            rows.append({"width": width, "height": height, "max_side": max_side, **result})
            print(
                f"{width} x {height}, max_side {max_side}: {result['seconds']:.1f} s, "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    from partdiscovery.utils.io import atomic_write_json

    atomic_write_json(Path(args.out), {"preset": args.preset, "refine": args.refine, "rows": rows})


if __name__ == "__main__":
    main()
