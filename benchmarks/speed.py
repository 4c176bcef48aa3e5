#!/usr/bin/env python
"""Speed and memory of training, inference and evaluation on the CPU.

Usage::

    python benchmarks/speed.py [--quick] [--threads 2] [--repeats N] [--only train,step,infer,eval]

Writes ``benchmarks/out/speed.md`` (a section for BENCHMARKS.md) and ``benchmarks/out/speed.json`` (every
raw timing) and prints the markdown. Every figure is the **median over repeats**, with the **spread as
min–max over the same repeats** (``n`` = number of timed repeats, after untimed warm-up repeats).

What is measured (each part in its own fresh subprocess, so that peak memory is per configuration; the
parent imports only the standard library, so a child's ``getrusage`` peak is its own):

1. **Training throughput** (``train``): images/s of one full training step = ``training_step`` (two
   jittered views, the random warp, f's forward pass, φ, the four losses) + ``zero_grad`` + ``backward``
   + gradient clipping + the optimiser step, on one fixed random batch (no data loading, no
   checkpointing), random weights (``model.pretrained=false``). images/s = batch size / step time.
   Configurations: the ``cpu`` preset (128 px, batch 8, EfficientNet-Lite0 f and φ, losses at stride 2)
   and the ``paper`` preset (DeepLab-v2 ResNet-50 f + VGG19 φ, 256 px, batch 6, losses at full
   resolution). Peak RSS (MiB) = ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the child at the end:
   imports + model + optimiser state + the step's activations. Bar: the cpu preset is >= 3x faster per
   image than the paper networks on the same machine.
2. **Before/after of the training step** (``step``): ``benchmarks/_reference_step.py`` (a straightforward
   first version: per-image/per-part loops, full-resolution losses, φ run twice, two passes of f) against
   the library's ``ContrastiveReconstruction.training_step``, on the cpu preset's networks, the same batch
   and the same per-step seeds, timed interleaved (each repeat runs every variant once, in rotating
   order). Before timing, the script asserts that the reference and the library at ``loss_stride=1``
   give the same losses (float32, relative 1e-4) and gradients (relative L2 1e-3 in float32; in full
   mode also 1e-6 in float64), with f's BatchNorm in eval mode so that two passes equal one batched pass.
   Ratio = reference step time / library step time, paired per repeat. Bar: >= 1.5x (library at the cpu
   preset's stride 2). A torch.profiler table of the library step's top operators is included.
3. **Inference** (``infer``): the cpu preset's network f at 256 px (``data.input_size=256``), random
   weights, in eval mode: PyTorch eager under ``torch.inference_mode``, the TorchScript and ONNX files of
   ``partdiscovery.export.export_model`` (TorchScript under ``inference_mode``; ONNX Runtime's CPU
   provider with ``intra_op_num_threads = --threads``). Throughput = 8 / time of a batch of 8 (images/s);
   latency = time of a batch of 1 (ms). Each backend's logits must match eager within 1e-4 (max abs).
4. **Evaluation** (``eval``): NMI + ARI over the pixels of a DeepFashion-sized test set (6922 images of
   256x256 = 453.6M pixels; ``--quick``: 1/16 of it), random but correlated uint8 label maps generated on
   the fly (the same sequence for both approaches). *Streaming*: one ``ContingencyTable.update`` per
   image, then ``nmi()``/``ari()``. *Concatenating*: keep every image's labels (uint8, the cheapest a
   concatenating evaluator can store), ``np.concatenate`` them, then sklearn's
   ``normalized_mutual_info_score`` and ``adjusted_rand_score``. Wall time excludes generating the labels.
   Memory: peak RSS of the child, and the *increment* = peak RSS - RSS high-water mark after imports and
   one generated image (what the approach itself adds). The concatenating approach is run at full scale
   only when a linear fit of smaller runs predicts it fits in ~16 GB; otherwise the full-scale figures
   are extrapolated from that fit and labelled as such. Bar: streaming's increment < 1% of concatenating's.

``--quick``: 3 repeats (paper preset: 1 step, no warm-up), no float64 check, evaluation at 1/16 scale.
The machine is described at the top of the output (CPU model, cores, load average, torch version,
threads); timings on a busy machine are pessimistic and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT_MARKER = "@@SPEED_RESULT@@ "
DEEPFASHION_TEST_IMAGES = 6922
EVAL_SIZE = 256
CONCAT_FULL_SCALE_LIMIT_MIB = 16 * 1024
PARTS = ("train", "step", "infer", "eval")


# --------------------------------------------------------------------------------------------- helpers
def peak_rss_mib() -> float:
    """``getrusage`` peak resident memory of this process in MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


