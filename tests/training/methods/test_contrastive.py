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


def test_training_step_feeds_each_loss_its_documented_inputs(tiny_config):
    """The wiring of one step (the class docstring), with f replaced by a fixed per-pixel function, the jitter and
    the warp by fixed ones: f sees [x1, T(x2)] (T(x2) padded with the mean colour); R = softmax(f(x1)) * M at half
    resolution with M eroded at full resolution; the visual term is on the clean image's Lab; the equivariance
    target is softmax(T(f(x1))) (logits warped, then normalised) against f(T(x2)), weighted by T(M); the usage
    shares are of the eroded M at the loss resolution; the background loss sees the whole mask."""
    import torch.nn.functional as F

    from partdiscovery.data.augment import REFERENCE_FILL, random_warp_grid, warp
    from partdiscovery.losses import (
        contrastive_loss,
        draw_positive_images,
        equivariance_loss,
        feature_loss,
        rgb_to_lab,
        usage_loss,
        visual_consistency_loss,
    )
    from partdiscovery.models import PartOutput

    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="random weights"):
        method = ContrastiveReconstruction(
            tiny_config(
                "model.learned_background=true",
                "loss.mask_erosion=0.05",
                "loss.usage=1",
                "loss.usage_floor=1",
            )
        )
    b, k, s = 2, method.cfg.model.num_parts, 48
    g = torch.Generator().manual_seed(0)
    images = torch.rand(b, 3, s, s, generator=g)
    fg = torch.zeros(b, 1, s, s)
    # Off-centre (T(M) is not M), odd edges (downsampled first, M would erode otherwise).
    fg[..., 9:39, 7:31] = 1
    features = torch.randn(b, 5, s // 2, s // 2, generator=g)  # as the feature cache would give them
    grid = random_warp_grid(b, s, s, torch.Generator().manual_seed(4), tps_sigma=0.05)  # zooms out: pads too
    views = iter([images * 0.7, 1 - images])  # two different "jitters", x1 then x2
    method.jitter = lambda x, generator, shard: next(views)
    method.random_warp = lambda x, generator, shard: grid

    weight = torch.randn(k, 3, generator=g)
    ramp = torch.linspace(-2, 2, s).view(1, 1, 1, s) * torch.linspace(-1, 1, k).view(1, k, 1, 1)

    def f(x):  # not equivariant (the ramp stays put under a warp), so the equivariance term is not 0
        return torch.einsum("kc,bchw->bkhw", weight, x) + ramp, x.mean(dim=1, keepdim=True) - 0.5

    seen = []
    method.wrap_net(lambda net: lambda x: seen.append(x) or PartOutput(*f(x)))
    batch = {"image": images, "fg_mask": fg, "features": features}
    losses = method.training_step(batch, torch.Generator().manual_seed(1))

    x_in = torch.cat([images * 0.7, warp(1 - images, grid, fill=REFERENCE_FILL)])
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], x_in)
    logits, background = f(x_in)
    logits1, logits2 = F.avg_pool2d(logits, 2).split(b)
    eroded = torch.zeros(b, 1, s, s)
    eroded[..., 11:37, 9:29] = 1  # a 2 px disc (0.05 of 48 px) off each side
    mask = F.avg_pool2d(eroded, 2)
    assign = logits1.softmax(1) * mask
    feature, prototypes = feature_loss(assign, features, mask)
    positives = draw_positive_images(b, k, torch.Generator().manual_seed(1))  # the step's only draw here
    expected = {
        "feature": feature,
        "contrastive": contrastive_loss(prototypes, method.cfg.loss.temperature, positives=positives),
        "visual": visual_consistency_loss(assign, F.avg_pool2d(rgb_to_lab(images), 2), mask),
        "equivariance": equivariance_loss(
            logits2.log_softmax(1), warp(logits1, grid).softmax(1), warp(mask, grid)
        ),
        "usage": usage_loss(assign.sum(dim=(0, 2, 3)), mask.sum(), 1.0),
        "background": method.two_view_background_loss(background, fg, grid),
    }
    assert float(expected["usage"]) > 0 and float(expected["equivariance"]) > 1e-3
    for name, value in expected.items():
        torch.testing.assert_close(losses[name], value, rtol=1e-5, atol=1e-7, msg=name)
    weights = method.cfg.loss
    total = sum(getattr(weights, name) * value for name, value in expected.items())
    torch.testing.assert_close(losses["total"], total, rtol=1e-5, atol=1e-6)


def _self_training_method(tiny_config, *extra):
    with pytest.warns(UserWarning, match="random weights"):
        return ContrastiveReconstruction(
            tiny_config("train.steps=5", "train.self_train_steps=2", "predict.refine=guided", *extra)
        )


def test_the_teacher_draws_the_parts_predict_draws(tiny_config):
    """Self-training's targets are the parts a user of the run at the copy would get from ``predict`` with the
    training mask: f on the letterboxed image, its maps at the image's size, cut by the mask, refined."""
    from partdiscovery.segmenter import PartSegmenter

    method = _self_training_method(tiny_config)
    method.feature_cache("cpu", step=3)  # the copy
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 40, 56, generator=g)  # not square: letterboxed
    mask = torch.zeros(1, 1, 40, 56)
    mask[..., 5:35, 10:50] = 1
    expected = PartSegmenter(method.teacher, method.cfg, device="cpu").predict_proba(image, mask.bool())
    torch.testing.assert_close(method.teacher_parts(image, mask), expected[:, 1:].argmax(dim=1))


