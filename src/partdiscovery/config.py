"""Typed configuration: dataclasses with defaults in code, presets as small YAML diffs, dotted overrides.

The defaults are the ``cpu`` preset (what trains well on two cores). ``presets/photos.yaml`` is the cpu
preset at 192 px and 120 steps for real photographs (both checked on their validation splits);
``presets/paper.yaml`` changes only what the paper sets differently. The resolved config is saved as
``config.yaml`` in every run folder and inside every checkpoint, so a model can always be rebuilt from its
own files.

Example:
    >>> cfg = load_config("paper", overrides=["model.num_parts=8", "train.steps=100"])
    >>> cfg.model.num_parts
    8
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from partdiscovery.errors import ConfigError


@dataclass
class JitterConfig:
    """Photometric jitter applied independently to the two training views (as in the paper)."""

    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.2
    hue: float = 0.2
    p: float = 0.8
    grayscale_p: float = 0.2


@dataclass
class DataConfig:
    input_size: int = 128
    """Side of the square network input in pixels (the paper uses 256)."""
    crop_scale: tuple[float, float] = (0.75, 1.0)
    """Random crop side as a fraction of the letterboxed square image."""
    hflip: bool = True
    dataset_crops: bool = False
    """Use a dataset's own training crop when it has one (the paper's CUB/PASCAL box jitter, DeepFashion
    RandomResizedCrop) instead of the generic random square crop."""
    jitter: JitterConfig = field(default_factory=JitterConfig)
    cache_size: int = 0
    """Decode each image once and keep it in memory, resized so its longer side is this many
    pixels (0: the default, ``ceil(1.15 * input_size)``; -1: no cache, decode every time)."""
    num_workers: int = 0
    """DataLoader worker processes. 0 is fastest on 2 cores once images are cached in memory."""


@dataclass
class ModelConfig:
    num_parts: int = 4
    backbone: str = "efficientnet_lite0"
    """Segmentation network f: a name of :func:`partdiscovery.models.list_backbones`."""
    decoder_channels: int = 64
    feature_extractor: str = "efficientnet_lite0"
    """Frozen dense feature network φ: a name of :func:`partdiscovery.models.list_feature_extractors`."""
    pretrained: bool = True
    """Initialise f's backbone and φ from pretrained weights (False: random, for smoke tests/timing)."""
    backbone_weights: str | None = None
    """Local weights file for f's backbone, used instead of a cache or download."""
    feature_weights: str | None = None
    """Local weights file for φ."""
    feature_layers: tuple[float, ...] | None = None
    """Weights of φ's selectable layers, finest first (0 drops a layer); None: φ's default. The
    EfficientNet-Lite φs take 4 (strides 4, 8, 16, 32; default 0, 0.33, 1, 0), VGG19 2 (relu3_2,
    relu5_4; default 0.33, 1)."""
    freeze_bn: bool = False
    """Keep f's BatchNorm layers in eval mode (running statistics) while training: the paper's frozen BN,
    and what makes a multi-process CPU run equal a single-process one (SyncBatchNorm needs a GPU)."""
    learned_background: bool = False
    """Add a (K+1)-th background channel trained from the masks, so ``predict`` works without masks."""


