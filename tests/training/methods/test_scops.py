"""The SCOPS method: the K+1 parametrisation, its loss weights, its config, and a short training run."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

from partdiscovery.config import ScopsConfig
from partdiscovery.data import open_dataset
from partdiscovery.models import PartOutput
from partdiscovery.models.part_net import part_probabilities
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.training.methods.scops import SCOPS, scops_log_probs, scops_loss_weights


def test_log_probs_are_what_the_segmenter_predicts():
    g = torch.Generator().manual_seed(0)
    parts, bg = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
    log_probs = scops_log_probs(PartOutput(parts, bg))
    torch.testing.assert_close(log_probs.exp().sum(dim=1), torch.ones(2, 4, 4))
    torch.testing.assert_close(log_probs.exp(), part_probabilities(parts, bg))
    with pytest.raises(ValueError, match="background"):
        scops_log_probs(PartOutput(parts))


def test_loss_weights_convert_the_reference_normalisations():
    released = ScopsConfig(concentration=1e1, semantic=1e4, orthonormality=1e-1)
    w = scops_loss_weights(num_parts=4, weights=released)
    assert w["equivariance"] == pytest.approx(1e3 / 5 * 1e-3)
    assert w["concentration"] == pytest.approx(10 / 6 * 1e-3)
    assert w["semantic"] / w["centre_equivariance"] == pytest.approx(100)
    assert w["orthonormality"] == pytest.approx(1e-4)
    default = scops_loss_weights(num_parts=4)
    assert default["semantic"] == pytest.approx(w["semantic"] / 10)
    assert default["concentration"] == pytest.approx(w["concentration"] * 100)
    assert default["equivariance"] == pytest.approx(w["equivariance"])


@pytest.fixture(scope="module")
def scops_run(tiny_dataset, tmp_path_factory, tiny_config, train_tiny):
    cfg = tiny_config("method=scops", "train.steps=3", "train.checkpoint_every=3")
    run = tmp_path_factory.mktemp("scops") / "run"
    return run, train_tiny(tiny_dataset, run, cfg), cfg


def test_training_step_reaches_every_parameter(tiny_config):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="random weights"):
        method = SCOPS(tiny_config("method=scops"))
    assert method.cfg.model.learned_background  # SCOPS always has a background channel
    groups = method.param_groups(method.cfg.optim)
    ids = [id(p) for grp in groups for p in grp["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in method.parameters()}
    assert groups[-1]["name"] == "head" and groups[1]["lr"] == pytest.approx(10 * groups[-1]["lr"])

    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 48, 48, generator=g)
    mask = torch.zeros(2, 1, 48, 48)
    mask[..., 8:40, 12:36] = 1
    losses = method.training_step({"image": images, "fg_mask": mask}, torch.Generator().manual_seed(1))
    assert set(losses) == {
        "concentration",
        "equivariance",
        "centre_equivariance",
        "semantic",
        "orthonormality",
        "background",
        "total",
    }
    assert all(math.isfinite(float(v.detach())) for v in losses.values())
    # The total is every term with its weight (the background's from loss.background): a dropped term shows here.
    expected = sum(w * losses[name] for name, w in method.weights.items())
    expected = expected + method.cfg.loss.background * losses["background"]
    assert set(method.weights) == set(losses) - {"background", "total"}
    torch.testing.assert_close(losses["total"], expected)
    losses["total"].backward()
    assert method.part_basis.grad is not None and method.part_basis.grad.abs().sum() > 0
    assert method.net.classifier.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in method.phi.parameters())


def test_trainer_run_gives_a_loadable_segmenter(scops_run, tiny_dataset):
    run, summary, cfg = scops_run
    assert summary["finite"] and summary["steps"] == 3
    assert {"semantic", "equivariance", "background", "total"} <= set(summary["final_losses"])
    state = torch.load(run / "checkpoints" / "step_00000003.pt", weights_only=True)["model"]
    assert "part_basis" in state and not any(k.startswith("phi.") for k in state)

    seg = PartSegmenter.load(run, device="cpu")
    assert seg.has_learned_background and seg.num_parts == cfg.model.num_parts
    test = open_dataset(tiny_dataset, "test")
    labels = seg.predict(test.load(0).image)  # no mask: the learned background decides
    assert labels.shape == test.load(0).fg_mask.shape
    assert labels.min() >= 0 and labels.max() <= cfg.model.num_parts
    preds = list(seg.predict_dataset(test, batch_size=4, progress=False))
    assert len(preds) == len(test) and all(
        np.isin(p.parts, range(cfg.model.num_parts + 1)).all() for p in preds
    )


def test_the_callers_config_is_left_as_it_is(tiny_config):
    cfg = tiny_config("method=scops")
    before = dataclasses.replace(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method = SCOPS(cfg)
    assert cfg == before and not cfg.model.learned_background
    assert method.cfg.model.learned_background
    assert method.cfg == dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, learned_background=True)
    )


def _ignored_warnings(cfg) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SCOPS(cfg)
    return [str(w.message) for w in caught if "ignores" in str(w.message)]


def test_loss_settings_of_the_other_methods_are_warned_about(tiny_config):
    (message,) = _ignored_warnings(tiny_config("method=scops", "loss.feature=1.0", "loss.temperature=0.5"))
    assert message.startswith("method=scops ignores loss.feature=1.0, loss.temperature=0.5: ")
    assert "scops.semantic" in message
    assert not _ignored_warnings(tiny_config("method=scops", "loss.background=2.0", "loss.loss_stride=1"))