def vm_hwm_mib() -> float | None:
    """Linux ``VmHWM`` (peak RSS of this process's own address space) in MiB, as a cross-check."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def stats(values: list[float]) -> dict:
    """Median and min–max of repeated measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "values": values,
    }


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def synthetic_batch(batch: int, size: int, seed: int = 0) -> dict:
    """Random images in [0, 1] and binary elliptic foreground masks of varying size and position."""
    import torch

    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=g)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centre = (torch.rand(batch, 2, generator=g) - 0.5) * 0.4
    radii = 0.45 + 0.4 * torch.rand(batch, 2, generator=g)
    inside = ((xs - centre[:, 0, None, None]) / radii[:, 0, None, None]) ** 2 + (
        (ys - centre[:, 1, None, None]) / radii[:, 1, None, None]
    ) ** 2 <= 1
    return {"image": images, "fg_mask": inside.unsqueeze(1).float()}


def profile_top(fn, rows: int = 8) -> list[dict]:
    """Top operators by self CPU time of one call of ``fn`` (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = list(prof.key_averages())
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {
            "op": e.key,
            "self_ms": e.self_cpu_time_total / 1000,
            "share": e.self_cpu_time_total / total,
            "calls": e.count,
        }
        for e in events[:rows]
    ]


def quiet_warnings() -> None:
    import warnings

    warnings.simplefilter("ignore")  # random-weights notices, tracer/exporter deprecation warnings


# ----------------------------------------------------------------------------------------------- children
def child_info(args) -> dict:
    import numpy
    import sklearn
    import torch

    set_threads(args.threads)
    info = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def _train_step_fn(method, optimizer, batch, grad_clip: float):
    """One full training step as the trainer runs it (:func:`partdiscovery.training.train_step`, without
    the trainer's logging/checkpointing), drawing from run seed 0's step streams."""
    from partdiscovery.training import step_generator, train_step

    def step(i: int) -> dict:
        losses, _ = train_step(method, batch, optimizer, step_generator(0, i), grad_clip=grad_clip)
        return {k: float(v.detach()) for k, v in losses.items()}

    return step


class _ReferenceMethod:
    """The reference implementation's step behind the method interface :func:`train_step` calls."""

    def __init__(self, method, reference_step) -> None:
        self.method, self.reference_step = method, reference_step

    def training_step(self, batch, generator, shard=None):
        return self.reference_step(self.method, batch, generator)

    def parameters(self):
        return self.method.parameters()

    def buffers(self):
        return self.method.buffers()


def child_train(args) -> dict:
    """Training throughput and peak RSS of one preset's step."""
    quiet_warnings()
    set_threads(args.threads)
    import math

    import torch

    from partdiscovery.config import load_config
    from partdiscovery.training import build_optimizer, create_method

    cfg = load_config(args.preset, overrides=["model.pretrained=false"])
    torch.manual_seed(0)
    started = time.perf_counter()
    method = create_method(cfg).train()
    optimizer = build_optimizer(method, cfg)
    build_s = time.perf_counter() - started
    batch = synthetic_batch(cfg.train.batch_size, cfg.data.input_size)
    step = _train_step_fn(method, optimizer, batch, cfg.optim.grad_clip)
    times, losses = [], {}
    for i in range(args.warmup + args.repeats):
        t0 = time.perf_counter()
        losses = step(i)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    b = cfg.train.batch_size
    return {
        "preset": args.preset,
        "backbone": cfg.model.backbone,
        "feature_extractor": cfg.model.feature_extractor,
        "input_size": cfg.data.input_size,
        "batch_size": b,
        "loss_stride": cfg.loss.loss_stride,
        "optimizer": cfg.optim.optimizer,
        "warmup": args.warmup,
        "build_s": build_s,
        "step_s": stats(times),
        "images_per_s": stats([b / t for t in times]),
        "ms_per_image": stats([1000 * t / b for t in times]),
        "final_losses": losses,
        "finite": all(math.isfinite(v) for v in losses.values()),
        "peak_rss_mib": peak_rss_mib(),
        "vm_hwm_mib": vm_hwm_mib(),
    }


def _check_reference(lib, ref, batch, reference_step, dtype) -> dict:
    """Same losses and gradients from the library's step (lib, at loss_stride 1) and the reference."""
    import copy

    import torch

    lib, ref = copy.deepcopy(lib).to(dtype), copy.deepcopy(ref).to(dtype)
    for m in (lib, ref):
        m.train()
        m.net.eval()  # BatchNorm on running statistics: two passes of f == one batched pass
    batch = {k: v.to(dtype) for k, v in batch.items()}
    seed = 12345
    lib_losses = lib.training_step(batch, torch.Generator().manual_seed(seed))
    ref_losses = reference_step(ref, batch, torch.Generator().manual_seed(seed))
    lib_losses["total"].backward()
    ref_losses["total"].backward()
    loss_rel = {
        k: abs(float(lib_losses[k]) - float(ref_losses[k])) / max(abs(float(lib_losses[k])), 1e-12)
        for k in ("feature", "contrastive", "visual", "equivariance", "total")
    }
    grads = [(a.grad, b.grad) for a, b in zip(lib.net.parameters(), ref.net.parameters())]
    if any((ga is None) != (gb is None) for ga, gb in grads):
        raise AssertionError("reference and library steps give gradients to different parameters")
    ga = torch.cat([a.flatten() for a, _ in grads if a is not None])
    gb = torch.cat([b.flatten() for _, b in grads if b is not None])
    return {
        "dtype": str(dtype).replace("torch.", ""),
        "losses_library": {k: float(v) for k, v in lib_losses.items()},
        "losses_reference": {k: float(v) for k, v in ref_losses.items()},
        "loss_rel_diff": loss_rel,
        "max_loss_rel_diff": max(loss_rel.values()),
        "grad_rel_l2_diff": float((ga - gb).norm() / ga.norm().clamp_min(1e-30)),
    }


def child_step(args) -> dict:
    """Reference ("before") step vs the library's ("after") step, timed interleaved in one process."""
    quiet_warnings()
    set_threads(args.threads)
    import copy
    import dataclasses

    import torch
    from _reference_step import reference_training_step

    from partdiscovery.config import load_config
    from partdiscovery.training import build_optimizer, create_method

    cfg = load_config("cpu", overrides=["model.pretrained=false"])
    torch.manual_seed(0)
    lib2 = create_method(cfg).train()
    lib1 = copy.deepcopy(lib2)  # identical f and φ weights; losses at full resolution
    lib1.cfg = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, loss_stride=1))
    ref = copy.deepcopy(lib1)
    batch = synthetic_batch(cfg.train.batch_size, cfg.data.input_size)

    checks = [_check_reference(lib1, ref, batch, reference_training_step, torch.float32)]
    if not args.quick:
        checks.append(_check_reference(lib1, ref, batch, reference_training_step, torch.float64))
    tolerances = {"float32": (1e-4, 1e-3), "float64": (1e-7, 1e-6)}
    for check in checks:
        loss_tol, grad_tol = tolerances[check["dtype"]]
        if check["max_loss_rel_diff"] > loss_tol or check["grad_rel_l2_diff"] > grad_tol:
            raise AssertionError(f"reference step does not match the library's step: {json.dumps(check)}")

    variants = {
        "reference": (ref, _ReferenceMethod(ref, reference_training_step)),
        "library_stride1": (lib1, lib1),
        "library_stride2": (lib2, lib2),
    }
    steps = {
        name: _train_step_fn(stepper, build_optimizer(m, cfg), batch, cfg.optim.grad_clip)
        for name, (m, stepper) in variants.items()
    }
    names = list(steps)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(args.warmup + args.repeats):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            t0 = time.perf_counter()
            steps[name](i)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t0)
    b = cfg.train.batch_size
    out = {
        "batch_size": b,
        "input_size": cfg.data.input_size,
        "warmup": args.warmup,
        "checks": checks,
        "step_s": {n: stats(t) for n, t in times.items()},
        "images_per_s": {n: stats([b / x for x in t]) for n, t in times.items()},
        "ratio_vs_stride2": stats([r / x for r, x in zip(times["reference"], times["library_stride2"])]),
        "ratio_vs_stride1": stats([r / x for r, x in zip(times["reference"], times["library_stride1"])]),
    }
    out["profile_library_stride2"] = profile_top(lambda: steps["library_stride2"](10_000))
    out["profile_reference"] = profile_top(lambda: steps["reference"](10_000))
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def _fake_run(cfg, folder: Path) -> Path:
    """A run folder with one checkpoint of a random f with non-trivial BatchNorm statistics."""
    import torch

    from partdiscovery.models import PartSegmentationNet
    from partdiscovery.runs.checkpoint import checkpoint_path, save_checkpoint

    torch.manual_seed(0)
    net = PartSegmentationNet(cfg.model)
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    run = folder / "run"
    payload = {
        "model": {"net." + k: v for k, v in net.state_dict().items()},
        "config": cfg.to_dict(),
        "step": 1,
        "optimizer": {},
        "schedule": {},
    }
    save_checkpoint(checkpoint_path(run, 1), payload)
    return run


