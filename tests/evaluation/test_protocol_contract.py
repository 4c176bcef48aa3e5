"""Contract: every registered evaluation protocol scores a predictions folder of every dataset kind it
serves (the kinds that declare it their default, plus CUB for keypoint regression) and returns finite
numbers with the keys every result carries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from partdiscovery.data import DATASETS, open_dataset
from partdiscovery.evaluation.protocols import PROTOCOLS, evaluate_protocol
from tests.data.dataset_builders import SPECS

EXTRA_KINDS = {"cub-regression": ["cub"]}
"""Protocols that are no kind's default, with the kinds they serve."""


def served_kinds(protocol: str) -> list[str]:
    defaults = [k for k in DATASETS.names() if DATASETS.get(k).default_protocol == protocol]
    return sorted(set(defaults) | set(EXTRA_KINDS.get(protocol, [])))


def test_every_protocol_serves_a_dataset_kind():
    for name in PROTOCOLS.names():
        assert served_kinds(name), f"protocol {name!r} serves no registered dataset kind"


def _write_bands(spec: str, split: str, out) -> None:
    """Three vertical bands over each image's foreground: a valid, non-trivial prediction."""
    dataset = open_dataset(spec, split)
    for index, image_id in enumerate(dataset.ids):
        fg = dataset.load(index).fg_mask
        h, w = fg.shape
        bands = np.broadcast_to(np.arange(w) * 3 // w + 1, (h, w))
        path = out / f"{image_id}.png"  # ids may hold folders (DeepFashion)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.where(fg, bands, 0).astype(np.uint8), mode="L").save(path)


CASES = [(p, k) for p in PROTOCOLS.names() for k in served_kinds(p)]


@pytest.mark.parametrize("protocol, kind", CASES, ids=[f"{p}-{k}" for p, k in CASES])
def test_protocol_scores_a_predictions_folder(protocol, kind, tmp_path):
    spec = SPECS[kind](tmp_path / "data")
    predictions = tmp_path / "pred"
    predictions.mkdir()
    for split in ("train", "test"):  # keypoint regression fits on train and scores test
        _write_bands(spec, split, predictions)
    result = evaluate_protocol(protocol, spec, "test", predictions=str(predictions), progress=False)
    assert {"split", "data", "source"} <= set(result) and result["split"] == "test"
    numbers = {k: v for k, v in result.items() if isinstance(v, float)}
    assert numbers and all(math.isfinite(v) for v in numbers.values()), result