@dataclass
class LossConfig:
    """Loss weights and the hyper-parameters of the four losses (paper Sec. 3)."""

    feature: float = 5.0
    contrastive: float = 0.2
    visual: float = 3e-4
    equivariance: float = 0.2
    background: float = 1.0
    """Weight of the foreground/background cross-entropy (only with ``model.learned_background``)."""
    usage: float = 0.0
    """Weight of the part-usage hinge (:mod:`partdiscovery.losses.usage`; not in the paper): charges a part whose
    share of the batch's foreground falls below ``usage_floor / K``, so that no part is left empty. Off here (the
    paper has no such term); the `photos` preset sets 1: at K = 8 it keeps all eight parts (without it five of six
    validation runs left one empty), FG-ARI +0.8 / +1.2 on CCP / PASCAL-Person (BENCHMARKS.md, "Empty parts at
    K = 8")."""
    usage_floor: float = 0.25
    """The share under which the hinge charges a part, as a fraction of an even share ``1 / K``."""
    temperature: float = 0.19
    """τ of the contrastive InfoNCE (the paper's 0.19, every preset's). The `photos` preset trains two of its five
    restarts at 0.5 instead (``train.restarts_temperature``): 0.5 for every run lifted PASCAL-Person on the validation
    splits and left CCP and ade_chairs level or lower (BENCHMARKS.md, "The contrastive temperature")."""
    feature_input_scale: float = 1.0
    """φ sees the training images resized by this factor: 2 gives φ feature maps twice as fine at the
    cost of φ's forward pass only; f's input is unchanged. (On CCP, 2 scored below 1: BENCHMARKS.md.)"""
    cache_features: bool = False
    """Compute φ once per training image (the whole letterboxed image) and crop its feature map like
    the image (:mod:`partdiscovery.data.feature_cache`), instead of running φ on every crop."""
    contrastive_layers: tuple[float, ...] | None = None
    """φ's layer weights for the part prototypes of the contrastive loss, in the form of
    ``model.feature_layers`` (same φ network); None: the feature loss's layers, as the paper. The
    feature loss asks for parts that are compact *within* an image, where fine layers matter; the
    contrastive loss ties part k *across* images, which deeper layers do better (k-means across images
    gains most from EfficientNet's stride-32 stage). Measured with ``[0, 0.33, 1, 0.5]`` (validation,
    120 steps): no change on CCP, -2.3 to +4.7 FG-NMI per seed on PASCAL-Person, within its spread
    (BENCHMARKS.md, "Steps, frozen BatchNorm, ...")."""
    loss_stride: int = 2
    """Losses are computed at input_size / loss_stride; 1 = full resolution as in the paper."""
    mask_erosion: float = 0.0
    """The four part losses see the foreground mask eroded by a disc of this radius, as a fraction of the
    input side (0.01: 2 px at 192 px); the background loss sees it whole. Why: background inside a mask
    costs the parts more than a missed rim (BENCHMARKS.md, "Which mask errors cost the parts")."""
    normalize_features: bool = True
    """L2-normalise each φ layer per pixel before weighting (False: raw activations, as the paper's VGG)."""
    tps_sigma: float = 0.01
    """Thin-plate-spline control points move by U(±tps_sigma) (normalised coordinates)."""
    rotation_deg: float = 60.0
    zoom_range: tuple[float, float] = (0.7, 2.0)
    """Content zoom of the equivariance warp (> 1 magnifies): the reference's ``random_scale_low/high``."""
    translation: float = 0.1
    warp_hflip: float = 0.0
    """Probability that the equivariance warp T also mirrors the image (not in the paper). Parts must
    then follow a mirror as they follow a rotation, so f cannot tell parts apart by their side of the
    image (the "left / middle / right bands" failure) and a part is the same on both sides of a
    symmetric object; parts that differ only by handedness (a left and a right wing) become one."""
    separate_view_passes: bool = False
    """Run f on the two views (x1 and T(x2)) in two forward passes, as the reference, instead of one
    pass over both: BatchNorm then normalises each view with its own batch statistics. Measured (validation,
    K = 4, 120 steps, `photos` preset): PASCAL-Person -3.1 / -5.8 FG-NMI / FG-ARI, lower on all four seeds;
    CCP +1.0 / +0.1, ade_chairs -1.0 / -2.9 (3 seeds; BENCHMARKS.md). So one pass stays the default; it also
    lets DistributedDataParallel see one forward per step (two passes are refused with it)."""


@dataclass
class OptimConfig:
    optimizer: str = "adam"
    """A name in :data:`partdiscovery.training.optim.OPTIMIZERS`: ``adam`` or ``sgd``."""
    lr: float = 3e-3
    """Learning rate of the head (decoder + classifier)."""
    backbone_lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "poly"
    """A name in :data:`partdiscovery.training.optim.SCHEDULES`: ``poly``
    (lr * (1 - step/steps) ** poly_power) or ``constant``."""
    poly_power: float = 0.9
    grad_clip: float = 5.0
    """Clip the global gradient norm at this value (0: no clipping)."""


