"""ContrastiveReconstruction: φ's input scale and the losses of one step."""

from __future__ import annotations

import math

import pytest
import torch

from partdiscovery.training.methods.base import build_phi
from partdiscovery.training.methods.contrastive import ContrastiveReconstruction


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_phi_sees_the_images_at_feature_input_scale(tiny_config, scale):
    with pytest.warns(UserWarning, match="random weights"):
        method = ContrastiveReconstruction(tiny_config(f"loss.feature_input_scale={scale}"))
    seen = []
    phi = method.phi
    method._set_phi(lambda images, size: seen.append(images.shape) or phi(images, size))
    images = torch.rand(2, 3, 32, 32)
    features = method.features(images, (16, 16))
    assert seen == [torch.Size([2, 3, int(32 * scale), int(32 * scale)])]
    assert features.shape[-2:] == (16, 16)


@pytest.mark.parametrize("learned_background", [False, True])
def test_training_step_losses(tiny_config, learned_background):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="random weights"):
        method = ContrastiveReconstruction(tiny_config(f"model.learned_background={learned_background}"))
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(2, 1, 48, 48)
    mask[..., 8:40, 12:36] = 1
    batch = {"image": torch.rand(2, 3, 48, 48, generator=g), "fg_mask": mask}
    losses = method.training_step(batch, torch.Generator().manual_seed(1))
    expected = {"feature", "contrastive", "visual", "equivariance", "total"}
    assert set(losses) == expected | ({"background"} if learned_background else set())
    assert all(math.isfinite(float(v.detach())) for v in losses.values())
    # The total is the weighted sum of the terms, the learned background's included (usage is off: weight 0).
    weights = method.cfg.loss
    expected_total = sum(getattr(weights, name) * losses[name] for name in expected - {"total"})
    if learned_background:
        expected_total = expected_total + weights.background * losses["background"]
    torch.testing.assert_close(losses["total"], expected_total)
    again = method.training_step(batch, torch.Generator().manual_seed(1))  # a pure function of the generator
    assert float(again["total"]) == float(losses["total"])


def test_the_usage_term_joins_the_total_only_when_weighted(tiny_config):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="random weights"):
        method = ContrastiveReconstruction(tiny_config("loss.usage=2", "loss.usage_floor=1"))
    mask = torch.zeros(2, 1, 48, 48)
    mask[..., 8:40, 12:36] = 1
    batch = {"image": torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0)), "fg_mask": mask}
    losses = method.training_step(batch, torch.Generator().manual_seed(1))
    # With floor 1 (tau = an even share) some part of a random net is short of it.
    assert float(losses["usage"]) > 0
    weights = method.cfg.loss
    parts = ("feature", "contrastive", "visual", "equivariance")
    expected = sum(getattr(weights, name) * losses[name] for name in parts) + 2 * losses["usage"]
    torch.testing.assert_close(losses["total"], expected)


def test_contrastive_layers_change_only_the_contrastive_prototypes(tiny_config):
    """With ``loss.contrastive_layers`` the contrastive term sees another weighting of φ's layers; the
    other terms, the state dict and f are those of the plain method, and φ runs once per step."""
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(2, 1, 48, 48)
    mask[..., 8:40, 12:36] = 1
    batch = {"image": torch.rand(2, 3, 48, 48, generator=g), "fg_mask": mask}
    losses, methods, calls = {}, {}, {}
    for name, overrides in {"plain": (), "semantic": ("loss.contrastive_layers=[0,0,1,1]",)}.items():
        torch.manual_seed(0)
        with pytest.warns(UserWarning, match="random weights"):
            methods[name] = ContrastiveReconstruction(tiny_config(*overrides))
        if name == "semantic":  # random weights: give both φ the same trunk
            methods[name].phi.model.load_state_dict(methods["plain"].phi.model.state_dict(), strict=False)
        trunk = methods[name].phi.layers
        calls[name] = []
        methods[name].phi.layers = lambda images, seen=calls[name], trunk=trunk: (
            seen.append(1) or trunk(images)
        )
        losses[name] = methods[name].training_step(batch, torch.Generator().manual_seed(1))
    plain, semantic = losses["plain"], losses["semantic"]
    for term in ("feature", "visual", "equivariance"):
        torch.testing.assert_close(plain[term], semantic[term], rtol=1e-5, atol=1e-7, msg=term)
    assert not torch.isclose(plain["contrastive"], semantic["contrastive"])
    assert calls["plain"] == calls["semantic"] == [1]
    assert methods["plain"].state_dict().keys() == methods["semantic"].state_dict().keys()
    phi = methods["semantic"].phi
    assert phi.computed_layers == ("stride8", "stride16", "stride32")
    methods["semantic"].double()
    assert next(phi.parameters()).dtype == torch.float64


def test_contrastive_layers_are_a_phi_with_those_layers(tiny_config):
    """Each term's features equal φ built with that term's layers alone (same trunk weights)."""
    with pytest.warns(UserWarning, match="random weights"):
        method = ContrastiveReconstruction(tiny_config("loss.contrastive_layers=[0,0,1,0.5]"))
        alone = {
            "feature": build_phi(method.cfg, normalize=True),
            "contrastive": build_phi(method.cfg, normalize=True, layers=(0, 0, 1, 0.5)),
        }
    images = torch.rand(2, 3, 48, 48)
    features = method.features(images, (12, 12))
    for term, phi in alone.items():
        phi.model.load_state_dict(method.phi.model.state_dict(), strict=False)
        torch.testing.assert_close(method._term_features(features, term), phi(images, (12, 12)), msg=term)


def test_feature_term_is_not_reweighted_when_phi_has_no_extra_layers(tiny_config):
    with pytest.warns(UserWarning, match="random weights"):
        subset = ContrastiveReconstruction(tiny_config("loss.contrastive_layers=[0,0,1,0]"))
        extra = ContrastiveReconstruction(tiny_config("loss.contrastive_layers=[0,0,1,1]"))
    assert subset.reweighted_terms == ("contrastive",)
    assert subset.phi.computed_layers == ("stride8", "stride16")
    assert extra.reweighted_terms == ("contrastive", "feature")


def test_mask_erosion_narrows_the_part_losses_mask_only(tiny_config):
    """With ``loss.mask_erosion`` the part losses are those of the plain method on the eroded mask; the
    background loss is the plain one on the whole mask."""
    from partdiscovery.training.methods.base import erode

    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(2, 1, 48, 48)
    mask[..., 8:40, 12:36] = 1
    images = torch.rand(2, 3, 48, 48, generator=g)
    losses = {}
    for name, erosion, fg in (
        ("eroding", 0.05, mask),
        ("pre-eroded", 0.0, erode(mask, 0.05)),
        ("whole", 0.0, mask),
    ):
        torch.manual_seed(0)
        with pytest.warns(UserWarning, match="random weights"):
            method = ContrastiveReconstruction(
                tiny_config("model.learned_background=true", f"loss.mask_erosion={erosion}")
            )
        losses[name] = method.training_step(
            {"image": images, "fg_mask": fg}, torch.Generator().manual_seed(1)
        )
    for term in ("feature", "contrastive", "visual", "equivariance"):
        assert torch.equal(losses["eroding"][term], losses["pre-eroded"][term]), term
    assert not torch.equal(losses["eroding"]["feature"], losses["whole"]["feature"])
    assert torch.equal(losses["eroding"]["background"], losses["whole"]["background"])
