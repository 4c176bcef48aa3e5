"""The ``partdiscovery`` command line: argparse and printing over :mod:`partdiscovery.workflows`.

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
import sys
import warnings
from pathlib import Path

from partdiscovery.errors import ConfigError, PartDiscoveryError

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


def _override(text: str) -> str:
    """An argparse type: one ``section.key=value`` override (``--set`` takes several, so that a positional
    argument after them would be read as one: say so)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not section.key=value (give positional arguments before --set)"
        )
    return text


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


def _add_refine_flag(p: argparse.ArgumentParser) -> None:
    from partdiscovery.models.refine import list_part_refiners

    p.add_argument(
        "--refine",
        default=None,
        choices=list_part_refiners(),
        help="snap the part maps to the image's edges (guided) or not (none); default: the model's "
        "predict.refine",
    )


def _add_part_names_flag(p: argparse.ArgumentParser, where: str) -> None:
    p.add_argument(
        "--part-names",
        nargs="+",
        metavar="NAME",
        default=None,
        help=f"what parts 1..K depict, in order {where} name them",
    )


# ----------------------------------------------------------------------------------------------- synth
def cmd_synth(args: argparse.Namespace) -> int:
    from partdiscovery.data.synth import generate_synthetic_dataset

    out = generate_synthetic_dataset(
        args.out, n=args.n, num_parts=args.parts, size=args.size, seed=args.seed, overwrite=args.overwrite
    )
    print(f"wrote a synthetic dataset of {args.n} images with {args.parts} parts to {out}")
    return 0


# ----------------------------------------------------------------------------------------------- train
def with_flags(overrides: list[str], flags: dict[str, tuple[str, object]]) -> list[str]:
    """The user's ``overrides`` plus one per option given (``{key: (option, value or None)}``). A key set twice
    on one command line is refused: the later value would win silently, and the earlier one is never checked
    (``optim.lr=abc optim.lr=1e-3``, ``--steps 2 train.steps=abc``)."""
    seen: dict[str, str] = {}
    for text in overrides:
        key = text.split("=", 1)[0].strip()
        if key in seen:
            raise ConfigError(f"{key} is set twice ({seen[key]!r} and {text!r}); set it once")
        seen[key] = text
    added = []
    for key, (option, value) in flags.items():
        if value is None:
            continue
        if key in seen:
            raise ConfigError(f"{option} and {seen[key]!r} both set {key}; give one of them")
        added.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
    return [*overrides, *added]


def build_config(args: argparse.Namespace):
    from partdiscovery.config import load_config

    flags = {
        "model.num_parts": ("--parts", args.parts),
        "train.steps": ("--steps", args.steps),
        "train.seed": ("--seed", args.seed),
        "model.pretrained": ("--no-pretrained", False if args.no_pretrained else None),
    }
    cfg = load_config(args.preset, args.config, with_flags(list(args.overrides), flags))
    if args.config:
        _name_the_file(cfg, args.preset, args.config)
    return cfg


def _name_the_file(cfg, preset: str | None, file: str) -> None:
    """A registered name that is wrong in a ``--config`` file (``method: nope``) is reported with the file, as
    ``load_config`` reports the file's other mistakes: where the preset and the file alone fail the same way."""
    from partdiscovery.config import load_config
    from partdiscovery.training.checks import check_config

    try:
        check_config(cfg)
    except ConfigError as e:
        try:
            check_config(load_config(preset, file))
        except ConfigError as own:
            if str(own) == str(e):
                raise ConfigError(f"{file}: {e}") from None
        raise