def child_infer(args) -> dict:
    """Eager / TorchScript / ONNX Runtime throughput (batch 8) and latency (batch 1) at 256 px."""
    quiet_warnings()
    set_threads(args.threads)
    import tempfile

    import torch

    from partdiscovery.config import load_config
    from partdiscovery.export import ExportWrapper, export_model
    from partdiscovery.segmenter import PartSegmenter

    size = 256
    cfg = load_config("cpu", overrides=["model.pretrained=false", f"data.input_size={size}"])
    out: dict = {"input_size": size, "backbone": cfg.model.backbone, "num_parts": cfg.model.num_parts}
    g = torch.Generator().manual_seed(1)
    x8 = torch.rand(8, 3, size, size, generator=g)
    x1 = x8[:1].clone()
    with tempfile.TemporaryDirectory() as tmp:
        run = _fake_run(cfg, Path(tmp))
        eager = ExportWrapper(PartSegmenter.load(run, device="cpu").net).eval()
        backends = {}

        def eager_fn(x):
            with torch.inference_mode():
                return eager(x)

        backends["pytorch eager"] = eager_fn
        ts_module = torch.jit.load(str(export_model(run, "torchscript", Path(tmp) / "model.pt")))

        def ts_fn(x):
            with torch.inference_mode():
                return ts_module(x)

        backends["torchscript"] = ts_fn
        try:
            import onnxruntime as ort

            onnx_path = export_model(run, "onnx", Path(tmp) / "model.onnx")
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

            def onnx_fn(x):
                return torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])

            backends["onnxruntime"] = onnx_fn
        except ImportError as e:
            out["onnx_error"] = f"onnx/onnxruntime not installed ({e}); pip install 'partdiscovery[export]'"

        expected = {8: eager_fn(x8), 1: eager_fn(x1)}
        results = {}
        for name, fn in backends.items():
            diff = max(float((fn(x) - expected[len(x)]).abs().max()) for x in (x8, x1))
            row = {"max_abs_diff_vs_eager": diff, "matches_1e-4": diff <= 1e-4}
            for x, key, repeats in ((x8, "batch8_s", args.repeats * 2), (x1, "batch1_s", args.repeats * 4)):
                for _ in range(args.warmup):
                    fn(x)
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    fn(x)
                    times.append(time.perf_counter() - t0)
                row[key] = stats(times)
            row["images_per_s"] = stats([8 / t for t in row["batch8_s"]["values"]])
            row["latency_ms"] = stats([1000 * t for t in row["batch1_s"]["values"]])
            results[name] = row
    out["backends"] = results
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def _label_stream(n_images: int, seed: int = 0):
    """Yield ``(pred, gt)`` uint8 ``[256, 256]`` label maps: gt uniform in 0..6, pred = gt mod 5 for 60% of
    the pixels and uniform in 0..4 elsewhere (so NMI/ARI are not trivially 0). Deterministic in ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (EVAL_SIZE, EVAL_SIZE)
    for _ in range(n_images):
        gt = rng.integers(0, 7, shape, dtype=np.uint8)
        noise = rng.integers(0, 5, shape, dtype=np.uint8)
        keep = rng.random(shape, dtype=np.float32) < 0.6
        yield np.where(keep, gt % 5, noise), gt


def _eval_images(scale: float) -> int:
    return max(2, round(DEEPFASHION_TEST_IMAGES * scale))


def child_eval_stream(args) -> dict:
    """Streaming: one ContingencyTable update per image."""
    import numpy as np  # noqa: F401  (imported before the baseline, like the concatenating child)
    import sklearn.metrics  # noqa: F401

    from partdiscovery.evaluation.metrics import ContingencyTable

    n = _eval_images(args.scale)
    labels = _label_stream(n + 1, seed=0)
    next(labels)  # one image generated before the baseline, as in the concatenating child
    baseline = peak_rss_mib()
    labels = _label_stream(n, seed=0)
    table = ContingencyTable()
    update_s = 0.0
    started = time.perf_counter()
    for pred, gt in labels:
        t0 = time.perf_counter()
        table.update(pred, gt)
        update_s += time.perf_counter() - t0
    t0 = time.perf_counter()
    nmi, ari = table.nmi(), table.ari()
    score_s = time.perf_counter() - t0
    peak = peak_rss_mib()
    return {
        "scale": args.scale,
        "images": n,
        "pixels": table.total,
        "wall_s": update_s + score_s,
        "wall_with_generation_s": time.perf_counter() - started,
        "update_s": update_s,
        "score_s": score_s,
        "nmi": nmi,
        "ari": ari,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "increment_mib": peak - baseline,
        "vm_hwm_mib": vm_hwm_mib(),
    }


def child_eval_concat(args) -> dict:
    """Concatenating: keep all labels, np.concatenate, then sklearn NMI and ARI."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    import partdiscovery.evaluation.metrics  # noqa: F401  (same imports as the streaming child)

    n = _eval_images(args.scale)
    labels = _label_stream(n + 1, seed=0)
    next(labels)
    baseline = peak_rss_mib()
    labels = _label_stream(n, seed=0)
    preds, gts = [], []
    collect_s = 0.0
    started = time.perf_counter()
    for pred, gt in labels:
        t0 = time.perf_counter()
        preds.append(pred.ravel())
        gts.append(gt.ravel())
        collect_s += time.perf_counter() - t0
    t0 = time.perf_counter()
    all_pred, all_gt = np.concatenate(preds), np.concatenate(gts)
    concat_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    nmi = float(normalized_mutual_info_score(all_gt, all_pred))
    ari = float(adjusted_rand_score(all_gt, all_pred))
    score_s = time.perf_counter() - t0
    peak = peak_rss_mib()
    return {
        "scale": args.scale,
        "images": n,
        "pixels": int(all_gt.size),
        "wall_s": collect_s + concat_s + score_s,
        "wall_with_generation_s": time.perf_counter() - started,
        "concat_s": concat_s,
        "score_s": score_s,
        "nmi": nmi,
        "ari": ari,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "increment_mib": peak - baseline,
        "vm_hwm_mib": vm_hwm_mib(),
    }


