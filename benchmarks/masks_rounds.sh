#!/usr/bin/env bash
# Rounds of automatic masks beyond the second (issue 12), on a part folder's validation ids. Each round trains a
# run (the photos preset, one restart, seed 0, K = 4) on the training images without the validation ids and the
# previous round's masks, and makes the next round's masks from its learned background (`masks --from-run`).
# Round 1 is `partdiscovery masks`; the validation images' masks of every round are made by that round's model
# (round 1: fitted on the validation images themselves, as `masks` fits on the folder it is given) and scored
# against the given masks (mean per-image IoU, %). No test image is read.
#
#   bash benchmarks/masks_rounds.sh ../shared/data/pascal_person benchmarks/out/rounds/pascal_person 3
#
#   EXTRA="train.steps=2 data.input_size=48" bash benchmarks/masks_rounds.sh SYNTH /tmp/rounds 3   # a smoke test
#
# Results: $OUT/scores.json ({"round_1": {"images": N, "mean_iou": ...}, ...}); every round's run and masks in $OUT.
set -euo pipefail
DATA=$1
OUT=$2
ROUNDS=${3:-3}
EXTRA=${EXTRA:-}
mkdir -p "$OUT"
PD="python -m partdiscovery"
# The training images without the validation ids, and the validation images, as folders of links.
if [ ! -d "$OUT/train_images" ]; then
  python - "$DATA" "$OUT" <<'PY'
import sys
from pathlib import Path

from partdiscovery.data.part_folder import find_image, read_split_file, validation_ids

data, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
ids = read_split_file(data / "train.txt")
val = set(validation_ids(ids))
for folder, chosen in (("train_images", [i for i in ids if i not in val]), ("val_images", sorted(val))):
    (out / folder).mkdir()
    for image_id in chosen:
        path = find_image(data / "images", image_id)
        (out / folder / path.name).symlink_to(path)
PY
fi
run() { echo "== $(date +%T) $*"; "$@"; }
[ -f "$OUT/masks_1/foreground.json" ] || run $PD masks --images "$OUT/train_images" --out "$OUT/masks_1" --threads 1 --device cpu
[ -f "$OUT/val_masks_1/foreground.json" ] || run $PD masks --images "$OUT/val_images" --out "$OUT/val_masks_1" --threads 1 --device cpu
for ((r = 1; r < ROUNDS; r++)); do
  next=$((r + 1))
  [ -f "$OUT/run_$r/train_summary.json" ] || run $PD train --images "$OUT/train_images" --masks "$OUT/masks_$r" \
    --out "$OUT/run_$r" --parts 4 --preset photos --seed 0 --device cpu --quiet train.restarts=1 train.threads=1 $EXTRA
  [ -f "$OUT/val_masks_$next/foreground.json" ] || run $PD masks --images "$OUT/val_images" \
    --out "$OUT/val_masks_$next" --from-run "$OUT/run_$r" --threads 1 --device cpu
  if ((next < ROUNDS)); then
    [ -f "$OUT/masks_$next/foreground.json" ] || run $PD masks --images "$OUT/train_images" --out "$OUT/masks_$next" \
      --from-run "$OUT/run_$r" --threads 1 --device cpu
  fi
done
python - "$DATA" "$OUT" "$ROUNDS" <<'PY'
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

data, out, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
scores = {}
for r in range(1, rounds + 1):
    ious = []
    for path in sorted((out / f"val_masks_{r}").glob("*.png")):
        mask, given = np.asarray(Image.open(path)) > 0, np.asarray(Image.open(data / "masks" / path.name)) > 0
        ious.append((mask & given).sum() / max(1, (mask | given).sum()))
    scores[f"round_{r}"] = {"images": len(ious), "mean_iou": round(100 * float(np.mean(ious)), 1)}
print(json.dumps(scores))
(out / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
PY
