"""`partdiscovery masks` on one thread against several: wall time of the whole command, and the masks compared.

Each repeat runs the command once per thread count, in turn (1, N, 1, N, ...), into a fresh folder, so the machine's
drift falls on both; the ratio is taken repeat by repeat. The masks of every run are compared byte for byte with
those of the first one-thread run (they must be the same: each mask depends on its image and the fitted model only).

    python benchmarks/masks_threads.py --images ../shared/data/ade_chairs/images --limit 40 --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from partdiscovery.data.part_folder import image_files
from partdiscovery.utils.io import atomic_write_json


def run_masks(images: Path, out: Path, threads: int) -> float:
    """Wall seconds of one ``partdiscovery masks`` call into a fresh ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "partdiscovery", "masks", "--images", str(images), "--out", str(out)]
        + ["--threads", str(threads), "--device", "cpu", "--quiet"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def same_masks(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.png"))
    return names == sorted(p.name for p in b.glob("*.png")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=0, help="the first N images of the folder (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="the thread count compared with one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/out/masks_threads.json")
    args = parser.parse_args()
    if args.threads < 2:
        parser.error("--threads is the count compared with one thread: give 2 or more")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        images = scratch / "images"
        images.mkdir()
        paths = image_files(args.images)
        for path in paths[: args.limit or None]:
            (images / path.name).symlink_to(path.resolve())
        walls: dict[int, list[float]] = {1: [], args.threads: []}
        identical = True
        for repeat in range(args.repeats):
            for threads in (1, args.threads):
                out = scratch / f"masks_{threads}_{repeat}"
                walls[threads].append(run_masks(images, out, threads))
                identical &= same_masks(scratch / "masks_1_0", out)
        ratios = [one / many for one, many in zip(walls[1], walls[args.threads], strict=True)]
        result = {
            "command": " ".join(["python", *sys.argv]),
            "images": len(list(images.iterdir())),
            "wall_s": {str(t): w for t, w in walls.items()},
            "median_wall_s": {str(t): statistics.median(w) for t, w in walls.items()},
            "speed_up_per_repeat": ratios,
            "speed_up_median": statistics.median(ratios),
            "masks_identical": identical,
        }
    print(json.dumps(result, indent=1))
    atomic_write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
