"""Baselines: k-means and DFF (fitted on φ features) and SCOPS (trained), behind one registry.

Every baseline writes the same thing, a predictions folder of ``<id>.png`` label maps for ``split`` plus
``baseline_info.json``, so that ``evaluate --predictions`` scores them all like the method. They take
φ and the input size from a config (a preset and its overrides), so that a baseline always uses the same
features as the method it is compared with, and the same edge-aware refinement of its part maps
(``predict.refine``), so that the comparison is of the parts, not of the post-processing; SCOPS takes the
whole config (``method=scops``) and trains into ``OUT/run`` like any run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from partdiscovery.baselines import BASELINES
from partdiscovery.config import MAX_PARTS, Config, PredictConfig, load_config, with_overrides
from partdiscovery.data.base import PartDataset
from partdiscovery.data.prediction import Prediction
from partdiscovery.errors import InvalidArgumentError, UnknownNameError
from partdiscovery.utils.io import atomic_write_json
from partdiscovery.utils.outputs import writing_into
from partdiscovery.utils.registry import Registry
from partdiscovery.workflows.predict import prediction_folder
from partdiscovery.workflows.train import dataset_inputs, run_training


@dataclass(frozen=True)
class BaselineJob:
    """One baseline run: what to fit or train on, where to write, and how."""

    data: str
    out: Path
    parts: int
    cfg: Config
    """φ (``model.feature_extractor``, ``feature_layers``, ``pretrained``) and ``data.input_size`` of the
    fitted baselines; the whole training config of the trained ones."""
    split: str = "test"
    """The split whose predictions are written."""
    fit_split: str = "train"
    """The split fitted (or trained) on (:func:`run_baseline` passes :func:`default_fit_split` unless given)."""
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    overwrite: bool = False
    masks: str | None = None
    """A folder of ``<id>.png`` foreground masks for the fitted (or trained) split instead of the part folder's
    own, e.g. the automatic masks a run made (``RUN/masks``), so that a baseline is fitted on the foreground the
    method was trained on; ``None``: the dataset's masks."""


@dataclass(frozen=True)
class BaselineKind:
    run: Callable[[BaselineJob], Path]
    trained: bool
    """Trained with the trainer (training steps and loss settings apply) rather than fitted once."""


TRAINED_BASELINES: Registry[BaselineKind] = Registry("trained baseline")
"""Baselines trained like the method (SCOPS). The fitted ones are those of
:data:`partdiscovery.baselines.BASELINES`, looked up when asked for, so that one registered there later (a
plugin imported after this module) is a baseline here too."""


def list_baselines() -> list[str]:
    """The names ``run_baseline`` and ``partdiscovery baseline`` take: the fitted and the trained baselines."""
    return sorted(set(BASELINES.names()) | set(TRAINED_BASELINES.names()))


def baseline_kind(name: str) -> BaselineKind:
    """How baseline ``name`` runs; an unknown name is an :class:`UnknownNameError` listing every baseline."""
    if name in TRAINED_BASELINES:
        return TRAINED_BASELINES.build(name)
    if name in BASELINES:
        return BaselineKind(partial(_fit_on_features, name), trained=False)
    raise UnknownNameError(f"unknown baseline {name!r}; choose one of: {', '.join(list_baselines())}")


def is_trained_baseline(name: str) -> bool:
    return baseline_kind(name).trained


