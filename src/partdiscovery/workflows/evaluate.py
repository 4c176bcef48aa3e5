"""Evaluate: a run, model file or predictions folder -> metrics, under the dataset's protocol."""

from __future__ import annotations

import json
from pathlib import Path


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


def is_metrics_json(path: Path) -> bool:
    """A metrics JSON written by ``evaluate --json`` (the keys every protocol's result carries): the only
    kind of file ``evaluate --json --overwrite`` may replace."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"split", "data", "source"} <= set(data)
