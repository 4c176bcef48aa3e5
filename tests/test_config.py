"""Typed config: presets, dotted overrides, errors that name the key, YAML round trip."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from partdiscovery.config import (
    Config,
    config_from_dict,
    list_presets,
    load_config,
    parse_override,
    read_yaml,
    with_overrides,
)
from partdiscovery.errors import ConfigError


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads(name):
    cfg = load_config(name)
    assert isinstance(cfg, Config)
    assert cfg.method == "contrastive_reconstruction"


def test_cpu_preset_is_the_code_defaults():
    assert load_config("cpu") == Config()
    assert load_config(None) == Config()


def test_paper_preset_values():
    cfg = load_config("paper")
    assert cfg.optim.optimizer == "sgd"
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.optim.backbone_lr == pytest.approx(1e-5)
    assert cfg.optim.momentum == pytest.approx(0.9)
    assert cfg.optim.weight_decay == pytest.approx(5e-4)
    assert cfg.train.batch_size == 6
    assert cfg.data.input_size == 256
    assert cfg.data.crop_scale == (0.9, 1.0)
    assert (cfg.loss.feature, cfg.loss.contrastive, cfg.loss.visual, cfg.loss.equivariance) == (
        30.0,
        2300.0,
        30.0,
        5700.0,
    )
    assert cfg.loss.loss_stride == 1 and cfg.loss.normalize_features is False
    # The paper's networks: DeepLab-v2 ResNet-50 for f, VGG19 for φ; the rest of the model is the default.
    assert (cfg.model.backbone, cfg.model.feature_extractor) == ("deeplab_resnet50", "vgg19")
    default = Config().model
    assert dataclasses.replace(
        cfg.model, backbone=default.backbone, feature_extractor=default.feature_extractor
    ) == (default)
    assert cfg.loss.temperature == Config().loss.temperature


def test_unknown_preset():
    with pytest.raises(ConfigError, match="paper"):
        load_config("nope")


def test_dotted_overrides_with_floats_ints_bools_tuples_and_strings():
    cfg = load_config(
        "paper",
        overrides=[
            "optim.lr=3e-4",
            "optim.backbone_lr=1E-5",
            "loss.visual=2",
            "train.steps=7",
            "model.pretrained=false",
            "data.crop_scale=[0.5, 0.8]",
            "model.backbone=resnet18",
            "model.backbone_weights=/tmp/w.pt",
            "data.jitter.hue=0.05",
        ],
    )
    assert cfg.optim.lr == 3e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.backbone_lr == 1e-5
    assert cfg.loss.visual == 2.0 and isinstance(cfg.loss.visual, float)  # int -> float is lossless
    assert cfg.train.steps == 7
    assert cfg.model.pretrained is False
    assert cfg.data.crop_scale == (0.5, 0.8) and isinstance(cfg.data.crop_scale, tuple)
    assert cfg.model.backbone == "resnet18"
    assert cfg.model.backbone_weights == "/tmp/w.pt"
    assert cfg.data.jitter.hue == 0.05
    # The preset is still applied underneath the overrides, and later overrides win.
    assert cfg.optim.optimizer == "sgd"
    assert load_config("cpu", overrides=["train.steps=3", "train.steps=5"]).train.steps == 5
    assert with_overrides(Config(), ["train.steps=3", "train.steps=5"]).train.steps == 5  # its own loop, too


def test_parse_override():
    assert parse_override("optim.lr=3e-4") == {"optim": {"lr": 3e-4}}
    assert parse_override("data.jitter.p=0.5") == {"data": {"jitter": {"p": 0.5}}}
    assert parse_override("model.feature_weights=null") == {"model": {"feature_weights": None}}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("optim.lr")


@pytest.mark.parametrize(
    "override, key",
    [
        ("optim.lrr=1", "optim.lrr"),
        ("model.nope=3", "model.nope"),
        ("data.jitter.bogus=1", "data.jitter.bogus"),
        ("bogus=1", "bogus"),
    ],
)
def test_unknown_keys_raise_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"unknown config key {key}\b"):
        load_config("cpu", overrides=[override])


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.steps=2.5", "train.steps"),
        ("train.steps=true", "train.steps"),
        ("loss.visual=true", "loss.visual"),  # a bool is an int to Python, not a number to the config
        ("optim.lr=fast", "optim.lr"),
        ("model.pretrained=1", "model.pretrained"),
        ("model.backbone=3", "model.backbone"),
        ("data.crop_scale=[0.5]", "data.crop_scale"),
        ("data.crop_scale=[0.5, x]", "data.crop_scale[1]"),
        ("data=3", "data"),
        ("train.steps=null", "train.steps"),
    ],
)
def test_wrong_types_raise_naming_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config("cpu", overrides=[override])
    assert str(info.value).startswith(key + ":")


def test_config_file_is_merged_between_preset_and_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  steps: 11\n  batch_size: 3\n")
    cfg = load_config("paper", file=path, overrides=["train.batch_size=2"])
    assert (cfg.train.steps, cfg.train.batch_size, cfg.optim.optimizer) == (11, 2, "sgd")
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config("cpu", file=tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("train:\n  steps: four\n", "train.steps: expected an integer, got 'four'"),
        ("model:\n  num_part: 3\n", "unknown config key model.num_part"),
        ("train:\n  steps: 0\n", "train.steps=0: must be in"),
        ("train:\n  steps: [1\n", r"cannot read config \(while parsing .*exp.yaml\", line 2"),
        # YAML keeps a repeated key's last value; a repeated section would drop the first one's keys
        ("train:\n  steps: 3\n  steps: 5\n", r"\(line 3: the key 'steps' is set twice \(first on line 2\)"),
        (
            "train:\n  steps: 3\ntrain:\n  batch_size: 4\n",
            r"\(line 3: the key 'train' is set twice \(first on line 1",
        ),
    ],
)
def test_a_config_files_errors_name_the_file(tmp_path, text, message):
    """A value from the file, not the preset or an override: the one line says which file holds it (and a YAML
    syntax error's position names the file, not "<unicode string>")."""
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config("cpu", file=path, overrides=["train.batch_size=2"])
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
    assert re.search(message, str(info.value))


def test_a_config_file_may_merge_a_mapping_and_override_its_keys():
    """YAML's merge key: the merged mapping's keys are not "set twice" when the mapping sets one of them again."""
    assert read_yaml("base: &b {tag: 1}\nrun:\n  <<: *b\n  tag: 2\n")["run"] == {"tag": 2}


@pytest.mark.parametrize("text", ["3e-4", "3E-4", "3.0e-4", "0.0003", "+3e-4"])
def test_a_config_file_reads_numbers_in_exponent_form(tmp_path, text):
    """YAML 1.1 (PyYAML) reads ``3e-4`` as a string; the README writes ``optim.lr=3e-4``, and users copy that."""
    path = tmp_path / "exp.yaml"
    path.write_text(f"optim:\n  lr: {text}\n")
    assert load_config("cpu", file=path).optim.lr == pytest.approx(3e-4)
    assert load_config("cpu", overrides=[f"optim.lr={text}"]).optim.lr == pytest.approx(3e-4)


def test_a_written_config_reads_back_unchanged_strings_that_look_like_numbers_included():
    """The YAML 1.2 reader takes ``1e3`` for a number: the writer must quote such strings (a run's config.yaml is
    given back as ``--config``, and a resume compares it)."""
    from partdiscovery.config import read_yaml, with_overrides

    cfg = with_overrides(
        load_config("photos"), ['extra.tag="1e3"', 'extra.commit="4e12345"', "extra.lr=1e-4"]
    )
    assert cfg.extra == {"tag": "1e3", "commit": "4e12345", "lr": 1e-4}
    assert config_from_dict(read_yaml(cfg.to_yaml())) == cfg


def test_an_override_may_correct_the_files_value(tmp_path):
    """``train --config t.yaml --steps 5`` with ``steps: 0`` in the file: the override wins, as everywhere."""
    path = tmp_path / "t.yaml"
    path.write_text("train:\n  steps: 0\n")
    assert load_config("cpu", file=path, overrides=["train.steps=5"]).train.steps == 5
    with pytest.raises(ConfigError) as info:  # an override's own mistake does not name the file
        load_config("cpu", file=path, overrides=["train.steps=5", "train.batch_size=0"])
    assert str(info.value).startswith("train.batch_size=0")


@pytest.mark.parametrize("name", list_presets())
def test_yaml_round_trip(name):
    cfg = load_config(name, overrides=["data.crop_scale=[0.6, 0.9]", "model.backbone_weights=/x.pt"])
    text = cfg.to_yaml()
    back = config_from_dict(yaml.safe_load(text))
    assert back == cfg
    assert back.data.crop_scale == (0.6, 0.9) and back.to_yaml() == text


def test_to_dict_is_plain_and_partial_dicts_fill_defaults():
    cfg = Config()
    d = cfg.to_dict()
    assert d["data"]["crop_scale"] == list(cfg.data.crop_scale)  # tuples become YAML lists
    partial = config_from_dict({"model": {"num_parts": 9}})
    assert partial == dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_parts=9))