CHILDREN = {
    "info": child_info,
    "train": child_train,
    "step": child_step,
    "infer": child_infer,
    "eval_stream": child_eval_stream,
    "eval_concat": child_eval_concat,
}


# ------------------------------------------------------------------------------------------------ parent
def run_child(kind: str, threads: int, **options) -> dict:
    """Run ``kind`` in a fresh Python process and return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--threads", str(threads)]
    for key, value in options.items():
        if isinstance(value, bool):
            if value:
                cmd.append(f"--{key}")
        else:
            cmd += [f"--{key}", str(value)]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    label = " ".join(f"{k}={v}" for k, v in options.items())
    print(f"[speed] {kind} {label} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
            result["child_wall_s"] = time.perf_counter() - started
            print(f"[speed]   done in {result['child_wall_s']:.0f} s", file=sys.stderr, flush=True)
            return result
    raise RuntimeError(
        f"benchmark child {kind} failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )


def machine_info(threads: int) -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        **run_child("info", threads),
    }


def _fmt(value: float, digits: int = 3) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def _spread(s: dict, scale: float = 1.0) -> str:
    if s["n"] < 2:
        return "n=1"
    return f"{_fmt(s['min'] * scale)}–{_fmt(s['max'] * scale)} (n={s['n']})"


def _linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares ``y = a + b x``."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def run_eval(args, threads: int) -> dict:
    """Streaming vs concatenating at the configured scales; extrapolate the latter if it would not fit."""
    full_pixels = DEEPFASHION_TEST_IMAGES * EVAL_SIZE * EVAL_SIZE
    if args.quick:
        stream_scales, concat_scales = [1 / 16], [1 / 64, 1 / 16]
    else:
        stream_scales, concat_scales = [1 / 8, 1.0], [1 / 32, 1 / 16, 1 / 8]
    stream = {s: run_child("eval_stream", threads, scale=s) for s in stream_scales}
    concat = {s: run_child("eval_concat", threads, scale=s) for s in concat_scales}
    scales = sorted(concat)
    fit_mem = _linear_fit([concat[s]["pixels"] for s in scales], [concat[s]["increment_mib"] for s in scales])
    fit_time = _linear_fit([concat[s]["pixels"] for s in scales], [concat[s]["wall_s"] for s in scales])
    predicted_peak = concat[scales[-1]]["baseline_rss_mib"] + fit_mem[0] + fit_mem[1] * full_pixels
    extrapolated = None
    if 1.0 not in concat:
        if not args.quick and predicted_peak <= CONCAT_FULL_SCALE_LIMIT_MIB:
            concat[1.0] = run_child("eval_concat", threads, scale=1.0)
        else:
            extrapolated = {
                "pixels": full_pixels,
                "increment_mib": fit_mem[0] + fit_mem[1] * full_pixels,
                "peak_rss_mib": predicted_peak,
                "wall_s": fit_time[0] + fit_time[1] * full_pixels,
                "from_scales": scales,
                "reason": (
                    "quick mode" if args.quick else f"predicted peak {predicted_peak / 1024:.1f} GiB > 16 GiB"
                ),
            }
    agreement = {
        str(s): {
            "nmi_abs_diff": abs(stream[s]["nmi"] - concat[s]["nmi"]),
            "ari_abs_diff": abs(stream[s]["ari"] - concat[s]["ari"]),
        }
        for s in stream
        if s in concat
    }
    return {
        "full_scale_pixels": full_pixels,
        "streaming": {str(k): v for k, v in stream.items()},
        "concatenating": {str(k): v for k, v in concat.items()},
        "concatenating_fit": {"mib_per_mpixel": fit_mem[1] * 1e6, "s_per_mpixel": fit_time[1] * 1e6},
        "concatenating_full_extrapolated": extrapolated,
        "agreement": agreement,
    }


Row = tuple[str, str, str, str, str, str]
"""One row of the speed table: what, configuration, median, spread, unit, notes."""


def _header_lines(res: dict) -> list[str]:
    """The machine, the command and, on a loaded machine, a warning that absolute times are pessimistic."""
    m = res["machine"]
    lines = [
        "## Speed and memory (CPU)",
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable), "
        f"{m['memory_gib']:.0f} GiB RAM; torch {m['torch']} with {m['torch_threads']} intra-op threads, "
        f"onnxruntime {m['onnxruntime']}, scikit-learn {m['sklearn']}, numpy {m['numpy']}, "
        f"Python {m['python']}. Load average (1 min) {m['load_average_start'][0]:.2f} at the start and "
        f"{res['load_average_end'][0]:.2f} at the end.",
        "",
        f"Command: `{res['command']}` ({'quick' if res['quick'] else 'full'} mode, "
        f"{res['total_wall_s']:.0f} s). Median over repeats; spread = min–max over the same repeats "
        "(n = timed repeats after warm-up).",
        "",
    ]
    load = m["load_average_start"][0]
    if load > 0.5 * m["usable_cpus"]:
        lines += [
            f"**Busy machine**: the load average was {load:.1f} on {m['usable_cpus']} CPUs when this ran, "
            "so absolute timings are pessimistic and noisy; ratios measured in one process (interleaved) "
            "are the more reliable figures.",
            "",
        ]
    return lines


def _train_section(tr: dict) -> tuple[list[Row], list[str]]:
    """Training throughput and peak memory of the cpu and paper presets, and the bar on their ratio."""
    rows: list[Row] = []
    for key in ("cpu", "paper"):
        r = tr[key]
        conf = (
            f"`{key}` preset: f={r['backbone']}, φ={r['feature_extractor']}, {r['input_size']} px, "
            f"batch {r['batch_size']}, loss stride {r['loss_stride']}, {r['optimizer']}"
        )
        note = f"{_fmt(r['step_s']['median'])} s/step; warm-up {r['warmup']}; random weights"
        ips = r["images_per_s"]
        rows.append(("training throughput", conf, _fmt(ips["median"]), _spread(ips), "images/s", note))
        rss_note = "getrusage ru_maxrss of the child: imports, model, optimiser state, one step"
        rows.append(("training peak RSS", conf, _fmt(r["peak_rss_mib"]), "—", "MiB", rss_note))
    speedup = tr["cpu"]["images_per_s"]["median"] / tr["paper"]["images_per_s"]["median"]
    rows.append(
        (
            "training speed-up per image",
            "cpu preset / paper preset",
            _fmt(speedup),
            "—",
            "x",
            "ratio of the medians above",
        )
    )
    bar = (
        f"cpu preset vs paper networks, per image: **{speedup:.1f}x** faster "
        f"(bar >= 3x: {'PASS' if speedup >= 3 else 'FAIL'})"
    )
    return rows, [bar]


STEP_LABELS = {
    "reference": "reference step (`_reference_step.py`): loops, full res, φ x2, f x2",
    "library_stride1": "library step, loss_stride 1 (same resolution as the reference)",
    "library_stride2": "library step, loss_stride 2 (cpu preset)",
}


def _step_section(st: dict) -> tuple[list[Row], list[str]]:
    """The reference step against the library's (interleaved), their ratios and the equality checks."""
    rows: list[Row] = []
    conf = f"cpu preset networks, {st['input_size']} px, batch {st['batch_size']}"
    for name, text in STEP_LABELS.items():
        ips = st["images_per_s"][name]
        note = f"{_fmt(st['step_s'][name]['median'])} s/step; interleaved"
        rows.append(
            (
                "training step before/after",
                f"{conf}; {text}",
                _fmt(ips["median"]),
                _spread(ips),
                "images/s",
                note,
            )
        )
    r2, r1 = st["ratio_vs_stride2"], st["ratio_vs_stride1"]
    rows.append(
        (
            "step speed-up",
            "reference / library (cpu preset, stride 2)",
            _fmt(r2["median"]),
            _spread(r2),
            "x",
            "paired per repeat",
        )
    )
    rows.append(
        (
            "step speed-up",
            "reference / library at stride 1",
            _fmt(r1["median"]),
            _spread(r1),
            "x",
            "code-only gain at equal loss resolution",
        )
    )
    checks = "; ".join(
        f"{c['dtype']}: max loss rel. diff {c['max_loss_rel_diff']:.1e}, grad rel. L2 diff "
        f"{c['grad_rel_l2_diff']:.1e}"
        for c in st["checks"]
    )
    bar = (
        f"library step vs reference step: **{r2['median']:.2f}x** at the cpu preset "
        f"(bar >= 1.5x: {'PASS' if r2['median'] >= 1.5 else 'FAIL'}); "
        f"{r1['median']:.2f}x at equal (full) loss resolution. Same losses and gradients "
        f"at loss_stride 1 ({checks})"
    )
    return rows, [bar]


