"""The ``partdiscovery`` command line: thin wrappers over the library.

Every command prints one clear line on standard error and exits non-zero for bad input
(a :class:`~partdiscovery.errors.PartDiscoveryError`); ``--help`` documents each one.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

from partdiscovery.errors import PartDiscoveryError
from partdiscovery.utils.registry import UnknownNameError


def _add_common_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")


# ----------------------------------------------------------------------------------------------- synth
def cmd_synth(args: argparse.Namespace) -> int:
    from partdiscovery.data.synth import generate_synthetic_dataset

    out = generate_synthetic_dataset(args.out, n=args.n, num_parts=args.parts, size=args.size, seed=args.seed)
    print(f"wrote a synthetic dataset of {args.n} images with {args.parts} parts to {out}")
    return 0


# ----------------------------------------------------------------------------------------------- train
def build_config(args: argparse.Namespace):
    from partdiscovery.config import load_config

    overrides = list(args.overrides)
    if args.parts is not None:
        overrides.append(f"model.num_parts={args.parts}")
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    if args.no_pretrained:
        overrides.append("model.pretrained=false")
    return load_config(args.preset, args.config, overrides)


def explicitly_set(overrides: list[str], key: str) -> bool:
    """Whether a dotted override sets ``key`` (e.g. ``model.learned_background``)."""
    return any(o.split("=", 1)[0].strip() == key for o in overrides)


def training_dataset(
    cfg,
    data: str | None,
    out: str | Path,
    images: str | None = None,
    masks: str | None = None,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    keep_background_setting: bool = False,
):
    """The training split to train on, the config to train with, and what ``run_info.json`` should
    record about the masks.

    Masks, in order of precedence: ``masks`` (a folder of ``<id>.png``), the part folder's own
    ``masks/``, else automatic masks computed from the images alone (:mod:`partdiscovery.foreground`)
    into ``OUT/masks``, reused on ``--resume``. With automatic masks the model also learns a background
    channel (``model.learned_background``, unless ``keep_background_setting``), so that ``predict``
    works on raw photos without masks.

    Returns:
        ``(dataset, cfg, info)``.
    """
    from partdiscovery.data import ImageFolderDataset, PartFolderDataset, open_dataset
    from partdiscovery.data.part_folder import split_image_paths
    from partdiscovery.foreground.folder import MANIFEST, list_images, write_mask_folder
    from partdiscovery.segmenter import resolve_device
    from partdiscovery.training.trainer import RunFolder

    if (data is None) == (images is None):
        raise PartDiscoveryError("give exactly one of --data DATASET or --images FOLDER")
    if images is not None and masks is not None:
        return ImageFolderDataset(images, masks), cfg, {"masks": {"source": "given", "folder": str(masks)}}
    root = Path(data) if data is not None else None
    if root is not None:
        if masks is not None:
            dataset = PartFolderDataset(root, "train", masks=masks)
            return dataset, cfg, {"masks": {"source": "given", "folder": str(masks)}}
        if not (root.is_dir() and (root / "images").is_dir() and not (root / "masks").is_dir()):
            dataset = open_dataset(data, "train")
            given = getattr(dataset, "masks_dir", None)
            return dataset, cfg, {"masks": {"source": "given", "folder": str(given) if given else str(data)}}
        paths = split_image_paths(root, "train")
    else:
        paths = list_images(images)

    # No masks anywhere: make them from the images (fitted on this very collection), then train.
    RunFolder(Path(out)).prepare(resume, overwrite)  # refuse to clobber a run before the slow part
    if cfg.train.threads > 0:  # φ runs here, before the trainer would set the threads
        import torch

        torch.set_num_threads(cfg.train.threads)
    mask_dir = Path(out) / "masks"
    fg = cfg.foreground
    source = root / "images" if root is not None else Path(images)
    if not quiet:
        print(
            f"no foreground masks for {source}: computing them from the images ({fg.coarse} + {fg.refine}, "
            f"fitted on these {len(paths)} images) into {mask_dir}",
            file=sys.stderr,
            flush=True,
        )
    manifest = write_mask_folder(paths, mask_dir, fg, resolve_device(device), progress=not quiet)
    if not quiet and manifest["reused"]:
        print(f"reusing the masks in {mask_dir} (same images and foreground config)", file=sys.stderr)
    if not keep_background_setting and not cfg.model.learned_background:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, learned_background=True))
    if root is not None:
        dataset = PartFolderDataset(root, "train", masks=mask_dir)
    else:
        dataset = ImageFolderDataset(images, mask_dir)
    info = {
        "masks": {
            "source": "automatic",
            "folder": str(mask_dir),
            "approach": f"{fg.coarse}+{fg.refine}",
            "manifest": str(mask_dir / MANIFEST),
            "reused": manifest["reused"],
            "empty_masks_replaced_by_whole_image": len(manifest["empty_masks_replaced_by_whole_image"]),
        }
    }
    return dataset, cfg, info


def run_training(
    cfg,
    data: str | None,
    out: str | Path,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    images: str | None = None,
    masks: str | None = None,
    keep_background_setting: bool = False,
) -> dict:
    """Train ``cfg`` on a dataset (``data``) or a plain folder of images (``images``) into ``out``;
    foreground masks are computed first where there are none (:func:`training_dataset`)."""
    from partdiscovery.segmenter import resolve_device
    from partdiscovery.training import Trainer, create_method
    from partdiscovery.utils.seed import seed_everything

    dataset, cfg, info = training_dataset(
        cfg, data, out, images, masks, device, resume, overwrite, quiet, keep_background_setting
    )
    seed_everything(cfg.train.seed)
    method = create_method(cfg)
    trainer = Trainer(
        method,
        cfg,
        dataset,
        out,
        device=resolve_device(device),
        resume=resume,
        overwrite=overwrite,
        progress=not quiet,
        info=info,
    )
    return trainer.fit()


def cmd_train(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    summary = run_training(
        cfg,
        args.data,
        args.out,
        args.device,
        args.resume,
        args.overwrite,
        args.quiet,
        images=args.images,
        masks=args.masks,
        keep_background_setting=explicitly_set(args.overrides, "model.learned_background"),
    )
    print(
        f"trained {summary['steps']} steps in {summary['wall_s']:.1f} s "
        f"({summary['images_per_s']:.2f} images/s, peak RSS {summary['peak_rss_mb']:.0f} MiB); run: {args.out}"
    )
    return 0


# ----------------------------------------------------------------------------------------------- masks
def cmd_masks(args: argparse.Namespace) -> int:
    from partdiscovery.config import load_config
    from partdiscovery.foreground.folder import list_images, write_mask_folder
    from partdiscovery.segmenter import resolve_device

    wrong = [o for o in args.overrides if not o.startswith("foreground.")]
    if wrong:
        raise PartDiscoveryError(f"masks takes foreground.key=value overrides only, got {wrong[0]!r}")
    cfg = load_config(None, overrides=args.overrides).foreground
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    manifest = write_mask_folder(
        list_images(args.images), args.out, cfg, resolve_device(args.device), progress=not args.quiet
    )
    how = "reused the" if manifest["reused"] else "wrote"
    print(
        f"{how} {manifest['count']} foreground masks in {args.out} ({cfg.coarse} + {cfg.refine}, fitted on "
        f"{manifest['fitted_on']} images, {manifest['ms_per_image']:.0f} ms per image)"
    )
    return 0


# -------------------------------------------------------------------------------------------- evaluate
def evaluate_run_or_predictions(
    data: str,
    split: str,
    run: str | None = None,
    predictions: str | None = None,
    device: str = "auto",
    progress: bool = True,
    protocol: str | None = None,
    use_masks: bool = True,
) -> dict:
    """Score a run or a predictions folder with ``protocol`` (default: the dataset's own)."""
    from partdiscovery.evaluation.protocols import default_protocol, evaluate_protocol

    return evaluate_protocol(
        protocol or default_protocol(data),
        data,
        split,
        run=run,
        predictions=predictions,
        device=device,
        progress=progress,
        use_masks=use_masks,
    )


def _print_metrics(result: dict) -> None:
    shown = [
        k for k in ("fg_nmi", "fg_ari", "nmi", "ari", "error") if isinstance(result.get(k), (int, float))
    ]
    counts = [f"{k}={result[k]}" for k in ("n_images", "n_keypoints", "split") if k in result]
    print("  ".join(f"{k}={result[k]:.2f}" for k in shown) + f"  ({', '.join(counts)})")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from partdiscovery.utils.io import atomic_write_json

    if bool(args.run) == bool(args.predictions):
        raise PartDiscoveryError("give exactly one of --run RUN or --predictions DIR")
    result = evaluate_run_or_predictions(
        args.data,
        args.split,
        args.run,
        args.predictions,
        args.device,
        not args.quiet,
        args.protocol,
        use_masks=not args.no_masks,
    )
    _print_metrics(result)
    if args.json:
        atomic_write_json(args.json, result)
    return 0


# -------------------------------------------------------------------------------------------- baseline
def run_baseline(
    name: str,
    data: str,
    out: str | Path,
    parts: int,
    input_size: int = 128,
    seed: int = 0,
    split: str = "test",
    pretrained: bool = True,
    feature_extractor: str = "efficientnet_lite0",
    progress: bool = True,
) -> Path:
    """Fit baseline ``name`` on the train split's φ features and write its ``split`` predictions to ``out``."""
    from partdiscovery.baselines import BASELINES
    from partdiscovery.data import open_dataset
    from partdiscovery.evaluation import write_predictions
    from partdiscovery.models import create_feature_extractor
    from partdiscovery.utils.io import atomic_write_json
    from partdiscovery.utils.seed import seed_everything

    baseline = BASELINES.build(name)
    seed_everything(seed)
    phi = create_feature_extractor(
        feature_extractor, pretrained=pretrained, normalize=baseline.normalize_features
    )
    started = time.perf_counter()
    model = baseline.fit(phi, open_dataset(data, "train"), parts, input_size, seed=seed, progress=progress)
    for _ in write_predictions(
        baseline.predict(phi, model, open_dataset(data, split), input_size, progress=progress), out
    ):
        pass
    atomic_write_json(
        Path(out) / "baseline_info.json",
        {
            "baseline": name,
            "parts": parts,
            "input_size": input_size,
            "seed": seed,
            "split": split,
            "feature_extractor": feature_extractor,
            "normalize_features": baseline.normalize_features,
            "pretrained": pretrained,
            "data": str(data),
            "wall_s": round(time.perf_counter() - started, 2),
        },
    )
    return Path(out)


def run_scops_baseline(args: argparse.Namespace) -> Path:
    """SCOPS is trained, not fitted: train it with the trainer into ``OUT/run`` (config, checkpoints,
    log, as any run), then write its ``split`` predictions to ``OUT`` like the other baselines."""
    from partdiscovery.data import open_dataset
    from partdiscovery.evaluation import write_predictions
    from partdiscovery.segmenter import PartSegmenter

    overrides = ["method=scops", *args.overrides]
    if args.input_size is not None:
        overrides.append(f"data.input_size={args.input_size}")
    cfg = build_config(argparse.Namespace(**{**vars(args), "overrides": overrides, "config": None}))
    run = Path(args.out) / "run"
    run_training(cfg, args.data, run, args.device, overwrite=args.overwrite, quiet=args.quiet)
    segmenter = PartSegmenter.load(run, device=args.device)
    dataset = open_dataset(args.data, args.split)
    for _ in write_predictions(segmenter.predict_dataset(dataset, progress=not args.quiet), args.out):
        pass
    return Path(args.out)


def cmd_baseline(args: argparse.Namespace) -> int:
    if args.name == "scops":
        out = run_scops_baseline(args)
    else:
        trained_only = [flag for flag in ("steps", "overrides", "overwrite") if getattr(args, flag)]
        if trained_only or args.preset != "cpu":
            raise PartDiscoveryError(
                f"{args.name} is fitted, not trained: --steps, --preset, --overwrite and --set "
                "apply to scops only"
            )
        out = run_baseline(
            args.name,
            args.data,
            args.out,
            args.parts,
            args.input_size or 128,
            args.seed,
            args.split,
            not args.no_pretrained,
            progress=not args.quiet,
        )
    print(f"wrote {args.name} predictions for split {args.split!r} to {out}")
    return 0


# --------------------------------------------------------------------------------------------- predict
def cmd_predict(args: argparse.Namespace) -> int:
    from partdiscovery.data import ImageFolderDataset
    from partdiscovery.segmenter import PartSegmenter
    from partdiscovery.utils.io import atomic_save_image
    from partdiscovery.viz import label_image, parts_figure

    segmenter = PartSegmenter.load(args.run, device=args.device, amp=args.amp)
    dataset = ImageFolderDataset(args.images, args.masks)
    if args.masks is None and not segmenter.has_learned_background:
        warnings.warn(
            "no --masks given and the model has no learned background: the whole image is "
            "treated as foreground",
            stacklevel=1,
        )
    out = Path(args.out)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    count = 0
    for index, pred in enumerate(
        segmenter.predict_dataset(dataset, batch_size=args.batch_size, progress=not args.quiet)
    ):
        atomic_save_image(out / "labels" / f"{pred.id}.png", label_image(pred.parts))
        figure = parts_figure(dataset.load(index).image, pred.parts, segmenter.num_parts)
        atomic_save_image(out / "overlays" / f"{pred.id}.png", figure)
        count += 1
    print(
        f"segmented {count} images into {segmenter.num_parts} parts: {out / 'labels'} (labels), "
        f"{out / 'overlays'} (overlays)"
    )
    return 0


# ------------------------------------------------------------------------------------------------ demo
def cmd_demo(args: argparse.Namespace) -> int:
    from partdiscovery.cli.demo import run_demo

    run_demo(args.out, steps=args.steps, n=args.n, overwrite=args.overwrite, quiet=args.quiet)
    return 0


# ---------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from partdiscovery.export import export_model

    out = export_model(args.run, args.format, args.out)
    print(f"exported {args.run} as {args.format} to {out}")
    return 0


# ---------------------------------------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    from partdiscovery.viz.report import write_report

    out = write_report(
        args.run,
        data=args.data,
        out=args.out,
        split=args.split,
        max_images=args.max_images,
        device=args.device,
        progress=not args.quiet,
    )
    print(f"wrote the report of {args.run} to {out}")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from partdiscovery.baselines import BASELINES
    from partdiscovery.config import list_presets
    from partdiscovery.evaluation.protocols import PROTOCOLS

    parser = argparse.ArgumentParser(
        prog="partdiscovery",
        description="Unsupervised part discovery from contrastive reconstruction (Choudhury et al., NeurIPS 2021).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write a synthetic dataset in the part folder format")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=300, help="number of images (default 300)")
    p.add_argument("--parts", type=int, default=4, help="number of parts K (default 4)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "train",
        help="train the part segmentation network",
        description="Train on a dataset; extra arguments section.key=value override the config "
        "(e.g. optim.lr=3e-4 loss.contrastive=2).",
    )
    p.add_argument(
        "--data",
        default=None,
        help="dataset: a part folder path, or NAME:ARGS (e.g. cub:PATH); without masks/ they are computed first",
    )
    p.add_argument(
        "--images", default=None, help="instead of --data: a plain folder of images (masks computed first)"
    )
    p.add_argument(
        "--masks", default=None, help="folder of <id>.png foreground masks (takes precedence over all others)"
    )
    p.add_argument(
        "--out", required=True, help="run folder (config, log, checkpoints; automatic masks in OUT/masks)"
    )
    p.add_argument("--preset", default="cpu", choices=list_presets(), help="cpu (default), photos or paper")
    p.add_argument("--config", default=None, help="a YAML file merged over the preset")
    p.add_argument("--parts", type=int, default=None, help="number of parts K")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint in --out")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    p.add_argument(
        "--no-pretrained", action="store_true", help="random weights for f and φ (smoke tests, timing)"
    )
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a run or a folder of predictions (FG-NMI, FG-ARI, NMI, ARI)")
    p.add_argument("--run", default=None, help="run folder, checkpoint or exported model")
    p.add_argument("--predictions", default=None, help="folder of <id>.png label maps (0 = background)")
    p.add_argument(
        "--data",
        required=True,
        help="dataset with ground truth: a part folder or NAME:ARGS "
        "(cub:PATH, deepfashion:PATH, pascal-part:CLASS:PATH)",
    )
    p.add_argument("--split", default="test")
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    p.add_argument(
        "--protocol",
        default=None,
        choices=PROTOCOLS.names(),
        help="default: cub-keypoints for cub:..., pixel otherwise (see docs/reproduce.md)",
    )
    p.add_argument(
        "--no-masks",
        action="store_true",
        help="score the model's learned background instead of the dataset's masks (adds fg_iou)",
    )
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "baseline",
        help="run a baseline and write its predictions",
        description="k-means and DFF are fitted on the train split's φ features; SCOPS is trained "
        "(into OUT/run; --steps, --preset, --overwrite and --set apply to it).",
    )
    p.add_argument("name", choices=[*BASELINES.names(), "scops"], help="the baseline")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="folder for <id>.png predictions")
    p.add_argument("--parts", type=int, default=4)
    p.add_argument("--input-size", type=int, default=None, help="default 128 (scops: the preset's)")
    p.add_argument("--split", default="test", help="split to predict (fitted on train)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pretrained", action="store_true")
    p.add_argument("--steps", type=int, default=None, help="scops: training steps (default: the preset's)")
    p.add_argument("--preset", default="cpu", choices=list_presets(), help="scops: config preset")
    p.add_argument("--overwrite", action="store_true", help="scops: replace a previous run in OUT/run")
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        default=[],
        metavar="section.key=value",
        help="scops: config overrides",
    )
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser(
        "masks",
        help="foreground masks for a folder of images, without labels",
        description="Fit a foreground model on the folder's images (frozen φ features, border prior, GrabCut) "
        "and write OUT/<stem>.png masks (0/255) plus OUT/foreground.json. Extra arguments "
        "foreground.key=value override the method (e.g. foreground.refine=none).",
    )
    p.add_argument(
        "--images", required=True, help="folder of images (at least 2, of the same kind of object)"
    )
    p.add_argument("--out", required=True, help="output folder for the masks")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: PyTorch's default)")
    p.add_argument("overrides", nargs="*", metavar="foreground.key=value")
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_masks)

    p = sub.add_parser("predict", help="segment a folder of images into parts (labels + overlays)")
    p.add_argument("--run", required=True, help="run folder, checkpoint or exported model")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--out", required=True, help="output folder (labels/ and overlays/)")
    p.add_argument("--masks", default=None, help="optional folder of <stem>.png foreground masks")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a trained model as safetensors, ONNX or TorchScript")
    p.add_argument("run", help="run folder, checkpoint or exported .safetensors")
    p.add_argument("--format", required=True, choices=["safetensors", "onnx", "torchscript"])
    p.add_argument("--out", required=True, help="output file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="write a self-contained HTML report of a run")
    p.add_argument("run", help="run folder (or a checkpoint in one)")
    p.add_argument(
        "--data",
        default=None,
        help="dataset: adds metrics, test images with their parts and per-part galleries",
    )
    p.add_argument("--out", default=None, help="HTML file (default RUN/report.html)")
    p.add_argument("--split", default="test", help="split to show and score (default test)")
    p.add_argument("--max-images", type=int, default=16, help="images in the grid (default 16)")
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="synthetic data -> train -> evaluate vs k-means -> overlays, on CPU")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the demo's)")
    p.add_argument("--n", type=int, default=None, help="number of synthetic images (default: the demo's)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (PartDiscoveryError, UnknownNameError, ValueError) as e:
        message = str(e)
        print(f"partdiscovery {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"partdiscovery {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