def explicitly_set(overrides: list[str], key: str) -> bool:
    """Whether a dotted override sets ``key`` (e.g. ``model.learned_background``)."""
    return any(o.split("=", 1)[0].strip() == key for o in overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from partdiscovery.data.part_folder import HOLDOUT_SPLIT
    from partdiscovery.utils.distributed import env_info
    from partdiscovery.workflows import run_training

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
    if not env_info().is_main:
        return 0  # under torchrun the main process reports
    restarts = summary.get("restarts")
    if restarts:
        print(
            f"kept seed {restarts['chosen_seed']} of {len(restarts['scores'])} runs (compared at step "
            f"{restarts['step']}); {restarts['wall_s']:.1f} s in all, peak RSS {summary['peak_rss_mb']:.0f} MiB; "
            f"run: {args.out}"
        )
    elif summary["steps_this_session"] == 0:
        print(
            f"the run had already finished ({summary.get('steps', '?')} steps): nothing to train; run: {args.out}"
        )
    else:
        print(
            f"trained {summary['steps_this_session']} steps in {summary['wall_s']:.1f} s "
            f"({summary['images_per_s']:.2f} images/s, peak RSS {summary['peak_rss_mb']:.0f} MiB); run: {args.out}"
        )
    return 0


# ----------------------------------------------------------------------------------------------- masks
def cmd_masks(args: argparse.Namespace) -> int:
    from partdiscovery.config import load_config
    from partdiscovery.workflows import make_masks

    wrong = [o for o in args.overrides if not o.startswith("foreground.")]
    if wrong:
        raise PartDiscoveryError(f"masks takes foreground.key=value overrides only, got {wrong[0]!r}")
    cfg = load_config(None, overrides=with_flags(list(args.overrides), {})).foreground
    manifest = make_masks(
        args.images, args.out, cfg, args.device, args.threads, progress=not args.quiet, from_run=args.from_run
    )
    how = "reused the" if manifest["reused"] else "wrote"
    kept = manifest.get("kept_from_interrupted_call", 0)  # absent from the manifests of older versions
    kept_note = f"; {kept} of them kept from an interrupted call" if kept and not manifest["reused"] else ""
    made = (
        f"the learned background of {args.from_run} + {cfg.refine}"
        if args.from_run
        else f"{cfg.coarse} + {cfg.refine}, fitted on {manifest['fitted_on']} images"
    )
    print(
        f"{how} {manifest['count']} foreground masks in {args.out} ({made}, "
        f"{manifest['ms_per_image']:.0f} ms per image{kept_note})"
    )
    return 0


# -------------------------------------------------------------------------------------------- evaluate
def _print_metrics(result: dict) -> None:
    shown = [
        k
        for k in ("fg_nmi", "fg_ari", "nmi", "ari", "fg_iou", "error")
        if isinstance(result.get(k), (int, float))
    ]
    counts = [f"{k}={result[k]}" for k in ("n_images", "n_keypoints", "split") if k in result]
    print("  ".join(f"{k}={result[k]:.2f}" for k in shown) + f"  ({', '.join(counts)})")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from partdiscovery.runs import is_metrics_json
    from partdiscovery.utils.io import atomic_write_json
    from partdiscovery.utils.outputs import check_output_file
    from partdiscovery.workflows.evaluate import evaluate
    from partdiscovery.workflows.train import dataset_inputs

    if bool(args.run) == bool(args.predictions):
        raise PartDiscoveryError("give exactly one of --run RUN or --predictions DIR")
    if args.json:
        check_output_file(
            args.json,
            args.overwrite,
            what="metrics JSON",
            ours=is_metrics_json,
            inputs=dataset_inputs(args.data),
        )
    result = evaluate(
        args.data,
        args.split,
        args.run,
        args.predictions,
        args.device,
        not args.quiet,
        args.protocol,
        use_masks=not args.no_masks,
        refine=args.refine,
    )
    _print_metrics(result)
    if args.json:
        atomic_write_json(args.json, result)
    return 0


# -------------------------------------------------------------------------------------------- baseline
def cmd_baseline(args: argparse.Namespace) -> int:
    from partdiscovery.config import load_config
    from partdiscovery.workflows.baseline import is_trained_baseline, run_baseline

    if args.steps is not None and not is_trained_baseline(args.name):
        raise PartDiscoveryError(
            f"{args.name} is fitted, not trained: --steps and other training flags apply to scops only"
        )
    # The preset (and --set) choose φ and the input size, so that a baseline always uses the same
    # features as the method it is compared with; a trained baseline takes the whole config.
    # --parts and --seed have defaults, which would win over --set silently; --input-size only when given.
    owned = [("model.num_parts", "--parts"), ("train.seed", "--seed")]
    for key, option in owned + ([("data.input_size", "--input-size")] if args.input_size is not None else []):
        if explicitly_set(args.overrides, key):
            raise ConfigError(f"baseline takes {key} from {option}; give {option} instead of --set {key}=...")
    flags = {
        "train.steps": ("--steps", args.steps),
        "model.pretrained": ("--no-pretrained", False if args.no_pretrained else None),
    }
    overrides = with_flags(list(args.overrides), flags)
    if args.steps is not None:  # SCOPS's own steps: the preset's self-training (the method's) is not SCOPS's
        overrides.append("train.self_train_steps=0")
    out = run_baseline(
        args.name,
        args.data,
        args.out,
        args.parts,
        load_config(args.preset, file=args.config, overrides=overrides),
        input_size=args.input_size,
        split=args.split,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        overwrite=args.overwrite,
        masks=args.masks,
    )
    print(f"wrote {args.name} predictions for split {args.split!r} to {out}")
    return 0


# --------------------------------------------------------------------------------------------- predict
def cmd_predict(args: argparse.Namespace) -> int:
    from partdiscovery.workflows import predict_folder

    done = predict_folder(
        args.run,
        args.images,
        args.out,
        args.masks,
        batch_size=args.batch_size,
        device=args.device,
        amp=args.amp,
        overwrite=args.overwrite,
        progress=not args.quiet,
        refine=args.refine,
        max_side=args.max_side,
        part_names=args.part_names,
    )
    print(
        f"segmented {done['count']} image(s) into {done['num_parts']} parts: {done['labels']} (labels), "
        f"{done['overlays']} (overlays)"
    )
    return 0


# ------------------------------------------------------------------------------------------------ demo
def cmd_demo(args: argparse.Namespace) -> int:
    from partdiscovery.workflows import run_demo

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
    from partdiscovery.workflows import write_report

    out = write_report(
        args.run,
        data=args.data,
        out=args.out,
        split=args.split,
        max_images=args.max_images,
        part_names=args.part_names,
        device=args.device,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(f"wrote the report of {args.run} to {out}")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from partdiscovery.config import MAX_PARTS, list_presets
    from partdiscovery.evaluation.protocols import PROTOCOLS
    from partdiscovery.export import list_export_formats
    from partdiscovery.workflows.baseline import list_baselines

    parser = _Parser(
        prog="partdiscovery",
        description="Unsupervised part discovery from contrastive reconstruction (Choudhury et al., NeurIPS 2021).",
    )
    from partdiscovery import __version__

    parser.add_argument("--version", action="version", version=f"partdiscovery {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write a synthetic dataset in the part folder format")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--n", type=_int_in(2, 1_000_000), default=300, help="number of images (default 300)")
    p.add_argument(
        "--parts",
        type=_parts_type(SYNTH_MAX_PARTS),
        default=4,
        help=f"number of parts K, 2..{SYNTH_MAX_PARTS} (default 4)",
    )
    p.add_argument("--size", type=_int_in(32, 4096), default=128, help="image side in pixels (default 128)")
    p.add_argument(
        "--seed", type=_int_in(0), default=0, help="random seed of the shapes and colours (default 0)"
    )
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
    p.add_argument("--steps", type=_int_in(1), default=None, help="default: the preset's train.steps")
    p.add_argument("--seed", type=_int_in(0), default=None, help="default: the preset's train.seed (0)")
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint in --out")
    p.add_argument(
        "--holdout-val",
        action="store_true",
        help="train without the validation split (val.txt, or a hashed 20%% of train.txt), to tune on "
        "`evaluate --split val`",
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
    p.add_argument(
        "--split",
        default="test",
        help="split to score (default test; val: the held-out split of --holdout-val)",
    )
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
    _add_refine_flag(p)
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "baseline",
        help="run a baseline and write its predictions",
        description="k-means and DFF are fitted on the train split's φ features; SCOPS is trained "
        "(into OUT/run; --steps, --preset, --overwrite and --set apply to it). With --split val (held out of a "
        "part folder's train.txt) they are fitted or trained on the train split without the validation ids.",
    )
    p.add_argument("name", choices=list_baselines(), help="the baseline")
    p.add_argument("--data", required=True, help="dataset: a part folder path, or NAME:ARGS (e.g. cub:PATH)")
    p.add_argument("--out", required=True, help="folder for <id>.png predictions")
    p.add_argument("--parts", type=_parts_type(MAX_PARTS), default=4, help="number of parts K (default 4)")
    p.add_argument(
        "--masks",
        default=None,
        help="folder of <id>.png foreground masks to fit on instead of the folder's own (e.g. RUN/masks, the "
        "automatic masks of a run trained without masks)",
    )
    p.add_argument("--input-size", type=_int_in(32, 4096), default=None, help="default: the preset's")
    p.add_argument(
        "--split", default="test", help="split to predict (fitted on train; on train without val for val)"
    )
    p.add_argument(
        "--seed", type=_int_in(0), default=0, help="seed of the clustering or training (default 0)"
    )
    p.add_argument("--no-pretrained", action="store_true", help="random weights for φ (smoke tests, timing)")
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
    p.add_argument("--config", default=None, help="a YAML file merged over the preset (as train's --config)")
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        type=_override,
        default=[],
        metavar="section.key=value",
        help="config overrides (k-means / DFF use model.feature_extractor, model.feature_layers, "
        "data.input_size and predict.refine)",
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
        "--from-run",
        default=None,
        help="a run trained without masks (so with a learned background): a second round of masks from it",
    )
    p.add_argument(
        "--threads",
        type=_int_in(0, 4096),
        default=0,
        help="CPU threads: torch's intra-op threads and the images masked at once (default 0: every CPU; the "
        "masks are the same)",
    )
    p.add_argument("overrides", nargs="*", metavar="foreground.key=value")
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_masks)

    p = sub.add_parser("predict", help="segment a folder of images into parts (labels + overlays)")
    p.add_argument("--run", required=True, help="run folder, checkpoint or exported model")
    p.add_argument("--images", required=True, help="folder of images (or one image file)")
    p.add_argument("--out", required=True, help="output folder (labels/ and overlays/)")
    p.add_argument("--masks", default=None, help="optional folder of <stem>.png foreground masks")
    p.add_argument("--batch-size", type=_int_in(1, 65536), default=8, help="images per batch (default 8)")
    p.add_argument("--overwrite", action="store_true", help="replace the predictions of an earlier predict")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    p.add_argument(
        "--max-side",
        type=_int_in(0, 10**6),
        default=None,
        help="photos larger than this (pixels, longer side) are segmented at this size and their labels enlarged; "
        "0: at the photo's own size; default: the model's predict.max_side (2048)",
    )
    _add_part_names_flag(
        p, "(e.g. after looking at `report`'s galleries): the overlays' legend and OUT/parts.json"
    )
    _add_refine_flag(p)
    _add_common_model_flags(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a trained model as safetensors, ONNX or TorchScript")
    p.add_argument("run", help="run folder, checkpoint or exported .safetensors")
    p.add_argument(
        "--format",
        required=True,
        choices=list_export_formats(),
        help="safetensors (weights + config, loads back), onnx (name it .onnx) or torchscript",
    )
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
    _add_part_names_flag(p, "(with --data): the legend and the galleries")
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
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    p.set_defaults(func=cmd_demo)
    return parser


def _warning_lines(command: str):
    """A ``warnings.showwarning`` that prints partdiscovery's own warnings as one line, ``partdiscovery COMMAND:
    warning: ...``, like its errors (not Python's ``FILE:LINE: UserWarning:`` and the source line); warnings of other
    libraries keep Python's format, which names where they come from."""
    package = str(Path(__file__).resolve().parents[1])
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if str(filename).startswith(package):
            print(f"partdiscovery {command}: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    from partdiscovery.utils.plugins import load_plugins

    try:
        load_plugins()  # before the parser: a plugin's baselines are choices of `baseline`
    except PartDiscoveryError as e:
        # Said, not fatal: --help and every command that does not use the plugin's names still work; one that
        # does fails with the unknown name next.
        print(f"partdiscovery: warning: {e}; going on without it", file=sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_lines(args.command)
            return args.func(args)
    except PartDiscoveryError as e:  # the user's to fix (unknown registry names too); anything else is a bug
        print(f"partdiscovery {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = (
            " (the same command with --resume goes on from the last checkpoint)"
            if args.command == "train"
            else ""
        )
        print(f"partdiscovery {args.command}: interrupted{again}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