def test_configs_of_earlier_versions_still_load():
    """``loss.scale_range`` (the content zoom, before 0.2) is read as ``loss.zoom_range``."""
    cfg = config_from_dict({"loss": {"scale_range": [0.5, 1.43]}})
    assert cfg.loss.zoom_range == (0.5, 1.43)
    both = config_from_dict({"loss": {"scale_range": [0.5, 1.43], "zoom_range": [0.8, 1.25]}})
    assert both.loss.zoom_range == (0.8, 1.25)  # today's key, where a config has both


def test_variable_length_tuples():
    cfg = load_config("cpu", overrides=["model.feature_layers=[0, 0.33, 1, 0.5]"])
    assert cfg.model.feature_layers == (0.0, 0.33, 1.0, 0.5)
    assert load_config("cpu").model.feature_layers is None
    with pytest.raises(ConfigError):
        load_config("cpu", overrides=["model.feature_layers=3"])


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("model.num_parts=1", "model.num_parts=1: must be in 2..64 .*scores 0"),
        ("model.num_parts=10000", "model.num_parts=10000: must be in 2..64"),
        ("train.steps=0", "train.steps=0: .*no checkpoint"),
        ("train.steps=-1", "train.steps=-1"),
        ("train.batch_size=0", "train.batch_size=0"),
        ("train.batch_size=1", "at least 2 images"),
        ("train.checkpoint_every=0", "train.checkpoint_every"),
        ("train.log_every=-3", "train.log_every"),
        ("train.restarts=0", "train.restarts=0: .*1: a single run"),
        ("train.restarts_choice_step=-1", "train.restarts_choice_step=-1: .*0: choose after the last step"),
        ("train.restarts_mask_erosion=-0.01", "train.restarts_mask_erosion=-0.01: must be in 0..0.25"),
        (
            "train.restarts_temperature=1e-7",
            r"train.restarts_temperature=1.0e-07: must be 0 \(off\) or >= 1e-06",
        ),
        ("loss.mask_erosion=0.5", "loss.mask_erosion=0.5: must be in 0..0.25 .*input side"),
        ("predict.refine_radius=2", r"predict.refine_radius=2.0: must be in 0..1 .*shorter side"),
        ("predict.refine_eps=0", r"predict.refine_eps=0.0: must be >= 1e-12"),
        ("foreground.rounds=3", "foreground.rounds=3: must be in 1..2 .*rounds of masks"),
        ("foreground.clusters=-3", "foreground.clusters=-3: must be in 2..1000"),
        ("foreground.border_ratio=-1", r"foreground.border_ratio=-1.0: must be >= 0"),
        ("foreground.input_size=0", "foreground.input_size=0: must be in 32..4096"),
        ("foreground.fit_images=0", "foreground.fit_images=0"),
        ("foreground.fit_pixels=0", "foreground.fit_pixels=0"),
        ("foreground.grabcut_iterations=-1", "foreground.grabcut_iterations=-1: .*GrabCut's iterations"),
        ("foreground.refine_size=0", "foreground.refine_size=0: must be in 16..100000"),
        ("data.input_size=0", "data.input_size"),
        ("data.input_size=100000", "data.input_size"),
        ("data.crop_scale=[0.9,0.1]", "data.crop_scale"),
        ("data.crop_scale=[0,1]", "data.crop_scale"),
        (
            "loss.zoom_range=[2, 0.5]",
            r"loss.zoom_range=\[2.0, 0.5\]: the first value must not exceed the second",
        ),
        ("data.jitter.p=1.5", "data.jitter.p"),
        ("data.num_workers=-1", "data.num_workers"),
        ("optim.lr=0", "optim.lr"),
        ("optim.lr=.inf", "optim.lr"),
        ("optim.lr=.nan", "optim.lr"),
        ("loss.temperature=0", "loss.temperature"),
        ("loss.contrastive=-1", "loss.contrastive"),
        ("loss.loss_stride=0", "loss.loss_stride"),
        ("scops.semantic=-1", "scops.semantic"),
    ],
)
def test_values_out_of_range_are_refused_with_key_value_and_range(override, match):
    from partdiscovery.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        load_config("cpu", overrides=[override])


