"""workflows/baseline.py: one registry for fitted (k-means, DFF) and trained (SCOPS) baselines."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from partdiscovery.baselines import BASELINES
from partdiscovery.data import open_dataset
from partdiscovery.errors import DatasetError, InvalidArgumentError, OutputPathError
from partdiscovery.evaluation import read_prediction_dir
from partdiscovery.utils.registry import UnknownNameError
from partdiscovery.workflows.baseline import is_trained_baseline, list_baselines, run_baseline


def test_every_fitted_baseline_and_scops_are_registered():
    assert set(list_baselines()) == {*BASELINES.names(), "scops"}
    assert is_trained_baseline("scops")
    assert not any(is_trained_baseline(name) for name in BASELINES.names())


def test_a_fitted_baseline_registered_after_this_module_is_a_baseline(monkeypatch):
    """A plugin imported after ``partdiscovery.workflows``: the fitted baselines were copied at import time."""
    monkeypatch.setitem(BASELINES._entries, "sectors", BASELINES.get("kmeans"))
    assert "sectors" in list_baselines() and not is_trained_baseline("sectors")


def test_an_unknown_baseline_is_refused_with_the_names(tmp_path, tiny_dataset):
    with pytest.raises(UnknownNameError, match="kmeans"):
        run_baseline("spectral", str(tiny_dataset), tmp_path / "out", 3)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("parts", [1, 0, True, 2.5])
def test_parts_out_of_range_are_refused(tmp_path, tiny_dataset, parts):
    with pytest.raises(InvalidArgumentError, match="--parts"):
        run_baseline("kmeans", str(tiny_dataset), tmp_path / "out", parts)


def test_fitted_baseline_uses_the_configs_phi_and_input_size(
    tmp_path, tiny_dataset, tiny_config, deterministic_mode_off
):
    cfg = tiny_config("model.feature_layers=[0,1,0,1]")
    out = run_baseline("kmeans", str(tiny_dataset), tmp_path / "km", 3, cfg, progress=False)
    assert not torch.are_deterministic_algorithms_enabled()  # seeded for the fit, the caller's mode kept
    info = json.loads((out / "baseline_info.json").read_text())
    assert info["input_size"] == cfg.data.input_size
    assert info["feature_extractor"] == cfg.model.feature_extractor
    assert info["feature_layers"] == [1.0, 1.0]  # the selected layers (default: 0.33, 1)
    assert info["pretrained"] is False
    assert info["refine"]["refine"] == cfg.predict.refine == "none"
    test = open_dataset(tiny_dataset, "test", require_parts=True)
    assert len(list(read_prediction_dir(out, test))) == len(test)
    # An explicit input size wins over the config's, and a second run needs overwrite.
    with pytest.raises(OutputPathError, match="--overwrite"):
        run_baseline("kmeans", str(tiny_dataset), out, 3, cfg, progress=False)
    run_baseline("kmeans", str(tiny_dataset), out, 3, cfg, input_size=40, overwrite=True, progress=False)
    assert json.loads((out / "baseline_info.json").read_text())["input_size"] == 40


def test_fitted_baseline_is_refined_as_the_method_is(tmp_path, tiny_dataset, tiny_config):
    """With the config's ``predict.refine`` the clustering's parts are snapped to the image's edges like f's,
    so the lead of the method over it is not the post-processing's; the background stays the masks'."""
    test = open_dataset(tiny_dataset, "test", require_parts=True)
    raw = run_baseline("kmeans", str(tiny_dataset), tmp_path / "raw", 3, tiny_config(), progress=False)
    out = run_baseline(
        "kmeans", str(tiny_dataset), tmp_path / "g", 3, tiny_config("predict.refine=guided"), progress=False
    )
    assert json.loads((out / "baseline_info.json").read_text())["refine"]["refine"] == "guided"
    changed = 0
    for a, b in zip(read_prediction_dir(raw, test), read_prediction_dir(out, test), strict=True):
        assert np.array_equal(a.parts == 0, b.parts == 0)
        changed += int((a.parts != b.parts).sum())
    assert changed > 0


def test_scops_is_trained_into_out_run_without_changing_the_callers_config(
    tmp_path, tiny_dataset, tiny_config
):
    cfg = tiny_config("train.steps=3", "train.self_train_steps=1")  # a preset that self-trains, as `photos`
    before = cfg.to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        out = run_baseline(
            "scops", str(tiny_dataset), tmp_path / "scops", 3, cfg, device="cpu", progress=False
        )
    assert cfg.to_dict() == before
    run_config = (out / "run" / "config.yaml").read_text()
    assert "method: scops" in run_config and "num_parts: 3" in run_config
    assert "self_train_steps: 0" in run_config  # the method's self-training is not SCOPS's
    assert "steps: 2" in run_config  # SCOPS trains the method's steps: 3 - 1
    test = open_dataset(tiny_dataset, "test", require_parts=True)
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(test.ids)


def test_a_baseline_scored_on_val_is_fitted_without_the_val_images(
    tmp_path, tiny_dataset, tiny_config, monkeypatch
):
    """As ``train --holdout-val`` trains the method: a clustering fitted on the images it is scored on would not
    be compared with the method as the method is."""
    from partdiscovery.baselines import Baseline, fit_kmeans, predict_kmeans

    fitted_on = []

    def spy_fit(phi, train_set, *args, **kwargs):
        fitted_on.append(list(train_set.ids))
        return fit_kmeans(phi, train_set, *args, **kwargs)

    monkeypatch.setitem(BASELINES._entries, "spy", lambda: Baseline(spy_fit, predict_kmeans, True))
    out = run_baseline(
        "spy", str(tiny_dataset), tmp_path / "val", 3, tiny_config(), split="val", progress=False
    )
    val = open_dataset(tiny_dataset, "val").ids
    assert fitted_on[0] == open_dataset(tiny_dataset, "train_minus_val").ids and not set(val) & set(
        fitted_on[0]
    )
    info = json.loads((out / "baseline_info.json").read_text())
    assert (info["split"], info["fit_split"]) == ("val", "train_minus_val")
    run_baseline("spy", str(tiny_dataset), tmp_path / "test", 3, tiny_config(), progress=False)
    assert fitted_on[1] == open_dataset(tiny_dataset, "train").ids  # scoring test: the whole training split
    run_baseline(
        "spy",
        str(tiny_dataset),
        tmp_path / "own",
        3,
        tiny_config(),
        split="val",
        fit_split="train",
        progress=False,
    )
    assert fitted_on[2] == open_dataset(tiny_dataset, "train").ids  # given: used as given


def test_on_a_folder_without_masks_a_baseline_fits_on_the_masks_it_is_given(
    tmp_path, tiny_dataset, tiny_config
):
    """The folder ``train`` made automatic masks for: fitted on ``masks`` (e.g. ``RUN/masks``), cut and scored on the
    labelled parts' union; without ``masks`` refused, not fitted on a label-derived foreground."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    shutil.move(data / "masks", tmp_path / "run_masks")
    with pytest.raises(DatasetError, match="missing masks/ folder.*baseline --masks"):
        run_baseline("kmeans", str(data), tmp_path / "km", 3, tiny_config(), progress=False)
    out = run_baseline(
        "kmeans", str(data), tmp_path / "km", 3, tiny_config(), progress=False, masks=tmp_path / "run_masks"
    )
    info = json.loads((out / "baseline_info.json").read_text())
    assert (info["fit_masks"], info["cut_with"]) == (str(tmp_path / "run_masks"), "the labelled parts' union")
    test = open_dataset(tiny_dataset, "test", require_parts=True)
    for pred, index in zip(read_prediction_dir(out, test), range(len(test)), strict=True):
        assert np.array_equal(pred.parts > 0, test.load(index).part_labels > 0)
    with pytest.raises(InvalidArgumentError, match="--masks applies to a part folder"):
        run_baseline("kmeans", "cub:/nowhere", tmp_path / "km2", 3, masks=tmp_path / "run_masks")
