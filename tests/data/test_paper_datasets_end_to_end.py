"""`train --preset paper` and `evaluate --protocol ...` end to end on fixtures in the original layouts.

The paper's networks (DeepLab-v2 ResNet-50, VGG19) run with random weights at 64 px for one step:
this checks the wiring (dataset specs, crops, presets, protocols, CLI), not the numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the fixture builders of the loader tests

from test_cub import make_cub  # noqa: E402
from test_deepfashion import make_deepfashion  # noqa: E402
from test_pascal_part import make_pascal  # noqa: E402

from partdiscovery.cli.main import main  # noqa: E402

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
    if kind == "cub":
        spec = f"cub:{make_cub(tmp_path / 'data')}"
    elif kind == "deepfashion":
        spec = f"deepfashion:{make_deepfashion(tmp_path / 'data')}"
    else:
        spec = f"pascal-part:cat:{make_pascal(tmp_path / 'data')}"
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