def _infer_section(inf: dict) -> tuple[list[Row], list[str]]:
    """Throughput and latency of f per backend, and whether every export matches eager."""
    rows: list[Row] = []
    conf = f"cpu preset f ({inf['backbone']} + FPN, K={inf['num_parts']}), {inf['input_size']} px"
    all_match = True
    for name, r in inf["backends"].items():
        ok = r["matches_1e-4"]
        all_match &= ok
        note = f"max abs diff vs eager {r['max_abs_diff_vs_eager']:.1e} ({'ok' if ok else 'MISMATCH'})"
        if name == "pytorch eager":
            note = "the reference of the match checks"
        ips, ms = r["images_per_s"], r["latency_ms"]
        rows.append(
            (
                "inference throughput",
                f"{conf}, batch 8, {name}",
                _fmt(ips["median"]),
                _spread(ips),
                "images/s",
                note,
            )
        )
        rows.append(
            ("inference latency", f"{conf}, batch 1, {name}", _fmt(ms["median"]), _spread(ms), "ms", note)
        )
    if "onnx_error" in inf:
        rows.append(("inference", "onnxruntime", "—", "—", "—", inf["onnx_error"]))
    return rows, [f"exported models match eager within 1e-4: {'PASS' if all_match else 'FAIL'}"]