def test_the_teacher_is_copied_once_and_kept_in_eval_mode(tiny_config):
    method = _self_training_method(tiny_config)
    assert method.feature_cache("cpu", step=2) is None  # the method's steps: no φ cache asked for
    with torch.no_grad():
        method.net.classifier.bias.add_(1.0)
    cache = method.feature_cache("cpu", step=3)
    assert cache.crop_size == method.cfg.data.input_size and int(method.teacher_step) == 3
    assert torch.equal(method.teacher.classifier.bias, method.net.classifier.bias)
    with torch.no_grad():
        method.net.classifier.bias.add_(1.0)
    method.feature_cache("cpu", step=4)  # a second loader (a resumed run restored the teacher): no new copy
    assert not torch.equal(method.teacher.classifier.bias, method.net.classifier.bias)
    method.train()
    assert not method.teacher.training and method.net.training
    assert not any(p.requires_grad for p in method.teacher.parameters())
    trained = {id(p) for group in method.param_groups(method.cfg.optim) for p in group["params"]}
    assert trained and not trained & {id(p) for p in method.teacher.parameters()}


def test_each_round_copies_f_into_the_teacher_again(tiny_config):
    method = _self_training_method(tiny_config, "train.self_train_steps=3", "train.self_train_rounds=3")
    starts = []
    for step in range(2, 5):  # rounds start at 2, 3, 4
        with torch.no_grad():
            method.net.classifier.bias.add_(1.0)
        method.feature_cache("cpu", step=step)
        starts.append(int(method.teacher_step))
        assert torch.equal(method.teacher.classifier.bias, method.net.classifier.bias)
    assert starts == [2, 3, 4]
    # Rounds of two steps (starting at 3 and 5): the step within a round keeps the round's teacher.
    method = _self_training_method(
        tiny_config, "train.steps=7", "train.self_train_steps=4", "train.self_train_rounds=2"
    )
    for step, copied in ((3, True), (4, False), (5, True), (6, False)):
        with torch.no_grad():
            method.net.classifier.bias.add_(1.0)
        method.feature_cache("cpu", step=step)
        assert torch.equal(method.teacher.classifier.bias, method.net.classifier.bias) == copied, step
    assert int(method.teacher_step) == 5


def test_the_state_holds_the_teacher_only_once_it_is_copied(tiny_config):
    """Before the copy a checkpoint has no ``teacher.*`` entries and loads as it is; after it, it carries the
    teacher, which a loaded method gets back."""
    method = _self_training_method(tiny_config)
    unset = method.state_dict()
    assert not any(k.startswith("teacher.") for k in unset) and int(unset["teacher_step"]) == -1
    fresh = _self_training_method(tiny_config)
    fresh.load_state_dict(unset)  # strict: the missing teacher is no error while it is unset
    older = {**unset, **{"teacher." + k: v for k, v in method.teacher.state_dict().items()}}
    fresh.load_state_dict(older)  # 0.28's checkpoints hold the unset teacher: they load as before
    with torch.no_grad():
        method.net.classifier.bias.add_(1.0)
    method.feature_cache("cpu", step=3)
    copied = method.state_dict()
    assert torch.equal(copied["teacher.classifier.bias"], method.net.classifier.bias)
    fresh.load_state_dict(copied)
    assert int(fresh.teacher_step) == 3 and torch.equal(
        fresh.teacher.classifier.bias, method.net.classifier.bias
    )
    del copied["teacher.classifier.bias"]
    with pytest.raises(RuntimeError, match="teacher.classifier.bias"):
        fresh.load_state_dict(copied)  # once copied, the teacher must be there


def test_a_self_training_step_is_the_cross_entropy_of_one_jittered_view(tiny_config):
    from partdiscovery.losses import background_loss, self_training_loss
    from partdiscovery.models import PartOutput

    method = _self_training_method(tiny_config, "model.learned_background=true")
    b, s, k = 2, 16, method.cfg.model.num_parts
    g = torch.Generator().manual_seed(0)
    images, fg = torch.rand(b, 3, s, s, generator=g), (torch.rand(b, 1, s, s, generator=g) > 0.3).float()
    targets = torch.randint(0, k, (b, 1, s, s), generator=g, dtype=torch.uint8)
    method.jitter = lambda x, generator, shard: 1 - x
    logits, background = torch.randn(b, k, s, s, generator=g), torch.randn(b, 1, s, s, generator=g)
    seen = []
    method.wrap_net(lambda net: lambda x: seen.append(x) or PartOutput(logits, background))
    losses = method.training_step({"image": images, "fg_mask": fg, "part_targets": targets}, g)
    torch.testing.assert_close(seen[0], 1 - images)  # one view, jittered, no warp
    torch.testing.assert_close(losses["self_training"], self_training_loss(logits, targets, fg))
    torch.testing.assert_close(losses["background"], background_loss(background, fg))
    weight = method.cfg.loss.background
    torch.testing.assert_close(losses["total"], losses["self_training"] + weight * losses["background"])
    assert all(float(losses[t]) == 0 for t in ("feature", "contrastive", "visual", "equivariance"))