def run_baseline(
    name: str,
    data: str,
    out: str | Path,
    parts: int,
    cfg: Config | None = None,
    *,
    input_size: int | None = None,
    split: str = "test",
    fit_split: str | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    overwrite: bool = False,
    masks: str | Path | None = None,
) -> Path:
    """Run baseline ``name`` (:func:`list_baselines`) on ``data`` and write its ``split`` predictions to
    ``out`` (a new or empty folder, or, with ``overwrite``, an earlier predictions folder of ours).

    ``cfg`` (default: the cpu preset) gives φ and the input size (``input_size`` overrides it). ``fit_split``
    (default :func:`default_fit_split`) is the split fitted or trained on; ``masks`` (a part folder's only) its
    foreground masks instead of the folder's own (:attr:`BaselineJob.masks`). The predictions are cut with the
    ``split``'s ground-truth foreground (for a folder without ``masks/``, its labelled parts' union:
    :func:`~partdiscovery.data.part_folder.open_to_score`)."""
    from partdiscovery.data.part_folder import is_part_folder

    kind = baseline_kind(name)  # an unknown name fails here, listing the names
    if isinstance(parts, bool) or not isinstance(parts, int) or not 2 <= parts <= MAX_PARTS:
        raise InvalidArgumentError(f"--parts must be in 2..{MAX_PARTS}, got {parts!r}")
    cfg = cfg or load_config("cpu")
    if input_size is not None:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or not 32 <= input_size <= 4096:
            raise InvalidArgumentError(f"--input-size must be in 32..4096 pixels, got {input_size!r}")
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, input_size=input_size))
    fit_split = fit_split or default_fit_split(data, split)
    if masks is not None and not is_part_folder(data):
        raise InvalidArgumentError(
            f"--masks applies to a part folder, not {data}; give NAME:PATH?mask_dir=DIR"
        )
    job = BaselineJob(
        str(data), Path(out), parts, cfg, split, fit_split, seed, device, progress, overwrite,
        str(masks) if masks is not None else None,
    )  # fmt: skip
    return kind.run(job)


def default_fit_split(data: str | Path, split: str) -> str:
    """The split a baseline is fitted on when its predictions of ``split`` are written: ``train``, except for a
    part folder's ``val``, which is held out of ``train.txt``: then ``train_minus_val``, the split that
    ``train --holdout-val`` trains the method on. A clustering fitted on the images it is scored on would not be
    compared with the method as the method is."""
    from partdiscovery.data.part_folder import HOLDOUT_SPLIT, is_part_folder

    if split == "val" and is_part_folder(data):
        return HOLDOUT_SPLIT
    return "train"


def _fit_on_features(name: str, job: BaselineJob) -> Path:
    """k-means / DFF: fit on the ``fit_split`` φ features, predict ``split``."""
    from partdiscovery.data import open_dataset
    from partdiscovery.data.part_folder import open_to_score
    from partdiscovery.evaluation import write_predictions
    from partdiscovery.models import create_feature_extractor
    from partdiscovery.utils.seed import seeded

    baseline = BASELINES.build(name)
    model_cfg, input_size = job.cfg.model, job.cfg.data.input_size
    inputs = dataset_inputs(job.data)
    prediction_folder(job.out, [], job.overwrite, inputs)  # fail before reading any data
    train_set = open_dataset(job.data, job.fit_split, **({"masks": job.masks} if job.masks else {}))
    predict_set = open_to_score(job.data, job.split)
    files = [f"{i}.png" for i in predict_set.ids] + ["baseline_info.json"]
    # A user's file among the outputs, or an output inside the dataset, fails before fitting.
    prediction_folder(job.out, files, job.overwrite, inputs + [(predict_set.root, "dataset folder")])
    with seeded(job.seed):  # φ's initialisation where it is not pretrained, and the fit
        phi = create_feature_extractor(
            model_cfg.feature_extractor,
            pretrained=model_cfg.pretrained,
            normalize=baseline.normalize_features,
            layer_weights=model_cfg.feature_layers,
        )
        started = time.perf_counter()
        model = baseline.fit(phi, train_set, job.parts, input_size, seed=job.seed, progress=job.progress)
    with writing_into(job.out, "writing predictions into this folder"):
        # Again, under the lock: another call may have written into the folder since the check above.
        folder = prediction_folder(
            job.out, files, job.overwrite, inputs + [(predict_set.root, "dataset folder")]
        )
        folder.claim(files)
        predictions = refined(
            baseline.predict(phi, model, predict_set, input_size, progress=job.progress),
            predict_set,
            job.parts,
            job.cfg.predict,
        )
        for _ in write_predictions(predictions, job.out):
            pass
        atomic_write_json(
            job.out / "baseline_info.json",
            {
                "baseline": name,
                "parts": job.parts,
                "input_size": input_size,
                "seed": job.seed,
                "split": job.split,
                "feature_extractor": model_cfg.feature_extractor,
                "feature_layers": list(phi.layer_weights),
                "fit_split": job.fit_split,
                "fit_masks": job.masks or "the dataset's",
                "cut_with": "the labelled parts' union"
                if getattr(predict_set, "foreground_from_parts", False)
                else "the dataset's masks",
                "normalize_features": baseline.normalize_features,
                "pretrained": model_cfg.pretrained,
                "refine": dataclasses.asdict(job.cfg.predict),
                "data": job.data,
                "wall_s": round(time.perf_counter() - started, 2),
            },
        )
        folder.finish(files)
    return job.out