def _eval_section(ev: dict) -> tuple[list[Row], list[str]]:
    """Streaming vs concatenating evaluation (measured, and extrapolated to full scale where not run)."""
    rows: list[Row] = []
    bars: list[str] = []
    for scale, r in sorted(ev["streaming"].items(), key=lambda kv: float(kv[0])):
        rows += _eval_rows(f"streaming ContingencyTable, {_eval_size(r, scale)}", r, "measured")
    for scale, r in sorted(ev["concatenating"].items(), key=lambda kv: float(kv[0])):
        rows += _eval_rows(f"concatenate + sklearn NMI/ARI, {_eval_size(r, scale)}", r, "measured")
    x = ev["concatenating_full_extrapolated"]
    if x:
        conf = f"concatenate + sklearn NMI/ARI, {_eval_size(x, '1.0')}"
        src = ", ".join(_scale(str(s)) for s in x["from_scales"])
        note = f"**EXTRAPOLATED** (linear fit of scales {src}; not run: {x['reason']})"
        rows.append(("evaluation time", conf, _fmt(x["wall_s"]), "—", "s", note))
        rows.append(("evaluation peak RSS", conf, _fmt(x["peak_rss_mib"]), "—", "MiB", note))
        rows.append(("evaluation memory increment", conf, _fmt(x["increment_mib"]), "—", "MiB", note))
    for s in [s for s in ev["streaming"] if s in ev["concatenating"]]:
        a, b = ev["streaming"][s], ev["concatenating"][s]
        frac = max(a["increment_mib"], 0.0) / b["increment_mib"]
        total_frac = a["peak_rss_mib"] / b["peak_rss_mib"]
        agree = ev["agreement"][s]
        bars.append(
            f"evaluation memory at scale {_scale(s)} (both measured): streaming adds "
            f"{a['increment_mib']:.1f} MiB = **{100 * frac:.2f}%** of concatenating's "
            f"{b['increment_mib']:,.0f} MiB (bar < 1%: {'PASS' if frac < 0.01 else 'FAIL'}); "
            "whole-process "
            f"peak RSS {a['peak_rss_mib']:.0f} vs {b['peak_rss_mib']:,.0f} MiB ({100 * total_frac:.1f}%, "
            f"mostly the imports: numpy, torch, sklearn); streaming is "
            f"{b['wall_s'] / a['wall_s']:.1f}x faster; NMI/ARI agree to "
            f"{max(agree['nmi_abs_diff'], agree['ari_abs_diff']):.0e}"
        )
    full_stream = ev["streaming"].get("1.0")
    full_concat = ev["concatenating"].get("1.0") or x
    if full_stream and full_concat:
        frac = max(full_stream["increment_mib"], 0.0) / full_concat["increment_mib"]
        how = "measured" if "1.0" in ev["concatenating"] else "EXTRAPOLATED"
        bars.append(
            "evaluation memory at full scale: streaming "
            f"{full_stream['increment_mib']:.1f} MiB (measured) "
            f"vs concatenating {full_concat['increment_mib']:,.0f} MiB ({how}) = {100 * frac:.3f}%"
        )
    return rows, bars


