"""`train --preset paper` and `evaluate --protocol ...` end to end on fixtures in the original layouts.

The paper's networks (DeepLab-v2 ResNet-50, VGG19) run with random weights at 64 px for one step:
this checks the wiring (dataset specs, crops, presets, protocols, CLI), not the numbers.
"""

from __future__ import annotations

import json

import pytest

from partdiscovery.cli.main import main
from tests.data.dataset_builders import SPECS

TRAIN = [
    "--preset",
    "paper",
    "--no-pretrained",
    "--steps",
    "1",
    "--parts",
    "3",
    "--quiet",
    "--device",
    "cpu",
    "data.input_size=64",
    "train.batch_size=2",
    "train.checkpoint_every=1",
]


@pytest.mark.parametrize(
    ("kind", "protocol", "keys"),
    [
        ("cub", "cub-keypoints", {"fg_nmi", "fg_ari", "nmi", "ari", "n_keypoints"}),
        ("deepfashion", "pixel", {"fg_nmi", "fg_ari", "nmi", "ari", "n_images"}),
        ("pascal-part", "pixel", {"fg_nmi", "fg_ari", "nmi", "ari", "n_images"}),
    ],
)
def test_paper_preset_trains_and_evaluates(kind, protocol, keys, tmp_path, capsys):
    spec = SPECS[kind](tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--data", spec, "--out", str(run), *TRAIN]) == 0
    config = (run / "config.yaml").read_text()
    assert "deeplab_resnet50" in config and "vgg19" in config
    out = tmp_path / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                "--run",
                str(run),
                "--data",
                spec,
                "--protocol",
                protocol,
                "--json",
                str(out),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert keys <= set(result) and result["protocol"] == protocol
    assert all(-100.0 <= result[k] <= 100.0 for k in ("fg_nmi", "fg_ari", "nmi", "ari"))
