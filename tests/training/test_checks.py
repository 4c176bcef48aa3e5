"""check_config: a config's names and what they imply, checked against the registries before any work."""

from __future__ import annotations

import pytest

from partdiscovery.config import list_presets, load_config
from partdiscovery.errors import ConfigError
from partdiscovery.models import FEATURE_EXTRACTORS
from partdiscovery.training.checks import check_config
from partdiscovery.workflows import run_baseline, run_training


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.optimizer=adamw", "unknown optim.optimizer 'adamw'; choose one of: adam, sgd"),
        ("predict.refine=crf", "unknown predict.refine 'crf'; choose one of: guided, none"),
        ("optim.schedule=cosine", "unknown optim.schedule 'cosine'; choose one of: constant, poly"),
        ("method=nope", "unknown method 'nope'; choose one of: contrastive_reconstruction, scops"),
        ("model.backbone=nope", "model.backbone: unknown backbone 'nope'; choose one of: deeplab_resnet50, "),
        (
            "model.feature_extractor=nope",
            "model.feature_extractor: unknown feature extractor 'nope'; choose one of: ",
        ),
        (
            "foreground.coarse=nope",
            "foreground.coarse: unknown coarse foreground approach 'nope'; choose one of: ",
        ),
        (
            "foreground.refine=crf",
            "foreground.refine: unknown foreground refiner 'crf'; choose one of: grabcut, none",
        ),
    ],
)
def test_unknown_names_are_config_errors_that_name_the_key_and_list_the_registered_ones(override, message):
    with pytest.raises(ConfigError) as info:
        check_config(load_config("cpu", overrides=[override]))
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("preset", list_presets())
def test_the_presets_pass(preset):
    check_config(load_config(preset))


@pytest.mark.parametrize("layers", ["[1,1]", "[0,0,0,0]", "[0,0.33,1,0.5,2]", "[0,-1,1,0]"])
def test_contrastive_layers_must_fit_phi(layers):
    # Two values for four layers were zipped short (an error about model.feature_layers with other values), all
    # zeros a traceback from torch.cat.
    with pytest.raises(
        ConfigError, match=r"loss.contrastive_layers for efficientnet_lite0 needs 4 non-negative"
    ):
        check_config(load_config("cpu", overrides=[f"loss.contrastive_layers={layers}"]))
    check_config(load_config("cpu", overrides=["loss.contrastive_layers=[0,0.33,1,0.5]"]))


@pytest.mark.parametrize(
    "phi, good, bad", [("vgg19", "[0.33,1]", "[1,1,1,1]"), ("dino_vits8", "[1]", "[1,1]")]
)
def test_contrastive_layers_of_the_papers_phi(phi, good, bad):
    """The paper's φs weight 2 (VGG19) and 1 (DINO) layers; checked without building them (no weights)."""

    def config(layers):
        return load_config(
            "paper", overrides=[f"model.feature_extractor={phi}", f"loss.contrastive_layers={layers}"]
        )

    check_config(config(good))
    with pytest.raises(ConfigError, match=f"loss.contrastive_layers for {phi} needs"):
        check_config(config(bad))


def test_restarts_need_a_phi_that_declares_its_layers(monkeypatch):
    """The restarts choose by φ's deepest layer after every candidate has trained: a φ registered as a plain
    function without ``selectable_layers`` must fail before, not after."""
    monkeypatch.setitem(FEATURE_EXTRACTORS._entries, "plain_phi", lambda **kwargs: None)
    check_config(load_config("cpu", overrides=["model.feature_extractor=plain_phi", "train.restarts=1"]))
    with pytest.raises(ConfigError, match="'plain_phi' does not declare its layers: .* `selectable_layers`"):
        check_config(load_config("cpu", overrides=["model.feature_extractor=plain_phi", "train.restarts=2"]))


def test_a_bad_name_leaves_no_run_folder(tmp_path, tiny_dataset):
    """``train --images`` checked the foreground approach only when it made the masks, after marking the folder."""
    cfg = load_config("cpu", overrides=["foreground.coarse=nope"])
    with pytest.raises(ConfigError, match="unknown coarse foreground approach 'nope'"):
        run_training(cfg, None, tmp_path / "run", "cpu", quiet=True, images=str(tiny_dataset / "images"))
    assert not (tmp_path / "run").exists()


def test_baseline_scops_with_a_bad_name_leaves_no_folder(tmp_path, tiny_dataset):
    cfg = load_config("cpu", overrides=["optim.optimizer=adamw"])
    with pytest.raises(ConfigError, match="unknown optim.optimizer 'adamw'"):
        run_baseline("scops", str(tiny_dataset), tmp_path / "scops", 3, cfg)
    assert not (tmp_path / "scops").exists()


def test_self_training_needs_a_method_that_does_it():
    check_config(load_config("cpu", overrides=["train.steps=5", "train.self_train_steps=2"]))
    scops = load_config("cpu", overrides=["method=scops", "train.steps=5", "train.self_train_steps=2"])
    with pytest.raises(ConfigError, match="train.self_train_steps: the scops method does not self-train"):
        check_config(scops)


def test_self_training_with_loader_workers_is_refused_before_any_step():
    cfg = load_config("cpu", overrides=["train.steps=5", "train.self_train_steps=2", "data.num_workers=2"])
    with pytest.raises(ConfigError, match="data.num_workers=0"):
        check_config(cfg)