@dataclass
class TrainConfig:
    steps: int = 600
    batch_size: int = 8
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep (0: all, e.g. to score a learning curve)."""
    max_bad_steps: int = 20
    """Stop with an error after this many consecutive steps with a non-finite loss."""
    amp: bool = False
    """bfloat16 autocast for the training step on CUDA (ignored on CPU)."""
    compile: bool = False
    """``torch.compile`` f before training (GPU; on CPU the compile time rarely pays off)."""
    tensorboard: bool = False
    """Also log the losses to ``RUN/tensorboard`` (needs ``pip install tensorboard``)."""
    threads: int = 0
    """torch intra-op threads (0: leave PyTorch's default); also how many images automatic masks are made of at once
    (0: every CPU this process may use; the masks are the same whatever the number)."""
    restarts: int = 1
    """Train this many runs, from seeds ``seed``, ``seed + 1``, ..., and keep the one whose parts are most
    consistent across the training images (no labels: :mod:`partdiscovery.workflows.restarts`). Why: which
    partition a run settles on depends on its seed by more than any setting tried (validation FG-NMI of one
    preset ranged 20.5-25.1 over seven seeds on PASCAL-Person), and the training losses do not tell the
    better runs apart. Costs ``restarts`` times the training time (less with ``restarts_choice_step``)."""
    restarts_choice_step: int = 0
    """With ``restarts`` > 1: train every candidate to this step only, choose there, and train just the
    chosen one on to ``steps`` (its schedule is the full run's, so it ends as the single run of its seed).
    0: choose after the last step (with ``self_train_steps``, after the last step before them: only the chosen
    one self-trains). Costs ``restarts * restarts_choice_step + steps - restarts_choice_step`` steps instead of
    ``restarts * steps``."""
    restarts_mask_erosion: float = 0.01
    """With ``restarts`` > 1 on masks that ``train`` made itself (none were given): every second candidate
    learns its parts from the masks' inside only (``loss.mask_erosion`` = this), and the restarts' label-free
    criterion keeps the better run whichever way it trained (0: all candidates alike; given masks: never).
    Why: background inside a training mask costs the parts (BENCHMARKS.md, "Which mask errors cost the
    parts"); whether cutting the automatic masks' rim helps depends on the collection (on validation it
    helped CCP and not PASCAL-Person), and R² tells the better runs apart across both: simulated on
    validation (eight seeds) +1.0 / -0.2 FG-NMI on CCP / PASCAL-Person; on the test splits no better (+0.4,
    -0.25, 0, 0, 0, -2.8 in six paired runs; BENCHMARKS.md, "Restarts over the masks' rim")."""
    restarts_temperature: float = 0.0
    """With ``restarts`` > 1 and given masks: every second candidate trains with this contrastive temperature
    (``loss.temperature``), and the label-free criterion keeps the better run whichever temperature it trained
    at (0, or a value equal to ``loss.temperature``: all candidates alike). Why: which temperature suits a
    collection is not known before training; at 0.5 PASCAL-Person's validation runs scored higher and CCP's
    lower than at the paper's 0.19, and R² tells the better runs apart across both. The `photos` preset sets
    0.5: simulated on validation (K = 4, seeds 0-6 of each) -0.08 / +0.02 FG-NMI / FG-ARI on CCP, +1.09 /
    +3.23 on PASCAL-Person, +0.76 / -0.34 on ade_chairs (BENCHMARKS.md, "The contrastive temperature").
    Not on automatic masks (``train`` made them, or ``partdiscovery masks`` did): there single runs at 0.5
    scored lower on all three validation splits (-0.97, -1.17, -3.36 FG-NMI on CCP, PASCAL-Person, ade_chairs;
    four seeds) and R² preferred them (kept in half the choices on CCP and PASCAL-Person): the cycle with them
    scored -1.05 / -1.44 FG-NMI / FG-ARI in the mean of the three against plain / eroded alone (BENCHMARKS.md,
    "The temperature restarts on automatic masks")."""
    self_train_steps: int = 0
    """The last this many of ``steps`` self-train f (not in the paper; 0: off): a frozen copy of f as it is at
    step ``steps - self_train_steps`` gives each training image its parts as ``predict`` would (refined by
    ``predict.refine``, cut by the training mask; on the in-memory copy of the image, ``data.cache_size``), and
    f learns them back by a cross-entropy on new crops and colour jitter
    (:mod:`partdiscovery.losses.self_training`), with fresh optimiser moments and the schedule started anew (again at
    each round's first step with ``self_train_rounds``).
    Why: the refined parts score higher than f's own, and f learns to draw them itself. Measured (validation and
    test, 60 steps after 120, the same runs before and after): BENCHMARKS.md, "Self-training on the refined
    parts"."""
    self_train_rounds: int = 1
    """With ``self_train_steps``: split them into this many rounds of (nearly) equal length; each round starts over
    (f copied into the teacher again, new targets, fresh moments, the schedule anew), so a later round learns the
    refined parts of f as the round before left it (:mod:`partdiscovery.training.phases`). Ignored without
    ``self_train_steps``. Not in the presets: two rounds of 60 steps were higher than one on the validation splits and
    not on the test splits (BENCHMARKS.md, "Self-training in two rounds")."""


@dataclass
class ScopsConfig:
    """Loss weights of the ``scops`` method (unused by the others), in the normalisations of the SCOPS
    reference code; :func:`partdiscovery.training.methods.scops.scops_loss_weights` converts them to this
    implementation's.

    The authors' released ``exps/SCOPS_K8_retrain.json`` has concentration 1e1, equivariance 1e3,
    centre equivariance 1e2, semantic 1e4, orthonormality 1e-1. With EfficientNet-Lite0 φ those
    weights collapsed every CCP image to one part (FG-NMI 0.8, BENCHMARKS.md): the weighted semantic
    term was almost the whole loss, the concentration term too small to matter, and the part basis
    vectors stayed nearly parallel (orthonormality 7.3 of at most 12). The defaults below raise
    concentration and orthonormality and lower the semantic term (CCP, 128 px, 150 steps: FG-NMI
    15.7); set the released values to train SCOPS as published."""

    concentration: float = 1e3
    equivariance: float = 1e3
    centre_equivariance: float = 1e2
    semantic: float = 1e3
    orthonormality: float = 1e3
    basis_lr_factor: float = 10.0
    """The part basis trains at this multiple of ``optim.lr`` (the reference: SGD at 1e-2 for the basis
    vs 1e-4 for the head)."""


@dataclass
class ForegroundConfig:
    """Automatic foreground masks for collections without masks (``partdiscovery masks``, and ``train``
    when the dataset has none). See :mod:`partdiscovery.foreground` and BENCHMARKS.md for the measured
    choice of defaults."""

    coarse: str = "border_contrast"
    """How φ features become a coarse object mask: a name of :func:`partdiscovery.foreground.list_coarse`
    (``border_contrast``: per image, cells unlike the image's border; ``selftrain``: a classifier fitted
    on the collection's own ``border_contrast`` masks; ``cluster2`` / ``kmeans_border``: k-means of the
    collection, object = clusters rare on the border; ``box``: everything but the border)."""
    refine: str = "grabcut"
    """How the coarse mask is snapped to image edges: a name of :func:`partdiscovery.foreground.list_refiners`."""
    clusters: int = 5
    """k of the collection k-means (``kmeans_border`` only; ``cluster2`` always uses 2)."""
    border_ratio: float = 0.5
    """A cluster is background when its rate of border cells is at least this fraction of the collection's
    overall rate of border cells (``kmeans_border``)."""
    input_size: int = 256
    """φ sees each image resized so that its longer side has this many pixels (aspect kept)."""
    feature_extractor: str = "efficientnet_lite0"
    fit_images: int = 300
    """At most this many images (an evenly spaced subset) are used to fit the clustering."""
    fit_pixels: int = 60000
    """At most this many φ feature cells (randomly drawn) are clustered."""
    certain_fraction: float = 0.05
    """The most object-like fraction of the coarse object's cells (by the coarse approach's score) is fixed
    as object for the refiner, so GrabCut cannot cut the object's core away where it shares the
    background's colours (0: nothing fixed; approaches without a graded score, ``cluster2``,
    ``kmeans_border`` and ``box``, fix nothing). Chosen on the validation images (BENCHMARKS.md,
    "Foreground masks without labels")."""
    run_certain: float = 0.75
    """Masks from a trained run (``partdiscovery masks --from-run``): pixels whose object probability under the
    run's learned background is at least this are fixed as object for the refiner. Chosen on the validation
    images among 0.6 / 0.75 / 0.9 (BENCHMARKS.md, "Masks from a trained run")."""
    rounds: int = 1
    """How many rounds of masks ``train`` makes when it has none. 2: a second run is trained on masks made from the
    first run's learned background (as ``masks --from-run``), and the run whose parts explain more of φ over the
    foreground both rounds' masks agree on is kept (:mod:`partdiscovery.workflows.rounds`). On the validation
    splits +2.1 / +1.8 / -0.3 FG-NMI on CCP / PASCAL-Person / ADE20K chairs (four seeds, single runs); on the test
    splits +2.8 and +1.8 on CCP, +0.5 on PASCAL-Person, -6.8 and -5.2 on ADE20K chairs (54 images), where the choice
    kept the worse round. Twice the training, and not for small folders: 1 by default (BENCHMARKS.md, "Two rounds
    in one ``train`` call")."""
    grabcut_iterations: int = 5
    refine_size: int = 320
    """GrabCut runs on the image resized so its longer side is at most this many pixels."""
    seed: int = 0


@dataclass
class PredictConfig:
    """How f's part maps become the parts of a photograph (``predict``, ``evaluate``, ``report``, the
    :class:`~partdiscovery.segmenter.PartSegmenter` API, and the clustering baselines, so they are compared
    after the same post-processing)."""

    refine: str = "none"
    """Edge-aware refinement of the part maps at the image's own size: a name of
    :func:`partdiscovery.models.refine.list_part_refiners` (``guided``: a guided filter with the colour image as
    guide; ``none``: f's upsampled maps, as the paper). The ``photos`` preset sets ``guided``: it raised every
    validation run on the three photo collections, and the clustering baselines more on CCP, whose labels are
    garments of one colour each (BENCHMARKS.md, "Edge-aware part maps"); on the synthetic demo's shapes it cost
    the method 1.3 FG-NMI and lifted k-means' FG-ARI by 3.2, so the ``cpu`` preset keeps ``none``."""
    refine_radius: float = 0.16
    """The guided filter's window radius, a fraction of the image's shorter side."""
    refine_eps: float = 1e-4
    """The guided filter's regulariser (colours in [0, 1]): an edge whose colour variance is well above it is
    kept, smaller variations are smoothed over."""
    max_side: int = 2048
    """Photographs larger than this (longer side, pixels) are segmented at this size and their labels enlarged to
    the photograph's (nearest neighbour; a given mask is applied at full size); 0: always at the photograph's own
    size. The CUB keypoint protocols, which read the maps at keypoints, always use the full size. Why: f sees
    192-256 pixels and the guided filter works at about 256, so a 48-megapixel phone photo's part maps hold no
    more detail at 8000 pixels than at 2048, while `predict` took 97 s and 7.9 GiB on one CPU thread at full size,
    15 s and 2.3 GiB at 2048 (BENCHMARKS.md, "Predicting on large photographs")."""


ExtraValue = bool | int | float | str
"""The values of :attr:`Config.extra`."""


@dataclass
class Config:
    method: str = "contrastive_reconstruction"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    scops: ScopsConfig = field(default_factory=ScopsConfig)
    foreground: ForegroundConfig = field(default_factory=ForegroundConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    extra: dict[str, ExtraValue] = field(default_factory=dict)
    """Settings of plugins (a registered method's own loss weight, a backbone's option): an open mapping of names
    to numbers, strings or booleans, saved with the run like every other key (``extra.tv_weight=0.1`` on the
    command line; read as ``cfg.extra.get("tv_weight", 0.0)``). The other sections are closed: an unknown key there
    is a typo."""

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(asdict(self))

    def to_yaml(self) -> str:
        return write_yaml(self.to_dict(), sort_keys=False)


PRESETS = ("cpu", "photos", "paper")


def list_presets() -> list[str]:
    return list(PRESETS)


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type hint ``hint`` and convert where it is lossless (int -> float)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is dict:  # Config.extra: names -> scalars, open to any name
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of names to values, got {value!r}")
        _, value_hint = typing.get_args(hint)
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key or isinstance(item, (dict, list, tuple)) or item is None:
                raise ConfigError(f"{where}.{key}: expected a number, a string or true/false, got {item!r}")
            out[key] = _coerce(item, value_hint, f"{where}.{key}")
        return out
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: any length
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}: expected a list, got {value!r}")
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]}; valid keys of {where or 'the config'}: "
            + ", ".join(sorted(names))
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _merge(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in diff.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Read configs saved by earlier versions (checkpoints, run folders) under today's keys.

    ``loss.scale_range`` (before 0.2) divided the sampling coordinates, so it was the content zoom
    range: it becomes ``loss.zoom_range`` with the same numbers.
    """
    loss = data.get("loss")
    if isinstance(loss, dict) and "scale_range" in loss:
        loss = dict(loss)
        zoom = loss.pop("scale_range")
        loss.setdefault("zoom_range", zoom)
        data = {**data, "loss": loss}
    return data


MAX_PARTS = 64
"""Upper bound on ``model.num_parts`` (and ``--parts``): far above any dataset's part count, and it keeps a
typo such as ``--parts 10000`` from allocating tens of GB before failing."""

_ANY = float("inf")
# Allowed ranges of the numeric config values: key -> (low, high, why). Checked by validate_config, so
# a bad value fails before any data is read or file written, with the key, the value and the reason.
_RANGES: dict[str, tuple[float, float, str]] = {
    "data.input_size": (32, 4096, "pixels"),
    "data.crop_scale": (0.01, 1.0, "a fraction of the image side"),
    "data.cache_size": (-1, 16384, "-1: no cache, 0: automatic, else pixels"),
    "data.num_workers": (0, 256, "worker processes"),
    "data.jitter.brightness": (0, 1, ""),
    "data.jitter.contrast": (0, 1, ""),
    "data.jitter.saturation": (0, 1, ""),
    "data.jitter.hue": (0, 0.5, ""),
    "data.jitter.p": (0, 1, "a probability"),
    "data.jitter.grayscale_p": (0, 1, "a probability"),
    "model.num_parts": (
        2,
        MAX_PARTS,
        "with one part every foreground pixel gets the same label and scores 0",
    ),
    "model.decoder_channels": (1, 4096, "channels"),
    "loss.feature": (0, _ANY, "a loss weight"),
    "loss.contrastive": (0, _ANY, "a loss weight"),
    "loss.visual": (0, _ANY, "a loss weight"),
    "loss.equivariance": (0, _ANY, "a loss weight"),
    "loss.background": (0, _ANY, "a loss weight"),
    "loss.usage": (0, _ANY, "a loss weight"),
    "loss.usage_floor": (1e-3, 1, "a fraction of an even share 1 / K"),
    "loss.temperature": (1e-6, _ANY, ""),
    "loss.feature_input_scale": (0.1, 8, "a resize factor"),
    "loss.loss_stride": (1, 16, "a divisor of the input size"),
    "loss.tps_sigma": (0, _ANY, ""),
    "loss.mask_erosion": (0, 0.25, "a fraction of the input side"),
    "loss.rotation_deg": (0, 180, "degrees"),
    "loss.zoom_range": (1e-3, 100, "zoom factors"),
    "loss.translation": (0, 1, "a fraction of the image"),
    "optim.lr": (1e-12, 10, ""),
    "optim.backbone_lr": (0, 10, ""),
    "optim.momentum": (0, 0.999999, ""),
    "optim.weight_decay": (0, 1, ""),
    "optim.poly_power": (0, 100, ""),
    "optim.grad_clip": (0, _ANY, "0: no clipping"),
    "train.steps": (1, 10**9, "a run of 0 steps leaves no checkpoint"),
    "train.batch_size": (2, 65536, "the contrastive loss compares parts across at least 2 images"),
    "train.seed": (0, _ANY, ""),
    "train.log_every": (1, 10**9, "steps"),
    "train.checkpoint_every": (1, 10**9, "steps"),
    "train.keep_checkpoints": (0, 10**9, "0 keeps every checkpoint"),
    "train.max_bad_steps": (1, 10**9, "steps"),
    "train.threads": (0, 4096, "0: PyTorch's default"),
    "train.restarts": (1, 1000, "1: a single run"),
    "train.restarts_choice_step": (0, 10**9, "0: choose after the last step"),
    "train.restarts_mask_erosion": (0, 0.25, "a fraction of the input side; 0: off"),
    "train.restarts_temperature": (0, _ANY, "a contrastive temperature; 0: off"),
    "train.self_train_steps": (0, 10**9, "0: off"),
    "train.self_train_rounds": (1, 10**6, "rounds of train.self_train_steps"),
    "foreground.clusters": (2, 1000, "k of kmeans_border's k-means"),
    "foreground.border_ratio": (0, _ANY, "a fraction of the collection's rate of border cells"),
    "foreground.input_size": (32, 4096, "pixels on φ's input's longer side"),
    "foreground.fit_images": (1, 10**9, "images"),
    "foreground.fit_pixels": (1, 10**12, "φ cells"),
    "foreground.grabcut_iterations": (1, 1000, "GrabCut's iterations"),
    "foreground.refine_size": (16, 100000, "pixels on GrabCut's longer side"),
    "foreground.seed": (0, _ANY, ""),
    "foreground.certain_fraction": (0, 1, "a fraction of the coarse object's cells"),
    "foreground.run_certain": (0, 1, "an object probability"),
    "foreground.rounds": (1, 2, "rounds of masks"),
    "predict.refine_radius": (0, 1, "a fraction of the image's shorter side"),
    "predict.refine_eps": (1e-12, _ANY, "the guided filter's regulariser"),
    "predict.max_side": (0, _ANY, "pixels; 0: the photograph's own size"),
    "scops.concentration": (0, _ANY, "a loss weight"),
    "scops.equivariance": (0, _ANY, "a loss weight"),
    "scops.centre_equivariance": (0, _ANY, "a loss weight"),
    "scops.semantic": (0, _ANY, "a loss weight"),
    "scops.orthonormality": (0, _ANY, "a loss weight"),
    "scops.basis_lr_factor": (1e-12, _ANY, ""),
}


def config_differences(a: Config, b: Config) -> list[tuple[str, Any, Any]]:
    """``[(dotted key, value in a, value in b)]`` for every key whose values differ, in key order (``extra``'s
    keys as ``extra.NAME``; a key only one side has is ``None`` on the other)."""

    def flat(node: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(node, dict):
            return {prefix: node}
        return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}{key}.").items()}

    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return [
        (key.removesuffix("."), fa.get(key), fb.get(key))
        for key in sorted(fa.keys() | fb.keys())
        if fa.get(key) != fb.get(key)
    ]


def _lookup(cfg: Config, key: str) -> Any:
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def validate_config(cfg: Config) -> Config:
    """Check every value's range (see ``_RANGES``) and choice; raise one :class:`ConfigError` naming the
    key, the value and the allowed range. Names of registered things (methods, backbones, φ, optimisers,
    schedules, refiners, foreground approaches) are checked against their registries (a layer above the config)
    before training starts, still
    before anything is written: :func:`partdiscovery.training.checks.check_config`."""
    for key, (low, high, why) in _RANGES.items():
        value = _lookup(cfg, key)
        for item in value if isinstance(value, tuple) else (value,):
            if not (math.isfinite(item) or item == high == _ANY) or not low <= item <= high:
                bound = f">= {_num(low)}" if high == _ANY else f"in {_num(low)}..{_num(high)}"
                raise ConfigError(f"{key}={_plain(value)}: must be {bound}" + (f" ({why})" if why else ""))
    for key in ("data.crop_scale", "loss.zoom_range"):
        low, high = _lookup(cfg, key)
        if low > high:
            raise ConfigError(f"{key}={_plain((low, high))}: the first value must not exceed the second")
    if 0 < cfg.train.self_train_steps >= cfg.train.steps:
        raise ConfigError(
            f"train.self_train_steps={cfg.train.self_train_steps}: must be less than train.steps={cfg.train.steps} "
            "(the last self_train_steps of the steps self-train f; give more steps, or train.self_train_steps=0)"
        )
    if 0 < cfg.train.self_train_steps < cfg.train.self_train_rounds:
        raise ConfigError(
            f"train.self_train_rounds={cfg.train.self_train_rounds}: must not exceed train.self_train_steps="
            f"{cfg.train.self_train_steps} (each round trains at least one step)"
        )
    smallest = _RANGES["loss.temperature"][0]
    if 0 < cfg.train.restarts_temperature < smallest:
        raise ConfigError(
            f"train.restarts_temperature={_plain(cfg.train.restarts_temperature)}: must be 0 (off) or >= "
            f"{_num(smallest)} (a contrastive temperature, like loss.temperature)"
        )
    return cfg


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"


def _plain(value: Any) -> str:
    return write_yaml(_to_plain(value), default_flow_style=True).strip().removesuffix("...").strip()


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a (possibly partial) nested dict; unknown keys and values out of
    range (:func:`validate_config`) are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"the config must be a mapping of sections, got {type(data).__name__}")
    return validate_config(_from_dict(Config, _merge(Config().to_dict(), _migrate(data or {}))))


def parse_override(text: str) -> dict[str, Any]:
    """``"optim.lr=3e-4"`` -> ``{"optim": {"lr": 0.0003}}``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    value = read_yaml(raw) if raw.strip() else ""
    node: dict[str, Any] = {}
    cursor = node
    parts = key.strip().split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return node


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with dotted overrides applied (later wins), validated like :func:`load_config`'s.

    Example:
        >>> with_overrides(Config(), ["method=scops", "model.num_parts=6"]).model.num_parts
        6
    """
    data = cfg.to_dict()
    for text in overrides:
        data = _merge(data, parse_override(text))
    return config_from_dict(data)


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats: PyYAML follows YAML 1.1, where ``3e-4`` (no dot) is a string,
    so ``lr: 3e-4`` in a config file was refused as "expected a number" while ``optim.lr=3e-4`` worked. A key given
    twice in one mapping (``steps:`` twice, or a ``train:`` section twice) is an error: YAML keeps the last silently,
    and a repeated section drops every key of the first, where overrides refuse a key set twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:  # the mapping's own keys; merged ones (`<<: *base`) may be overridden
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first_line:
                raise yaml.constructor.ConstructorError(
                    problem=f"line {line}: the key {key_node.value!r} is set twice (first on line "
                    f"{first_line[key_node.value]}); set each key once"
                )
            first_line[key_node.value] = line
        return super().construct_mapping(node, deep)


class _YamlDumper(yaml.SafeDumper):
    """The safe dumper with the same floats, so that a string that now reads as a number (``extra.tag: "1e3"``)
    is written quoted, and a config written by :meth:`Config.to_yaml` reads back as it was."""


_FLOAT_1_2 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
for _cls in (_YamlLoader, _YamlDumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789."))


def write_yaml(data: Any, **kwargs: Any) -> str:
    """``yaml.safe_dump`` that :func:`read_yaml` reads back unchanged."""
    return yaml.dump(data, Dumper=_YamlDumper, **kwargs)


def read_yaml(stream: Any) -> Any:
    """YAML text or a stream -> Python values, with YAML 1.2's floats (:class:`_YamlLoader`)."""
    return yaml.load(stream, Loader=_YamlLoader)  # noqa: S506 (a SafeLoader subclass)


def preset_dict(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    text = resources.files("partdiscovery.presets").joinpath(f"{name}.yaml").read_text()
    return read_yaml(text) or {}


def load_config(
    preset: str | None = "cpu",
    file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> Config:
    """Defaults, then the preset diff, then a YAML file, then dotted overrides (later wins). An error in a value
    that comes from the file names the file."""
    data: dict[str, Any] = {}
    if preset:
        data = _merge(data, preset_dict(preset))
    if file:
        try:
            with open(file, encoding="utf-8-sig") as stream:  # a syntax error's position then names the file
                loaded = read_yaml(stream) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"{file}: cannot read config ({' '.join(str(e).split())})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: a config file must be a mapping of sections (model:, train:, ...)")
        data = _merge(data, loaded)
    merged = data
    for text in overrides or []:
        merged = _merge(merged, parse_override(text))
    try:
        return config_from_dict(merged)
    except ConfigError as e:
        if file and _same_error(data, e):  # the file's own value (no override replaced it): name the file
            raise ConfigError(f"{file}: {e}") from None
        raise


def _same_error(data: dict[str, Any], error: ConfigError) -> bool:
    """Whether ``data`` (the preset and the file, before the overrides) fails with ``error`` too."""
    try:
        config_from_dict(data)
    except ConfigError as e:
        return str(e) == str(error)
    return False