SECTIONS = {"train": _train_section, "step": _step_section, "infer": _infer_section, "eval": _eval_section}
"""Result key -> the function that turns that part of the results into table rows and bars (in order)."""


def build_markdown(res: dict) -> str:
    """The BENCHMARKS.md section for one run of this script: header, one table, the bars, the profile."""
    lines = _header_lines(res)
    rows: list[Row] = [("what", "configuration", "median", "spread", "unit", "notes")]
    bars: list[str] = []
    for key, section in SECTIONS.items():
        if res.get(key):
            more_rows, more_bars = section(res[key])
            rows += more_rows
            bars += more_bars
    lines.append("| " + " | ".join(rows[0]) + " |")
    lines.append("|" + "---|" * len(rows[0]))
    for row in rows[1:]:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    lines += ["", "Bars:", ""] + [f"- {b}" for b in bars]
    if res.get("step"):
        lines += [
            "",
            "Top operators of one library training step (cpu preset, torch.profiler, self CPU time):",
            "",
        ]
        lines += ["| operator | self ms | share | calls |", "|---|---|---|---|"]
        for p in res["step"]["profile_library_stride2"]:
            lines.append(f"| `{p['op']}` | {p['self_ms']:.0f} | {100 * p['share']:.0f}% | {p['calls']} |")
    lines += [
        "",
        "Notes: training uses one fixed random batch (no data loading) and random weights; the step includes "
        "the in-step jitter and warp, backward, gradient clipping and the optimiser step. Evaluation wall "
        "time excludes generating the random label maps; memory increment = peak RSS minus the RSS "
        "high-water mark after imports. Exact definitions: the docstring of `benchmarks/speed.py`.",
        "",
    ]
    return "\n".join(lines)


