#!/usr/bin/env bash
# Validation learning curves of the photos preset on one GPU, for issue 11's questions: does the method keep
# improving with training, and is it the optimiser? Ten runs at once (K = 4, validation split, one
# process each), then every run's checkpoints at the curve's steps scored on the validation split, then the
# paper preset's step timings (benchmarks/gpu_step.py). Every phase has a deadline, so a slow machine gives
# fewer points rather than none.
#
#   DATA=.gpudata OUT=out/gpu bash benchmarks/gpu_curves.sh          # the part folders under $DATA
#   STEPS=4 EVERY=2 CURVE="2 4" DEVICE=cpu ...                       # a smoke test of the script
#
# DATA holds ccp/ and pascal_person/ (their training splits are enough: the validation split is carved from
# them). Results: $OUT/curves.jsonl (one line per run and step), $OUT/logs.tar.gz, $OUT/gpu_step.json.
set -u
DATA=${DATA:-../shared/data}
OUT=${OUT:-benchmarks/out/gpu}
STEPS=${STEPS:-960}
EVERY=${EVERY:-60}
CURVE=${CURVE:-"60 120 240 480 960"}
DEVICE=${DEVICE:-cuda}
TRAIN_S=${TRAIN_S:-330}
SCORE_S=${SCORE_S:-100}
STEP_S=${STEP_S:-60}
WORK=${WORK:-/tmp/gpu_curves}
PD="python3 -m partdiscovery"
export PYTHONUNBUFFERED=1
# One thread per process: ten processes with PyTorch's default of one thread per core oversubscribed the
# 16 cores so far that no checkpoint was scored within 100 s (first run, 2026-12-04).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT/logs" "$WORK/scores"

{ nvidia-smi; python3 -c "import torch, timm, kornia; print(torch.__version__, timm.__version__, kornia.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"; nproc; date -u; } >"$OUT/env.txt" 2>&1

if [ "$DEVICE" = cuda ] && [ "$STEP_S" -gt 0 ]; then
  timeout "$STEP_S" python3 benchmarks/gpu_step.py --no-compile --json "$OUT/gpu_step.json" >"$OUT/logs/gpu_step.log" 2>&1
fi

# name  dataset  overrides... (RUNS_FILE: one such line per run, instead of the list below)
RUNS=(
  "adam_s0_pascal pascal_person train.seed=0"
  "adam_s0_ccp ccp train.seed=0"
  "adam_s1_pascal pascal_person train.seed=1"
  "adam_s1_ccp ccp train.seed=1"
  "adamlow_pascal pascal_person optim.lr=1e-3 optim.backbone_lr=3e-4"
  "adamlow_ccp ccp optim.lr=1e-3 optim.backbone_lr=3e-4"
  "sgd_pascal pascal_person optim.optimizer=sgd optim.lr=1e-2 optim.backbone_lr=1e-3 optim.weight_decay=5e-4"
  "sgd_ccp ccp optim.optimizer=sgd optim.lr=1e-2 optim.backbone_lr=1e-3 optim.weight_decay=5e-4"
  "s32_pascal pascal_person model.feature_layers=[0,0.33,1,0.5]"
  "s32_ccp ccp model.feature_layers=[0,0.33,1,0.5]"
)
if [ -n "${RUNS_FILE:-}" ]; then mapfile -t RUNS <"$RUNS_FILE"; fi
start=$SECONDS
for spec in "${RUNS[@]}"; do
  set -- $spec
  name=$1 data=$2
  shift 2
  timeout "$TRAIN_S" $PD train --data "$DATA/$data" --out "$WORK/$name" --preset photos --parts 4 --steps "$STEPS" \
    --holdout-val --device "$DEVICE" --quiet --overwrite train.checkpoint_every="$EVERY" train.keep_checkpoints=0 \
    train.threads=1 train.restarts=1 train.self_train_steps=0 loss.visual=3e-4 "$@" >"$OUT/logs/$name.train.log" 2>&1 &
done
wait
echo "training phase: $((SECONDS - start)) s" >>"$OUT/env.txt"

start=$SECONDS
deadline=$(($(date +%s) + SCORE_S))
for spec in "${RUNS[@]}"; do
  set -- $spec
  name=$1 data=$2
  (
    for step in $CURVE; do
      ckpt=$(printf "%s/%s/checkpoints/step_%08d.pt" "$WORK" "$name" "$step")
      left=$((deadline - $(date +%s)))
      [ -f "$ckpt" ] && [ "$left" -gt 0 ] || continue
      timeout "$left" $PD evaluate --run "$ckpt" --data "$DATA/$data" --split val --device "$DEVICE" --quiet \
        --json "$WORK/scores/${name}_$step.json" >>"$OUT/logs/$name.score.log" 2>&1
    done
  ) &
done
wait
echo "scoring phase: $((SECONDS - start)) s" >>"$OUT/env.txt"

python3 - "$WORK" "$OUT/curves.jsonl" <<'EOF'
import csv, json, sys
from pathlib import Path
work, out = Path(sys.argv[1]), Path(sys.argv[2])
with out.open("w") as fh:
    for f in sorted((work / "scores").glob("*.json")):
        name, step = f.stem.rsplit("_", 1)
        row = {"run": name, "step": int(step), **json.loads(f.read_text())}
        fh.write(json.dumps(row) + "\n")
    for run in sorted(p for p in work.iterdir() if (p / "metrics.csv").is_file()):
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        fh.write(json.dumps({"run": run.name, "metrics": rows}) + "\n")
EOF
tar czf "$OUT/logs.tar.gz" -C "$OUT" logs && rm -rf "$OUT/logs"
cat "$OUT/env.txt"
wc -l "$OUT/curves.jsonl"
