"""workflows/evaluate.py: scoring a run or a predictions folder; which JSON files are ours to replace."""

from __future__ import annotations

import json

import pytest

from partdiscovery.workflows import evaluate


def test_a_run_and_its_predictions_score_the_same(tmp_path, tiny_run, tiny_dataset):
    from partdiscovery.data import open_dataset
    from partdiscovery.evaluation import write_predictions
    from partdiscovery.segmenter import PartSegmenter

    by_run = evaluate(str(tiny_dataset), "test", run=str(tiny_run), device="cpu", progress=False)
    test = open_dataset(tiny_dataset, "test", require_parts=True)
    segmenter = PartSegmenter.load(tiny_run, device="cpu")
    for _ in write_predictions(segmenter.predict_dataset(test, progress=False), tmp_path / "pred"):
        pass
    by_folder = evaluate(str(tiny_dataset), "test", predictions=str(tmp_path / "pred"), progress=False)
    for key in ("fg_nmi", "fg_ari", "nmi", "ari"):
        assert by_run[key] == pytest.approx(by_folder[key])
    assert by_run["split"] == "test" and by_run["n_images"] == len(test)


def test_val_scores_of_a_run_trained_on_val_come_with_a_warning(tmp_path, tiny_run, tiny_dataset):
    import shutil
    import warnings

    info = json.loads((tiny_run / "run_info.json").read_text())
    assert info["split"] == "train"  # the whole training split, validation ids included
    with pytest.warns(UserWarning, match="val scores are not held out; train with --holdout-val"):
        evaluate(str(tiny_dataset), "val", run=str(tiny_run), device="cpu", progress=False)
    held_out = tmp_path / "held_out"
    shutil.copytree(tiny_run, held_out)
    (held_out / "run_info.json").write_text(json.dumps(info | {"split": "train_minus_val"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(str(tiny_dataset), "val", run=str(held_out), device="cpu", progress=False)


def test_val_scores_of_a_baseline_fitted_on_val_come_with_a_warning(tmp_path, tiny_dataset, tiny_config):
    import warnings

    from partdiscovery.workflows import run_baseline

    out = run_baseline(
        "kmeans", str(tiny_dataset), tmp_path / "km", 3, tiny_config(), split="val", progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fitted on train_minus_val: held out
        evaluate(str(tiny_dataset), "val", predictions=str(out), progress=False)
    info = json.loads((out / "baseline_info.json").read_text())
    (out / "baseline_info.json").write_text(
        json.dumps(info | {"fit_split": "train"})
    )  # as versions before 0.24
    with pytest.warns(
        UserWarning, match="fitted on split 'train', which holds .* validation ids.*not held out"
    ):
        evaluate(str(tiny_dataset), "val", predictions=str(out), progress=False)


def test_without_masks_a_run_without_a_learned_background_comes_with_a_warning(tiny_run, tiny_dataset):
    with pytest.warns(
        UserWarning, match="no learned background, so without the dataset's masks the whole image"
    ):
        result = evaluate(
            str(tiny_dataset), "test", run=str(tiny_run), device="cpu", progress=False, use_masks=False
        )
    assert "fg_iou" in result