def _eval_size(r: dict, scale: str) -> str:
    images = r.get("images", DEEPFASHION_TEST_IMAGES)
    return f"{images} images ({r['pixels'] / 1e6:.1f}M px, scale {_scale(scale)})"


def _scale(s: str) -> str:
    value = float(s)
    return "1" if value == 1 else f"1/{round(1 / value)}"


def _eval_rows(conf: str, r: dict, how: str) -> list[tuple]:
    agree = f"NMI {100 * r['nmi']:.2f}, ARI {100 * r['ari']:.2f}"
    return [
        ("evaluation time", conf, _fmt(r["wall_s"]), "n=1", "s", f"{how}; excl. label generation; {agree}"),
        ("evaluation peak RSS", conf, _fmt(r["peak_rss_mib"]), "n=1", "MiB", f"{how}; whole process"),
        (
            "evaluation memory increment",
            conf,
            _fmt(max(r["increment_mib"], 0.0)),
            "n=1",
            "MiB",
            f"{how}; peak RSS - RSS after imports ({r['baseline_rss_mib']:.0f} MiB)",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats, evaluation at 1/16 scale (< 3 min)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch / ONNX Runtime intra-op threads")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default: 5, quick: 3)")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument("--out", type=Path, default=HERE / "out", help="folder for speed.md and speed.json")
    # internal: run one measurement in this (fresh) process and print its JSON
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = CHILDREN[args.child](args)
        print(RESULT_MARKER + json.dumps(result), flush=True)
        return 0

    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown --only part(s) {unknown}; choose from {','.join(PARTS)}")
    repeats = args.repeats or (3 if args.quick else 5)
    threads = args.threads
    started = time.perf_counter()
    command = shlex.join(["python", "benchmarks/speed.py", *(sys.argv[1:] if argv is None else argv)])
    res: dict = {
        "command": command,
        "quick": args.quick,
        "repeats": repeats,
        "machine": machine_info(threads),
    }
    if "train" in parts:
        paper_repeats = 1 if args.quick and args.repeats is None else repeats
        res["train"] = {
            "cpu": run_child("train", threads, preset="cpu", warmup=1 if args.quick else 2, repeats=repeats),
            "paper": run_child(
                "train", threads, preset="paper", warmup=0 if args.quick else 1, repeats=paper_repeats
            ),
        }
    if "step" in parts:
        res["step"] = run_child("step", threads, warmup=1, repeats=repeats, quick=args.quick)
    if "infer" in parts:
        res["infer"] = run_child("infer", threads, warmup=2 if args.quick else 3, repeats=repeats)
    if "eval" in parts:
        res["eval"] = run_eval(args, threads)
    res["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    res["total_wall_s"] = time.perf_counter() - started
    markdown = build_markdown(res)
    args.out.mkdir(parents=True, exist_ok=True)
    from partdiscovery.utils.io import atomic_write_json, atomic_write_text

    atomic_write_json(args.out / "speed.json", res)
    atomic_write_text(args.out / "speed.md", markdown)
    print(markdown)
    print(f"[speed] wrote {args.out / 'speed.md'} and {args.out / 'speed.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
