"""Every registered method satisfies the Method protocol and keeps φ out of checkpoints and training."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
import torch.nn as nn

from partdiscovery.data.augment import warp
from partdiscovery.training.methods import Method, create_method, list_methods


@pytest.fixture(scope="module", params=list_methods())
def method(request, tiny_config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        return create_method(tiny_config(f"method={request.param}"))


def test_satisfies_the_protocol_and_its_groups_cover_every_parameter(method):
    assert isinstance(method, Method) and isinstance(method, nn.Module)
    groups = method.param_groups(method.cfg.optim)
    ids = [id(p) for group in groups for p in group["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in method.parameters()}
    assert groups[-1]["name"] == "head"  # the trainer logs the last group's learning rate


def test_phi_is_not_stored_not_optimised_and_stays_in_eval_mode(method):
    assert method.phi is not None and not any(k.startswith("phi.") for k in method.state_dict())
    phi_ids = {id(p) for p in method.phi.parameters()}
    assert phi_ids and not phi_ids & {id(p) for p in method.parameters()}
    method.train()
    assert method.net.training and not method.phi.training


def test_moves_reach_phi(method):
    moved = copy.deepcopy(method).double()
    assert all(p.dtype == torch.float64 for p in moved.phi.parameters())
    assert all(p.dtype == torch.float64 for p in moved.net.parameters())
    assert all(p.dtype == torch.float32 for p in method.phi.parameters())  # the original is untouched


def test_wrap_net_runs_f_through_the_wrapper_and_keeps_the_state_dict_keys(method):
    wrapped = copy.deepcopy(method)
    calls = []

    class Wrapper(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.module = net

        def forward(self, images):
            calls.append(images.shape)
            return self.module(images)

    keys = list(wrapped.state_dict())
    wrapped.wrap_net(Wrapper)
    wrapped.eval()
    with torch.no_grad():
        out = wrapped.run_net(torch.rand(1, 3, 48, 48))
    assert calls == [torch.Size([1, 3, 48, 48])] and out.logits.shape[0] == 1
    assert list(wrapped.state_dict()) == keys


def test_random_warp_follows_the_loss_config(tiny_config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        still = "loss.tps_sigma=0 loss.rotation_deg=0 loss.zoom_range=[1,1] loss.translation=0".split()
        plain = create_method(tiny_config(*still))
        mirror = create_method(tiny_config(*still, "loss.warp_hflip=1"))
    images = torch.rand(3, 3, 8, 8)
    x = torch.rand(3, 2, 8, 8)
    grid = plain.random_warp(images, torch.Generator().manual_seed(0), None)
    torch.testing.assert_close(warp(x, grid), x, atol=1e-4, rtol=0)
    grid = mirror.random_warp(images, torch.Generator().manual_seed(0), None)
    torch.testing.assert_close(warp(x, grid), x.flip(-1), atol=1e-4, rtol=0)


def test_run_views_in_two_passes_normalises_each_view_with_its_own_batch_statistics(tiny_config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        one = create_method(tiny_config("model.learned_background=true"))
        two = create_method(tiny_config("model.learned_background=true", "loss.separate_view_passes=true"))
    two.load_state_dict(one.state_dict())
    view1, view2 = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 48, 48) * 0.5
    one.eval(), two.eval()
    with torch.no_grad():  # with running statistics the passes agree
        torch.testing.assert_close(two.run_views(view1, view2).logits, one.run_views(view1, view2).logits)
    one.train(), two.train()
    with torch.no_grad():
        joint, split = one.run_views(view1, view2), two.run_views(view1, view2)
        first, second = copy.deepcopy(one).run_net(view1), copy.deepcopy(one).run_net(view2)
    assert split.logits.shape == joint.logits.shape == (4, one.cfg.model.num_parts, 48, 48)
    torch.testing.assert_close(split.logits, torch.cat([first.logits, second.logits]))
    torch.testing.assert_close(
        split.background_logits, torch.cat([first.background_logits, second.background_logits])
    )
    assert not torch.allclose(split.logits, joint.logits, atol=1e-3)  # BatchNorm saw different batches


def test_two_view_passes_refuse_a_distributed_wrapper(tiny_config):
    from partdiscovery.errors import ConfigError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        method = create_method(tiny_config("loss.separate_view_passes=true"))
    with pytest.raises(ConfigError, match="separate_view_passes"):
        method.wrap_net(lambda net: net)


def test_erode_shrinks_the_mask_by_a_disc_but_not_from_the_image_edge():
    from partdiscovery.training.methods.base import erode

    mask = torch.zeros(1, 1, 40, 40)
    mask[..., 10:30, 10:30] = 1  # a square inside
    mask[..., 35:, :] = 1  # a band on the bottom edge
    eroded = erode(mask, 0.05)  # 2 px
    expected = torch.zeros(1, 1, 40, 40)
    expected[..., 12:28, 12:28] = 1
    expected[..., 37:, :] = 1  # shrinks from its inner side only
    assert torch.equal(eroded, expected)
    assert erode(mask, 0.0) is mask and erode(mask, 0.01) is mask  # under half a pixel: unchanged


def test_erode_radius_is_a_fraction_of_the_longer_side():
    from partdiscovery.training.methods.base import erode

    mask = torch.zeros(1, 1, 20, 40)  # 40 px wide: 0.05 of it is 2 px (of the 20 px side: 1 px)
    mask[..., 5:15, 10:30] = 1
    expected = torch.zeros(1, 1, 20, 40)
    expected[..., 7:13, 12:28] = 1
    assert torch.equal(erode(mask, 0.05), expected)


def test_random_warp_takes_the_translation_from_the_loss_config(tiny_config):
    """Only ``loss.translation`` set: every pixel moves by the same shift, within +-translation, not zero."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        method = create_method(
            tiny_config(
                *"loss.tps_sigma=0 loss.rotation_deg=0 loss.zoom_range=[1,1] loss.translation=0.2".split()
            )
        )
    grid = method.random_warp(torch.rand(8, 3, 6, 6), torch.Generator().manual_seed(0), None)
    centres = (torch.arange(6) + 0.5) / 6 * 2 - 1
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    shift = grid - torch.stack([gx, gy], -1)
    torch.testing.assert_close(shift, shift[:, :1, :1].expand_as(shift), atol=1e-5, rtol=0)
    assert float(shift.abs().max()) <= 0.2 + 1e-6 and float(shift.abs().max()) > 0.1


def test_two_view_background_loss_is_the_mean_over_the_views_against_the_binarised_warped_mask():
    """View 1 is scored against M, view 2 (the warped one) against T(M) thresholded at 0.5, and the two are
    averaged: here view 1 is undecided (log 2 per pixel) and view 2 exactly right, so the loss is log(2) / 2."""
    from partdiscovery.training.methods.base import FrozenFeaturesMethod

    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 1:4] = 1  # off-centre: its mirror image is elsewhere
    xs = (torch.arange(8) + 0.5) / 8 * 2 - 1
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    # Mirror left-right and move by a quarter pixel: the warped mask has 0.75 / 0.25 at its edges.
    grid = torch.stack([-gx + 0.25 * 2 / 8, gy], -1)[None]
    soft = warp(mask, grid)
    assert ((soft > 0.1) & (soft < 0.9)).any()
    binary = (soft > 0.5).float()
    right = torch.where(binary.bool(), -30.0, 30.0)  # positive = background
    logits = torch.cat([torch.zeros(1, 1, 8, 8), right])
    loss = FrozenFeaturesMethod.two_view_background_loss(logits, mask, grid)
    assert float(loss) == pytest.approx(0.5 * math.log(2), rel=1e-6)