def refined(
    predictions: Iterable[Prediction], dataset: PartDataset, parts: int, cfg: PredictConfig
) -> Iterator[Prediction]:
    """A clustering's hard part maps refined as f's part maps are (:func:`~partdiscovery.models.refine.
    refine_labels`), each with its own image of ``dataset`` as the guide."""
    from partdiscovery.models.refine import refine_labels

    index = {image_id: i for i, image_id in enumerate(dataset.ids)}
    for pred in predictions:
        if cfg.refine != "none":
            image = np.asarray(dataset.load(index[pred.id]).image.convert("RGB"))
            pred = dataclasses.replace(pred, parts=refine_labels(image, pred.parts, parts, cfg))
        yield pred


def _train_scops(job: BaselineJob) -> Path:
    """SCOPS is trained, not fitted: train it with the trainer into ``OUT/run`` (config, checkpoints, log,
    as any run), then write its ``split`` predictions to ``OUT`` like the other baselines. The preset's
    self-training (``train.self_train_steps``, the ``photos`` preset's) is the method's, not SCOPS's: SCOPS trains
    the method's steps, ``train.steps - train.self_train_steps``, and no self-training."""
    from partdiscovery.data.part_folder import open_to_score
    from partdiscovery.evaluation import write_predictions
    from partdiscovery.segmenter import PartSegmenter
    from partdiscovery.training.checks import check_config
    from partdiscovery.training.phases import method_steps

    cfg = with_overrides(
        job.cfg,
        [
            "method=scops",
            f"model.num_parts={job.parts}",
            f"train.seed={job.seed}",
            f"train.steps={method_steps(job.cfg)}",
            "train.self_train_steps=0",
        ],
    )
    check_config(cfg)  # a bad name fails before the predictions folder is claimed
    inputs = dataset_inputs(job.data)
    prediction_folder(job.out, [], job.overwrite, inputs)  # fail before training
    dataset = open_to_score(job.data, job.split)
    files = [f"{i}.png" for i in dataset.ids]
    prediction_folder(job.out, files, job.overwrite, inputs)  # a user's file among them: before training
    run = job.out / "run"
    with writing_into(job.out, "writing predictions into this folder"):
        folder = prediction_folder(job.out, files, job.overwrite, inputs)  # again, under the lock
        folder.claim(files)
        run_training(
            cfg,
            job.data,
            run,
            job.device,
            overwrite=job.overwrite,
            quiet=not job.progress,
            split=job.fit_split,
            masks=job.masks,
        )
        segmenter = PartSegmenter.load(run, device=job.device)
        for _ in write_predictions(segmenter.predict_dataset(dataset, progress=job.progress), job.out):
            pass
        folder.finish(files)
    return job.out


TRAINED_BASELINES.register("scops")(partial(BaselineKind, _train_scops, trained=True))
