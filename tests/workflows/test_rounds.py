"""workflows/rounds.py: the foreground two rounds' masks agree on, and the label-free choice of a round."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from partdiscovery.data import PartFolderDataset
from partdiscovery.workflows.rounds import MaskIntersection, choose_round
from partdiscovery.workflows.train import run_training
from tests.conftest import make_tiny_config
from tests.ddp import spawn

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")


def top_half_masks(dataset: PartFolderDataset, out):
    """A mask folder with ``dataset``'s masks cut to their upper half (never empty)."""
    out.mkdir()
    for index, sample_id in enumerate(dataset.ids):
        mask = dataset.load(index).fg_mask.copy()
        mask[int(np.median(np.nonzero(mask)[0])) + 1 :] = False
        Image.fromarray(mask.astype(np.uint8) * 255).save(out / f"{sample_id}.png")
    return out


def test_the_intersection_keeps_what_both_masks_call_foreground(tiny_dataset, tmp_path):
    given = PartFolderDataset(tiny_dataset, "train")
    cut = PartFolderDataset(tiny_dataset, "train", masks=top_half_masks(given, tmp_path / "cut"))
    common = MaskIntersection(given, cut)
    assert common.ids == given.ids and len(common) == len(given)
    for index in range(len(common)):
        both = given.load(index).fg_mask & cut.load(index).fg_mask
        np.testing.assert_array_equal(common.load(index).fg_mask, both)
    assert common.load(0).fg_mask.sum() < given.load(0).fg_mask.sum()  # the cut removed something


def test_the_choice_scores_the_foreground_both_rounds_agree_on(tiny_dataset, tmp_path, monkeypatch):
    """Masks that neither contains the other (top half, right half): scored on one round's masks, the choice would
    favour that round; the test above gave both rounds the same masks, where any of the three is the same."""
    from partdiscovery.workflows import rounds

    given = PartFolderDataset(tiny_dataset, "train")
    top = PartFolderDataset(tiny_dataset, "train", masks=top_half_masks(given, tmp_path / "top"))
    (tmp_path / "right").mkdir()
    for index, sample_id in enumerate(given.ids):
        mask = given.load(index).fg_mask.copy()
        mask[:, : int(np.median(np.nonzero(mask)[1]))] = False
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "right" / f"{sample_id}.png")
    right = PartFolderDataset(tiny_dataset, "train", masks=tmp_path / "right")
    scored = []
    monkeypatch.setattr(
        rounds, "score_runs", lambda cfg, runs, dataset, *args: scored.append(dataset) or [0.2, 0.1]
    )
    record = choose_round(make_tiny_config(), [tmp_path / "a", tmp_path / "b"], [top, right], "cpu")
    assert record["kept"] == 1 and record["scores"] == {"1": 0.2, "2": 0.1}
    for index in range(len(given)):
        both = top.load(index).fg_mask & right.load(index).fg_mask
        assert both.any() and not np.array_equal(both, top.load(index).fg_mask)
        np.testing.assert_array_equal(scored[0].load(index).fg_mask, both)


def test_the_intersection_needs_the_same_images(tiny_dataset):
    with pytest.raises(ValueError, match="same images"):
        MaskIntersection(PartFolderDataset(tiny_dataset, "train"), PartFolderDataset(tiny_dataset, "test"))


def test_the_choice_follows_the_scores_not_the_order(tiny_config, tiny_dataset, tmp_path):
    cfg = tiny_config("train.steps=3")
    runs = []
    for seed in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random weights
            run_training(
                dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed)),
                str(tiny_dataset),
                tmp_path / f"run{seed}",
                "cpu",
                quiet=True,
            )
        runs.append(tmp_path / f"run{seed}")
    datasets = [PartFolderDataset(tiny_dataset, "train")] * 2

    def choose(order):
        torch.manual_seed(0)  # the tiny config's φ has random weights: the same ones for every call
        return choose_round(cfg, order, datasets, "cpu")

    forward, backward = choose(runs), choose(runs[::-1])
    assert forward["scores"] == {"1": backward["scores"]["2"], "2": backward["scores"]["1"]}
    assert forward["scores"]["1"] != forward["scores"]["2"]
    assert {forward["kept"], backward["kept"]} == {1, 2}
    assert forward["images"] == len(datasets[0])
    # A tie keeps the first round: the second costs the same again and must earn its place.
    assert choose([runs[0], runs[0]])["kept"] == 1


def _two_rounds_in_two_processes(rank: int, data: str, out: str) -> None:
    """One of two torchrun-like processes training two rounds without masks; counts the mask work it did."""
    import partdiscovery.foreground.folder as folder

    calls = {"fitted": 0, "from_run": 0}
    fit, from_run = folder.ForegroundModel.fit, folder.mask_from_run

    def counted_fit(*args, **kwargs):
        calls["fitted"] += 1
        return fit(*args, **kwargs)

    def counted_from_run(*args, **kwargs):
        calls["from_run"] += 1
        return from_run(*args, **kwargs)

    folder.ForegroundModel.fit, folder.mask_from_run = counted_fit, counted_from_run
    torch.set_num_threads(1)
    cfg = make_tiny_config(
        "train.steps=1", "train.batch_size=2", "foreground.rounds=2", "foreground.input_size=96",
        "foreground.fit_pixels=2000",
    )  # fmt: skip
    run_training(cfg, data, out, "cpu", quiet=True)
    Path(out, f"calls_{rank}.json").write_text(json.dumps(calls))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_under_torchrun_only_the_main_process_makes_the_masks_and_the_choice(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    shutil.rmtree(data / "masks")
    out = tmp_path / "run"
    spawn(_two_rounds_in_two_processes, 2, str(data), str(out))

    trained = len((data / "train.txt").read_text().split())
    assert json.loads((out / "calls_0.json").read_text()) == {"fitted": 1, "from_run": trained}
    assert json.loads((out / "calls_1.json").read_text()) == {"fitted": 0, "from_run": 0}  # reused the main's
    record = json.loads((out / "rounds.json").read_text())
    assert json.loads((out / "run_info.json").read_text())["rounds"] == record
    assert (out / "train_summary.json").is_file()
    assert len(list((out / "masks_round_2").glob("*.png"))) == trained


def test_a_finished_round_skipped_on_resume_is_compared_with_the_request(tmp_path, tiny_run, tiny_dataset):
    """A resume skips a finished round, so no trainer compares its settings; :func:`check_finished_run` does."""
    from partdiscovery.config import config_from_dict, with_overrides
    from partdiscovery.data import open_dataset
    from partdiscovery.errors import CheckpointError
    from partdiscovery.workflows.rounds import check_finished_run

    run = tmp_path / "round_1"
    shutil.copytree(tiny_run, run)
    cfg = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    train = open_dataset(tiny_dataset, "train")
    check_finished_run(run, cfg, train)  # the same request: goes on
    with pytest.raises(CheckpointError, match="different settings \\(optim.lr"):
        check_finished_run(run, with_overrides(cfg, ["optim.lr=0.5"]), train)
    with pytest.raises(CheckpointError, match="not on split 'train_minus_val'"):
        check_finished_run(run, cfg, open_dataset(tiny_dataset, "train_minus_val"))