def test_every_preset_and_the_defaults_pass_validation():
    from partdiscovery.config import Config, validate_config

    validate_config(Config())
    for name in ("cpu", "photos", "paper"):
        load_config(name)


def test_the_photos_preset_keeps_the_best_of_five_finished_runs_and_the_others_train_once():
    photos = load_config("photos").train
    assert (photos.restarts, photos.restarts_choice_step, photos.steps) == (5, 0, 180)
    assert load_config("cpu").train.restarts == 1 and load_config("paper").train.restarts == 1


def test_only_the_photos_preset_self_trains_its_last_60_of_180_steps_in_one_round():
    """120 steps of the method (the candidates are compared there), then 60 of self-training for the kept one."""
    from partdiscovery.training.phases import phase_starts
    from partdiscovery.workflows.restarts import choice_step_of

    photos = load_config("photos")
    assert (photos.train.steps, photos.train.self_train_steps, choice_step_of(photos)) == (180, 60, 120)
    assert phase_starts(photos) == [0, 120]
    assert load_config("cpu").train.self_train_steps == load_config("paper").train.self_train_steps == 0


def test_the_photos_preset_trains_a_larger_f_on_the_same_phi_as_the_cpu_preset():
    photos, cpu = load_config("photos").model, load_config("cpu").model
    assert (photos.backbone, cpu.backbone) == ("efficientnet_lite2", "efficientnet_lite0")
    assert photos.feature_extractor == cpu.feature_extractor  # the clustering baselines see the same φ


