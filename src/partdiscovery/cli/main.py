"""The ``partdiscovery`` command line: thin wrappers over the library.

The boundary rules (what the tool promises, README "Your files are safe"):

- Every argument is checked before any work starts: numbers against their ranges (argparse types
  below, config values by :func:`partdiscovery.config.validate_config`), devices against this machine,
  output paths by :mod:`partdiscovery.utils.outputs` (never a user's file or folder, never inside the
  input data, a previous result only with ``--overwrite``).
- A user's mistake (:class:`~partdiscovery.errors.PartDiscoveryError`, an unknown registered name, a
  bad flag) prints one line ``partdiscovery COMMAND: error: ...`` on standard error and exits 2.
- Anything else is a bug and keeps its traceback: ``ValueError`` is *not* turned into a message.
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

SYNTH_MAX_PARTS = 12  # partdiscovery.data.synth.MAX_PARTS, without importing numpy and PIL to parse


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: message``, exit 2), like every other user error;
    the usage is one ``--help`` away."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_in(low: int, high: int | None = None):
    """An argparse type: an integer in ``low..high`` (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _parts_type(high: int):
    parse = _int_in(2, high)

    def parts(text: str) -> int:
        try:
            return parse(text)
        except argparse.ArgumentTypeError as e:
            # One part would label every foreground pixel the same: nothing to discover, a score of 0.
            raise argparse.ArgumentTypeError(f"{e} (the number of parts K; at least 2)") from None

    return parts


def _device(text: str) -> str:
    """An argparse type: a device name that exists on this machine (checked once, before any work)."""
    from partdiscovery.segmenter import resolve_device

    try:
        resolve_device(text)
    except PartDiscoveryError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _add_common_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        type=_device,
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")


def _data_inputs(data: str | None) -> list:
    from partdiscovery.data import dataset_root

    return [(dataset_root(data) if data else None, "dataset folder")]


# ----------------------------------------------------------------------------------------------- synth
def cmd_synth(args: argparse.Namespace) -> int:
    from partdiscovery.data.synth import generate_synthetic_dataset

    out = generate_synthetic_dataset(
        args.out, n=args.n, num_parts=args.parts, size=args.size, seed=args.seed, overwrite=args.overwrite
    )
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
    split: str = "train",
):
    """The training split (``split``) to train on, the config to train with, and what ``run_info.json`` should
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
    from partdiscovery.runs import RunFolder
    from partdiscovery.segmenter import resolve_device

    if (data is None) == (images is None):
        raise PartDiscoveryError("give exactly one of --data DATASET or --images FOLDER")
    if images is not None and masks is not None:
        return ImageFolderDataset(images, masks), cfg, {"masks": {"source": "given", "folder": str(masks)}}
    root = Path(data) if data is not None else None
    if root is not None:
        if masks is not None:
            dataset = PartFolderDataset(root, split, masks=masks)
            return dataset, cfg, {"masks": {"source": "given", "folder": str(masks)}}
        if not (root.is_dir() and (root / "images").is_dir() and not (root / "masks").is_dir()):
            dataset = open_dataset(data, split)
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
        dataset = PartFolderDataset(root, split, masks=mask_dir)
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
    split: str = "train",
    images: str | None = None,
    masks: str | None = None,
    keep_background_setting: bool = False,
) -> dict:
    """Train ``cfg`` on a dataset (``data``) or a plain folder of images (``images``) into ``out``;
    foreground masks are computed first where there are none (:func:`training_dataset`)."""
    from partdiscovery.runs import RunFolder
    from partdiscovery.segmenter import resolve_device
    from partdiscovery.training import Trainer, create_method
    from partdiscovery.utils.seed import seed_everything

    inputs = _data_inputs(data) + ([(Path(images), "image folder")] if images else [])
    RunFolder(Path(out)).check(resume, overwrite, inputs=inputs)  # before reading any data
    dataset, cfg, info = training_dataset(
        cfg, data, out, images, masks, device, resume, overwrite, quiet, keep_background_setting, split
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
    from partdiscovery.data.part_folder import HOLDOUT_SPLIT

    if args.holdout_val and args.data is None:
        raise PartDiscoveryError("--holdout-val needs --data: a part folder, whose train.txt it splits")
    cfg = build_config(args)

    summary = run_training(
        cfg,
        args.data,
        args.out,
        args.device,
        args.resume,
        args.overwrite,
        args.quiet,
        split=HOLDOUT_SPLIT if args.holdout_val else "train",
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


def _is_metrics_json(path: Path) -> bool:
    """A metrics JSON written by ``evaluate --json`` (the keys every protocol's result carries)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"split", "data", "source"} <= set(data)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from partdiscovery.utils.io import atomic_write_json
    from partdiscovery.utils.outputs import check_output_file

    if bool(args.run) == bool(args.predictions):
        raise PartDiscoveryError("give exactly one of --run RUN or --predictions DIR")
    if args.json:
        check_output_file(
            args.json,
            args.overwrite,
            what="metrics JSON",
            ours=_is_metrics_json,
            inputs=_data_inputs(args.data),
        )
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
PREDICTIONS_KIND = "predictions"


def prediction_folder(out: str | Path, files: list[str], overwrite: bool, inputs: list | None = None):
    """Check that ``files`` (relative paths) may be written into the predictions folder ``out``: new,
    empty, or a predictions folder of ours (then only with ``overwrite``, and never over a user's file).
    Writes nothing; returns the :class:`~partdiscovery.utils.outputs.OutputFolder` to ``claim`` and
    ``finish``."""
    from partdiscovery.utils.outputs import OutputFolder

    folder = OutputFolder(out, PREDICTIONS_KIND)
    folder.check(overwrite, inputs=inputs or [])
    folder.refuse_foreign_files(files)
    return folder


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
    fit_split: str = "train",
    feature_layers: tuple[float, ...] | None = None,
    overwrite: bool = False,
) -> Path:
    """Fit baseline ``name`` on the ``fit_split`` φ features and write its ``split`` predictions to ``out``
    (a new or empty folder, or, with ``overwrite``, an earlier predictions folder of ours).

    ``feature_layers``: φ's per-layer weights (``model.feature_layers`` of a config); default φ's own."""
    from partdiscovery.baselines import BASELINES
    from partdiscovery.config import MAX_PARTS
    from partdiscovery.data import open_dataset
    from partdiscovery.errors import InvalidArgumentError
    from partdiscovery.evaluation import write_predictions
    from partdiscovery.models import create_feature_extractor
    from partdiscovery.utils.io import atomic_write_json
    from partdiscovery.utils.seed import seed_everything

    if isinstance(parts, bool) or not isinstance(parts, int) or not 2 <= parts <= MAX_PARTS:
        raise InvalidArgumentError(f"--parts must be in 2..{MAX_PARTS}, got {parts!r}")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or not 32 <= input_size <= 4096:
        raise InvalidArgumentError(f"--input-size must be in 32..4096 pixels, got {input_size!r}")
    baseline = BASELINES.build(name)
    inputs = _data_inputs(data)
    prediction_folder(out, [], overwrite, inputs)  # fail before reading any data
    train_set, predict_set = open_dataset(data, fit_split), open_dataset(data, split)
    files = [f"{i}.png" for i in predict_set.ids] + ["baseline_info.json"]
    folder = prediction_folder(
        out, files, overwrite, inputs + [(getattr(predict_set, "root", None), "dataset folder")]
    )
    seed_everything(seed)
    phi = create_feature_extractor(
        feature_extractor,
        pretrained=pretrained,
        normalize=baseline.normalize_features,
        layer_weights=feature_layers,
    )
    started = time.perf_counter()
    model = baseline.fit(phi, train_set, parts, input_size, seed=seed, progress=progress)
    folder.claim(files)
    for _ in write_predictions(baseline.predict(phi, model, predict_set, input_size, progress=progress), out):
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
            "feature_layers": list(phi.layer_weights),
            "fit_split": fit_split,
            "normalize_features": baseline.normalize_features,
            "pretrained": pretrained,
            "data": str(data),
            "wall_s": round(time.perf_counter() - started, 2),
        },
    )
    folder.finish(files)
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
    inputs = _data_inputs(args.data)
    prediction_folder(args.out, [], args.overwrite, inputs)  # fail before training
    dataset = open_dataset(args.data, args.split)
    files = [f"{i}.png" for i in dataset.ids]
    folder = prediction_folder(args.out, files, args.overwrite, inputs)
    run = Path(args.out) / "run"
    folder.claim(files)
    run_training(cfg, args.data, run, args.device, overwrite=args.overwrite, quiet=args.quiet)
    segmenter = PartSegmenter.load(run, device=args.device)
    for _ in write_predictions(segmenter.predict_dataset(dataset, progress=not args.quiet), args.out):
        pass
    folder.finish(files)
    return Path(args.out)


