"""workflows/rounds.py: the foreground two rounds' masks agree on, and the label-free choice of a round."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from partdiscovery.data import PartFolderDataset
from partdiscovery.workflows.rounds import MaskIntersection, choose_round
from partdiscovery.workflows.train import run_training

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