def test_only_the_photos_preset_keeps_every_part_in_use():
    assert load_config("photos").loss.usage == 1.0
    assert (
        load_config("cpu").loss.usage == load_config("paper").loss.usage == 0.0
    )  # the paper has no such term


def test_only_the_photos_preset_trains_some_restarts_at_a_softer_temperature():
    assert {load_config(p).loss.temperature for p in ("cpu", "paper", "photos")} == {0.19}  # the paper's
    assert load_config("photos").train.restarts_temperature == 0.5
    assert (
        load_config("cpu").train.restarts_temperature == load_config("paper").train.restarts_temperature == 0
    )


def test_only_the_photos_preset_refines_the_part_maps():
    assert load_config("photos").predict.refine == "guided"
    assert load_config("cpu").predict.refine == load_config("paper").predict.refine == "none"


def test_a_config_that_is_not_a_mapping_is_refused():
    from partdiscovery.config import config_from_dict
    from partdiscovery.errors import ConfigError

    with pytest.raises(ConfigError, match="mapping"):
        config_from_dict(["model"])


def test_extra_holds_a_plugins_settings_and_nothing_nested(tmp_path):
    """The one open section: a registered method's own loss weight is a config value, saved with the run."""
    cfg = load_config(
        "cpu", overrides=["extra.tv_weight=0.1", "extra.mode=fast", "extra.flag=true", "extra.n=3"]
    )
    assert cfg.extra == {"tv_weight": 0.1, "mode": "fast", "flag": True, "n": 3}
    assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg and load_config("cpu").extra == {}
    path = tmp_path / "mine.yaml"
    path.write_text("extra:\n  tv_weight: 0.2\n")
    assert load_config("cpu", file=path, overrides=["extra.other=1"]).extra == {"tv_weight": 0.2, "other": 1}
    for bad, message in (
        ("extra.a.b=1", "extra.a: expected a number, a string or true/false"),
        ("extra.x=[1,2]", "extra.x: expected a number, a string or true/false"),
        ("extra.x=null", "extra.x: expected a number, a string or true/false"),
        ("extra=3", "extra: expected a mapping of names to values"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config("cpu", overrides=[bad])


def test_self_training_must_leave_steps_to_the_method():
    assert (
        load_config("photos", overrides=["train.steps=5", "train.self_train_steps=4"]).train.self_train_steps
        == 4
    )
    with pytest.raises(ConfigError, match=r"train.self_train_steps=5: must be less than train.steps=5"):
        load_config("cpu", overrides=["train.steps=5", "train.self_train_steps=5"])
    with pytest.raises(ConfigError, match="train.self_train_steps=-1"):
        load_config("cpu", overrides=["train.self_train_steps=-1"])
    with pytest.raises(
        ConfigError, match=r"train.self_train_rounds=3: must not exceed train.self_train_steps=2"
    ):
        load_config(
            "cpu", overrides=["train.steps=5", "train.self_train_steps=2", "train.self_train_rounds=3"]
        )
    with pytest.raises(ConfigError, match="train.self_train_rounds=0"):
        load_config("cpu", overrides=["train.self_train_rounds=0"])
