"""Crops, letterboxing and its inverse, the seeded batch sampler and the training set."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from partdiscovery.config import DataConfig
from partdiscovery.data import open_dataset
from partdiscovery.data.transforms import (
    EvalSet,
    StepBatchSampler,
    TrainingSet,
    box_to_grid,
    collate_eval,
    crop_resize,
    letterbox_box,
    pil_to_tensor,
    random_square_box,
    square_box,
    uncrop,
)


def block_labels(h: int, w: int) -> torch.Tensor:
    """Labels 0..3 in large rectangles (plus a diagonal edge), ``int64 [h, w]``."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    labels = (xs >= w // 3).long() + (ys >= h // 2).long() * 2
    labels[(xs + ys) < min(h, w) // 4] = 0
    return labels


def near_boundary(labels: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels within ``radius`` of a label change."""
    x = labels[None, None].float()
    hi = F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)
    lo = -F.max_pool2d(-x, 2 * radius + 1, stride=1, padding=radius)
    return (hi != lo)[0, 0]


def test_letterbox_and_square_boxes():
    assert letterbox_box(40, 40) == (0, 0, 40, 40)
    assert letterbox_box(44, 30) == (0, -7, 44, 37)
    assert letterbox_box(30, 44) == (-7, 0, 37, 44)
    assert square_box(10.0, 10.0, 6.0) == (7, 7, 13, 13)


@pytest.mark.parametrize("h, w, size", [(30, 44, 48), (44, 30, 48), (50, 70, 24), (33, 33, 64)])
def test_crop_resize_then_uncrop_round_trip(h, w, size):
    labels = block_labels(h, w)
    onehot = F.one_hot(labels, 4).permute(2, 0, 1).float()
    box = letterbox_box(w, h)
    square = crop_resize(onehot, box, size)
    assert square.shape == (4, size, size) and square.dtype == torch.float32
    back = uncrop(square[None], box, h, w)
    assert back.shape == (1, 4, h, w)
    wrong = back[0].argmax(0) != labels
    radius = 1 + int(np.ceil(max(h, w) / size))
    assert not bool((wrong & ~near_boundary(labels, radius)).any())
    assert float(wrong.float().mean()) < 0.05


@pytest.mark.parametrize("h, w, size", [(30, 44, 48), (44, 30, 48), (50, 70, 24), (33, 33, 64)])
def test_uncrop_is_the_exact_inverse_on_a_coordinate_ramp(h, w, size):
    """Bilinear resampling reproduces linear functions, so any misalignment (even one pixel) shows."""
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    ramp = torch.stack([xs, ys])
    box = letterbox_box(w, h)
    back = uncrop(crop_resize(ramp, box, size)[None], box, h, w)[0]
    m = 2 * int(np.ceil(max(h, w) / size))  # away from the zero padding / image border
    assert float((back - ramp)[:, m:-m, m:-m].abs().max()) < 0.05


def test_crop_resize_pads_outside_the_image_with_zeros():
    image = torch.full((3, 4, 4), 200, dtype=torch.uint8)
    out = crop_resize(image, (-2, -2, 6, 6), 8, mode="nearest")
    assert out.dtype == torch.uint8 and out.shape == (3, 8, 8)
    assert int(out[:, 2:6, 2:6].min()) == 200
    assert int(out[:, :2].max()) == 0 and int(out[:, :, 6:].max()) == 0
    labels = torch.randint(0, 7, (1, 9, 9))
    same = crop_resize(labels, (0, 0, 9, 9), 9, mode="nearest")
    assert torch.equal(same, labels)
    batched = crop_resize(torch.stack([labels, labels]), (0, 0, 9, 9), 9, mode="nearest")
    assert batched.shape == (2, 1, 9, 9)


def test_crop_resize_nearest_takes_the_label_at_each_pixels_centre():
    """Shrinking 9 -> 3 keeps columns 1, 4, 7 (the centres), not 0, 3, 6: labels aligned with the bilinear image."""
    labels = torch.arange(9).repeat(9, 1)[None]
    assert crop_resize(labels, (0, 0, 9, 9), 3, mode="nearest")[0, 0].tolist() == [1, 4, 7]
    grown = crop_resize(torch.arange(4).repeat(4, 1)[None], (0, 0, 4, 4), 6, mode="nearest")
    assert grown[0, 0].tolist() == [0, 1, 1, 2, 3, 3]


def test_box_to_grid_maps_the_box_onto_the_square():
    grid = box_to_grid((0, -7, 44, 37), 30, 44)
    assert grid.shape == (1, 30, 44, 2)
    # Pixel (x=0, y=0) of the image is at x = 0.5 px, y = 7.5 px of the 44 px box.
    torch.testing.assert_close(grid[0, 0, 0], torch.tensor([0.5 / 44 * 2 - 1, 7.5 / 44 * 2 - 1]))
    assert float(grid[..., 1].min()) > -1 and float(grid[..., 1].max()) < 1


def test_random_square_box_stays_within_the_square_around_the_object():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x0, y0, x1, y1 = random_square_box(100, 60, (20.0, 10.0, 60.0, 40.0), rng, (0.5, 1.0))
        assert x1 - x0 == y1 - y0
        assert 20 <= x1 - x0 <= 40
        assert x0 >= 20 - 1 and x1 <= 60 + 1 and y0 >= 5 - 1 and y1 <= 45 + 1


# ---------------------------------------------------------------------------------------- sampler
def test_step_batch_sampler_is_deterministic_and_resumable():
    full = list(StepBatchSampler(13, 4, 9, seed=3))
    assert len(full) == 9 and all(len(b) == 4 for b in full)
    assert full == list(StepBatchSampler(13, 4, 9, seed=3))
    for k in (1, 4, 8):
        tail = StepBatchSampler(13, 4, 9, seed=3, start_step=k)
        assert len(tail) == 9 - k
        assert list(tail) == full[k:]
    assert list(StepBatchSampler(13, 4, 9, seed=4)) != full
    assert len(StepBatchSampler(13, 4, 9, seed=3, start_step=9)) == 0


def test_step_batch_sampler_visits_every_image_once_per_epoch():
    batches = list(StepBatchSampler(12, 4, 6, seed=0))
    indices = [i for b in batches for i, _ in b]
    assert sorted(indices[:12]) == list(range(12)) and sorted(indices[12:]) == list(range(12))
    assert indices[:12] != indices[12:]  # a new permutation each epoch
    seeds = [s for b in batches for _, s in b]
    assert len(set(seeds)) == len(seeds)
    with pytest.raises(ValueError):
        StepBatchSampler(0, 4, 6, seed=0)


# ------------------------------------------------------------------------------------- training set
@pytest.fixture(scope="module")
def train_split(tiny_dataset):
    return open_dataset(tiny_dataset, "train")


def test_training_set_samples(train_split):
    cfg = DataConfig(input_size=32)
    ts = TrainingSet(train_split, cfg)
    assert len(ts) == len(train_split) == 13
    sample = ts[(3, 12345)]
    assert set(sample) == {"image", "fg_mask", "index"}
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert sample["fg_mask"].shape == (1, 32, 32) and sample["fg_mask"].dtype == torch.float32
    assert sample["index"] == 3
    assert 0.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
    assert set(sample["fg_mask"].unique().tolist()) == {0.0, 1.0}
    again = ts[(3, 12345)]
    assert torch.equal(sample["image"], again["image"]) and torch.equal(sample["fg_mask"], again["fg_mask"])
    others = [ts[(3, s)]["image"] for s in range(6)]
    assert any(not torch.equal(sample["image"], o) for o in others)


def test_training_set_without_augmentation_is_the_image_itself(train_split):
    cfg = dataclasses.replace(DataConfig(input_size=48), crop_scale=(1.0, 1.0), hflip=False)
    sample = TrainingSet(train_split, cfg)[(0, 1)]
    raw = train_split.load(0)
    torch.testing.assert_close(sample["image"], pil_to_tensor(raw.image).float() / 255.0, atol=1e-6, rtol=0)
    assert torch.equal(sample["fg_mask"][0].bool(), torch.from_numpy(raw.fg_mask))


def test_training_set_with_a_dataloader(train_split):
    from torch.utils.data import DataLoader

    cfg = DataConfig(input_size=32)
    loader = DataLoader(TrainingSet(train_split, cfg), batch_sampler=StepBatchSampler(13, 4, 2, seed=0))
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["image"].shape == (4, 3, 32, 32) and batches[0]["fg_mask"].shape == (4, 1, 32, 32)


def test_eval_set_and_collate(tiny_dataset):
    ds = open_dataset(tiny_dataset, "test")
    items = [EvalSet(ds, 32)[i] for i in range(2)]
    batch = collate_eval(items)
    assert batch["image"].shape == (2, 3, 32, 32) and batch["fg_mask"].shape == (2, 1, 32, 32)
    assert batch["size"] == [(48, 48), (48, 48)] and batch["box"] == [(0, 0, 48, 48)] * 2
    assert batch["id"] == ds.ids[:2]
    assert batch["part_labels"][0].shape == (48, 48) and batch["fg_mask_full"][0].dtype == bool


def test_eval_set_size_is_height_then_width(tmp_path):
    """The synthetic images are square; CUB's fixture image 2 is 56 wide and 44 high, so a (W, H) size shows."""
    from partdiscovery.data.cub import CUBDataset
    from tests.data.dataset_builders import make_cub

    ds = CUBDataset(make_cub(tmp_path), "test")
    item = EvalSet(ds, 32)[ds.ids.index("2")]
    assert item["size"] == (44, 56) == item["fg_mask_full"].shape
    assert item["box"] == letterbox_box(56, 44) and item["image"].shape == (3, 32, 32)
