"""Evaluate: a run, model file or predictions folder -> metrics, under the dataset's protocol."""

from __future__ import annotations

import json
from pathlib import Path

from partdiscovery.utils.moved import moved_names


def evaluate(
    data: str,
    split: str,
    run: str | None = None,
    predictions: str | None = None,
    device: str = "auto",
    progress: bool = True,
    protocol: str | None = None,
    use_masks: bool = True,
    refine: str | None = None,
) -> dict:
    """Score a run (or model file) or a predictions folder on ``split`` of ``data`` with ``protocol``
    (default: the dataset's own, :func:`~partdiscovery.evaluation.protocols.default_protocol`).

    ``use_masks=False`` scores a learned background instead of the dataset's masks (adds ``fg_iou``).
    ``refine`` overrides the model's ``predict.refine`` (a run only)."""
    from partdiscovery.evaluation.protocols import default_protocol, evaluate_protocol

    if run is not None and split == "val":
        warn_if_trained_on_val(run)
    if predictions is not None and split == "val":
        warn_if_fitted_on_val(predictions, data)
    return evaluate_protocol(
        protocol or default_protocol(data),
        data,
        split,
        run=run,
        predictions=predictions,
        device=device,
        progress=progress,
        use_masks=use_masks,
        refine=refine,
    )


def warn_if_trained_on_val(run: str | Path) -> None:
    """Warn when ``run`` was trained on a part folder's whole training split, validation ids included: its scores on
    ``val`` are then not held out, and choosing settings by them is tuning on the training images."""
    import warnings

    from partdiscovery.data.part_folder import HOLDOUT_SPLIT
    from partdiscovery.runs import RunFolder, resolve_run

    folder, _ = resolve_run(Path(run))
    # An exported file alone, or a run of a version that did not record its split, has none.
    if RunFolder(folder).read_run_info().get("split") == "train":
        warnings.warn(
            f"{run}: was trained on the whole training split, the validation ids included, so its val scores are not "
            f"held out; train with --holdout-val (split {HOLDOUT_SPLIT!r}) to choose settings on val",
            stacklevel=3,
        )


def warn_if_fitted_on_val(predictions: str | Path, data: str) -> None:
    """The same warning for a baseline's predictions folder whose fitted (or, SCOPS, trained) split shares ids
    with ``data``'s ``val``: ``baseline_info.json``'s ``fit_split`` (versions before 0.24 fitted on ``train``
    whatever the scored split), or the ``run_info.json`` of SCOPS's run in ``PREDICTIONS/run``."""
    import warnings

    from partdiscovery.data.part_folder import open_to_score
    from partdiscovery.errors import PartDiscoveryError
    from partdiscovery.runs import RUN_INFO_FILE, RunFolder

    folder = Path(predictions)
    if (folder / "run" / RUN_INFO_FILE).is_file():  # SCOPS: the split its run trained on
        fit_split = RunFolder(folder / "run").read_run_info().get("split")
    else:
        try:
            fit_split = json.loads((folder / "baseline_info.json").read_text(encoding="utf-8")).get(
                "fit_split"
            )
        except (OSError, ValueError, AttributeError):
            return  # not a baseline's folder (e.g. `predict`'s output), or one of a version without the record
    if not isinstance(fit_split, str):
        return
    try:
        shared = set(open_to_score(data, "val", validate=False).ids) & set(
            open_to_score(data, fit_split, validate=False).ids
        )
    except (PartDiscoveryError, TypeError):
        return  # the scoring itself says what is wrong with the data
    if shared:
        warnings.warn(
            f"{predictions}: the baseline was fitted on split {fit_split!r}, which holds {len(shared)} of the "
            "validation ids, so its val scores are not held out; run `partdiscovery baseline ... --split val` "
            "again (0.24 and later fit it without them)",
            stacklevel=3,
        )


# moved in 0.23: the run folder owns its file names
__getattr__ = moved_names(__name__, {"is_metrics_json": "partdiscovery.runs"})
