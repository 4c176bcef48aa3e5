#!/usr/bin/env python
"""The paper preset's training step on one CUDA GPU: fp32 vs bf16 autocast vs torch.compile, in one call.

Usage::

    python benchmarks/gpu_step.py [--repeats 20] [--warmup 5] [--no-compile] [--json out.json]

Each variant builds the paper preset's method afresh from the same seed (DeepLab-v2 ResNet-50 f, VGG19 φ,
256 px, batch 6, losses at full resolution, SGD; random weights, ``model.pretrained=false``) and times
one full training step, :func:`partdiscovery.training.train_step` as the trainer runs it: ``training_step``
(jitter, warp, f, φ, the four losses) + ``zero_grad`` + ``backward`` + gradient clipping + the optimiser
step, on one fixed random batch already on the GPU, with
``torch.cuda.synchronize()`` before and after each step. Reported per variant: median seconds per step
with min–max over the timed repeats, images/s (= batch / median step time), peak GPU memory
(``torch.cuda.max_memory_allocated``), the first step's time (for the compiled variants: mostly
compilation) and the first step's total loss relative to fp32's (same weights, same batch, same seed).

Variants:

* ``fp32``: PyTorch's defaults (cuDNN convolutions may use TF32; the flags are printed);
* ``bf16 autocast``: the step's forward pass and losses under ``torch.autocast("cuda", torch.bfloat16)``;
* ``compile fp32`` / ``compile bf16``: the same with f and φ compiled (``nn.Module.compile()``; skipped with
  ``--no-compile``; a failure is reported in the table instead of stopping the run).

Without a CUDA device the script exits with status 1 and a message saying so (``--allow-cpu`` runs the
same code on the CPU, only to check the script itself; its timings mean nothing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_variant(name: str, cfg, device, batch: dict, amp: bool, compile_: bool, args) -> dict:
    """Build the method, then time ``args.warmup`` untimed and ``args.repeats`` timed steps."""
    import torch

    from partdiscovery.training import build_optimizer, create_method, step_generator, train_step

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random-weights notices
        method = create_method(cfg).to(device).train()
    if compile_:
        # In place (nn.Module.compile), as the trainer does with f; φ too.
        method.net.compile()
        method.phi.compile()
    optimizer = build_optimizer(method, cfg)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step(i: int) -> float:
        generator = step_generator(cfg.train.seed, i)
        losses, _ = train_step(method, batch, optimizer, generator, grad_clip=cfg.optim.grad_clip, amp=amp)
        return float(losses["total"].detach())

    _sync(device)
    t0 = time.perf_counter()
    first_loss = step(0)
    _sync(device)
    first_s = time.perf_counter() - t0
    for i in range(1, 1 + args.warmup):
        step(i)
    times = []
    for i in range(1 + args.warmup, 1 + args.warmup + args.repeats):
        _sync(device)
        t0 = time.perf_counter()
        step(i)
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 1024**3 if device.type == "cuda" else float("nan")
    median = statistics.median(times)
    return {
        "variant": name,
        "step_s": {"median": median, "min": min(times), "max": max(times), "n": len(times), "values": times},
        "images_per_s": cfg.train.batch_size / median,
        "peak_gpu_gib": peak,
        "first_step_s": first_s,
        "first_loss": first_loss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps after the first one")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU (to test the script only)")
    parser.add_argument(
        "--override", action="append", default=[], help="extra config override, e.g. data.input_size=64"
    )
    args = parser.parse_args(argv)

    import torch

    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif args.allow_cpu:
        device = torch.device("cpu")
    else:
        sys.exit(
            "gpu_step.py: no CUDA device found (torch.cuda.is_available() is False). This script measures "
            "the paper preset's training step on a GPU; run it on a CUDA machine, or use "
            "`python benchmarks/speed.py` for the CPU figures."
        )

    from partdiscovery.config import load_config

    cfg = load_config("paper", overrides=["model.pretrained=false", *args.override])
    torch.backends.cudnn.benchmark = True  # fixed input size
    g = torch.Generator().manual_seed(0)
    b, s = cfg.train.batch_size, cfg.data.input_size
    images = torch.rand(b, 3, s, s, generator=g)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
    mask = ((xs / 0.7) ** 2 + (ys / 0.85) ** 2 <= 1).float().expand(b, 1, s, s).contiguous()
    batch = {"image": images.to(device), "fg_mask": mask.to(device)}

    variants = [("fp32", False, False), ("bf16 autocast", True, False)]
    if not args.no_compile:
        variants += [("compile fp32", False, True), ("compile bf16", True, True)]
    results = []
    for name, amp, compile_ in variants:
        print(f"[gpu_step] {name} ...", file=sys.stderr, flush=True)
        try:
            results.append(run_variant(name, cfg, device, batch, amp, compile_, args))
        except Exception as e:  # torch.compile failures are reported, not fatal
            if not compile_:
                raise
            message = (str(e).strip().splitlines() or [""])[0][:200]
            results.append({"variant": name, "error": f"{type(e).__name__}: {message}"})
            torch._dynamo.reset()

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (--allow-cpu: test only)"
    header = (
        f"Device: {name}; torch {torch.__version__}; CUDA {torch.version.cuda}; "
        f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
        f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}, cudnn.benchmark=True.\n"
        f"Paper preset: f={cfg.model.backbone}, φ={cfg.model.feature_extractor}, {s} px, batch {b}, "
        f"loss stride {cfg.loss.loss_stride}, {cfg.optim.optimizer}; random weights; "
        f"{args.warmup} warm-up + {args.repeats} timed steps per variant.\n"
    )
    fp32 = next((r for r in results if r["variant"] == "fp32"), None)
    lines = [
        "| variant | median s/step | spread (min–max) | images/s | speed-up vs fp32 | peak GPU GiB "
        "| first step s | first loss rel. diff vs fp32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error']} | | | | | | |")
            continue
        st = r["step_s"]
        speedup = fp32["step_s"]["median"] / st["median"] if fp32 else float("nan")
        rel = abs(r["first_loss"] - fp32["first_loss"]) / abs(fp32["first_loss"]) if fp32 else float("nan")
        lines.append(
            f"| {r['variant']} | {st['median']:.4f} | {st['min']:.4f}–{st['max']:.4f} (n={st['n']}) "
            f"| {r['images_per_s']:.1f} | {speedup:.2f}x | {r['peak_gpu_gib']:.2f} | {r['first_step_s']:.1f} "
            f"| {rel:.1e} |"
        )
    print(header)
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        from partdiscovery.utils.io import atomic_write_json

        atomic_write_json(args.json, {"header": header, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