def cmd_baseline(args: argparse.Namespace) -> int:
    if args.name == "scops":
        out = run_scops_baseline(args)
    else:
        trained_only = [flag for flag in ("steps",) if getattr(args, flag)]
        if trained_only:
            raise PartDiscoveryError(
                f"{args.name} is fitted, not trained: --steps and other training flags apply to scops only"
            )
        # The preset (and --set) choose φ and the input size, so that a baseline always uses the same
        # features as the method it is compared with.
        from partdiscovery.config import load_config

        cfg = load_config(args.preset, overrides=args.overrides)
        out = run_baseline(
            args.name,
            args.data,
            args.out,
            args.parts,
            args.input_size or cfg.data.input_size,
            args.seed,
            args.split,
            not args.no_pretrained,
            feature_extractor=cfg.model.feature_extractor,
            progress=not args.quiet,
            feature_layers=cfg.model.feature_layers,
            overwrite=args.overwrite,
        )
    print(f"wrote {args.name} predictions for split {args.split!r} to {out}")
    return 0


# --------------------------------------------------------------------------------------------- predict
def cmd_predict(args: argparse.Namespace) -> int:
    from partdiscovery.data import ImageFolderDataset
    from partdiscovery.segmenter import PartSegmenter
    from partdiscovery.utils.io import atomic_save_image
    from partdiscovery.viz import label_image, parts_figure

    inputs = [(args.images, "image folder"), (args.masks, "mask folder")]
    prediction_folder(args.out, [], args.overwrite, inputs)  # fail before reading anything
    dataset = ImageFolderDataset(args.images, args.masks)
    files = [f"{sub}/{i}.png" for i in dataset.ids for sub in ("labels", "overlays")]
    folder = prediction_folder(args.out, files, args.overwrite, inputs)
    segmenter = PartSegmenter.load(args.run, device=args.device, amp=args.amp)
    if args.masks is None and not segmenter.has_learned_background:
        warnings.warn(
            "no --masks given and the model has no learned background: the whole image is "
            "treated as foreground",
            stacklevel=1,
        )
    out = Path(args.out)
    folder.claim(files)
    count = 0
    for index, pred in enumerate(
        segmenter.predict_dataset(dataset, batch_size=args.batch_size, progress=not args.quiet)
    ):
        atomic_save_image(out / "labels" / f"{pred.id}.png", label_image(pred.parts))
        figure = parts_figure(dataset.load(index).image, pred.parts, segmenter.num_parts)
        atomic_save_image(out / "overlays" / f"{pred.id}.png", figure)
        count += 1
    folder.finish(files)
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

    out = export_model(args.run, args.format, args.out, overwrite=args.overwrite)
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
        overwrite=args.overwrite,
    )
    print(f"wrote the report of {args.run} to {out}")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from partdiscovery.baselines import BASELINES
    from partdiscovery.config import MAX_PARTS, list_presets
    from partdiscovery.evaluation.protocols import PROTOCOLS

    parser = _Parser(
        prog="partdiscovery",
        description="Unsupervised part discovery from contrastive reconstruction (Choudhury et al., NeurIPS 2021).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write a synthetic dataset in the part folder format")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--n", type=_int_in(2, 1_000_000), default=300, help="number of images (default 300)")
    p.add_argument(
        "--parts", type=_parts_type(SYNTH_MAX_PARTS), default=4, help="number of parts K (default 4)"
    )
    p.add_argument("--size", type=_int_in(32, 4096), default=128, help="image side in pixels (default 128)")
    p.add_argument("--seed", type=_int_in(0), default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a synthetic dataset written earlier")
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
    p.add_argument("--parts", type=_parts_type(MAX_PARTS), default=None, help="number of parts K")
    p.add_argument("--steps", type=_int_in(1), default=None)
    p.add_argument("--seed", type=_int_in(0), default=None)
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint in --out")
    p.add_argument(
        "--holdout-val",
        action="store_true",
        help="train without the validation split (a hashed 20%% of train), to tune on `evaluate --split val`",
    )
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
    p.add_argument("--overwrite", action="store_true", help="replace the --json file of an earlier evaluate")
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
    p.add_argument("--parts", type=_parts_type(MAX_PARTS), default=4)
    p.add_argument("--input-size", type=_int_in(32, 4096), default=None, help="default: the preset's")
    p.add_argument("--split", default="test", help="split to predict (fitted on train)")
    p.add_argument("--seed", type=_int_in(0), default=0)
    p.add_argument("--no-pretrained", action="store_true")
    p.add_argument(
        "--steps", type=_int_in(1), default=None, help="scops: training steps (default: the preset's)"
    )
    p.add_argument(
        "--preset",
        default="cpu",
        choices=list_presets(),
        help="config preset: φ and input size of k-means / DFF, the whole config of scops",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace earlier predictions (and scops run) in OUT"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        default=[],
        metavar="section.key=value",
        help="config overrides (k-means / DFF use model.feature_extractor, model.feature_layers, "
        "data.input_size)",
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
    p.add_argument(
        "--threads", type=_int_in(0), default=0, help="torch intra-op threads (0: PyTorch's default)"
    )
    p.add_argument("overrides", nargs="*", metavar="foreground.key=value")
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_masks)

    p = sub.add_parser("predict", help="segment a folder of images into parts (labels + overlays)")
    p.add_argument("--run", required=True, help="run folder, checkpoint or exported model")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--out", required=True, help="output folder (labels/ and overlays/)")
    p.add_argument("--masks", default=None, help="optional folder of <stem>.png foreground masks")
    p.add_argument("--batch-size", type=_int_in(1, 65536), default=8)
    p.add_argument("--overwrite", action="store_true", help="replace the predictions of an earlier predict")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a trained model as safetensors, ONNX or TorchScript")
    p.add_argument("run", help="run folder, checkpoint or exported .safetensors")
    p.add_argument("--format", required=True, choices=["safetensors", "onnx", "torchscript"])
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export at --out")
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
    p.add_argument("--max-images", type=_int_in(0), default=16, help="images in the grid (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report at --out")
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="synthetic data -> train -> evaluate vs k-means -> overlays, on CPU")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--steps", type=_int_in(1), default=None, help="training steps (default: the demo's)")
    p.add_argument(
        "--n",
        type=_int_in(4, 1_000_000),
        default=None,
        help="number of synthetic images (default: the demo's)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (PartDiscoveryError, UnknownNameError) as e:  # the user's to fix; anything else is a bug
        print(f"partdiscovery {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"partdiscovery {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
