"""ContrastiveReconstruction: φ's input scale and the losses of one step."""

from __future__ import annotations

import math

import pytest
import torch

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
    again = method.training_step(batch, torch.Generator().manual_seed(1))  # a pure function of the generator
    assert float(again["total"]) == float(losses["total"])


def test_contrastive_layers_change_only_the_contrastive_prototypes(tiny_config):
    """With ``loss.contrastive_layers`` the contrastive term sees a second φ's part means; the other
    terms, the state dict and f are those of the plain method."""
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(2, 1, 48, 48)
    mask[..., 8:40, 12:36] = 1
    batch = {"image": torch.rand(2, 3, 48, 48, generator=g), "fg_mask": mask}
    losses, methods = {}, {}
    for name, overrides in {"plain": (), "semantic": ("loss.contrastive_layers=[0,0,1,1]",)}.items():
        torch.manual_seed(0)
        with pytest.warns(UserWarning, match="random weights"):
            methods[name] = ContrastiveReconstruction(tiny_config(*overrides))
        losses[name] = methods[name].training_step(batch, torch.Generator().manual_seed(1))
    plain, semantic = losses["plain"], losses["semantic"]
    for term in ("feature", "visual", "equivariance"):
        assert torch.equal(plain[term], semantic[term]), term
    assert not torch.isclose(plain["contrastive"], semantic["contrastive"])
    assert methods["plain"].state_dict().keys() == methods["semantic"].state_dict().keys()
    phi_c = methods["semantic"]._unregistered["phi_contrastive"]
    assert phi_c.layer_weights == (1.0, 1.0) and phi_c.channels != methods["semantic"].phi.channels
    methods["semantic"].double()
    assert next(phi_c.parameters()).dtype == torch.float64
