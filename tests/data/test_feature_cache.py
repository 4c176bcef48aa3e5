"""Per-image maps cropped like the image: φ's features (``loss.cache_features``) and self-training's targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from partdiscovery.config import DataConfig
from partdiscovery.data.feature_cache import FeatureCache, PartLabelCache, crop_cached_features
from partdiscovery.data.transforms import TrainingSet, crop_resize, letterbox_box


def test_cropping_the_whole_letterbox_is_a_plain_resize():
    fmap = torch.randn(5, 8, 8)
    out = crop_cached_features(fmap, (0, 0, 32, 32), (0, 0, 32, 32), (16, 16))
    expected = F.interpolate(fmap[None], size=(16, 16), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_a_crop_takes_the_matching_region_and_flips_with_the_image():
    # A map whose value is the x coordinate of the pixel centre (in image pixels): the crop of
    # [8, 24) must read 8..24, left to right (right to left when flipped).
    xs = (torch.arange(16) + 0.5) * 2  # 16 feature pixels over a 32 px letterbox
    fmap = xs.view(1, 1, 16).expand(1, 16, 16).clone()
    out = crop_cached_features(fmap, (0, 0, 32, 32), (8, 8, 24, 24), (8, 8))
    expected_x = 8 + (torch.arange(8) + 0.5) * 2
    torch.testing.assert_close(out[0, 3], expected_x, atol=1e-4, rtol=0)
    flipped = crop_cached_features(fmap, (0, 0, 32, 32), (8, 8, 24, 24), (8, 8), flip=True)
    torch.testing.assert_close(flipped[0, 3], expected_x.flip(0), atol=1e-4, rtol=0)


def test_letterbox_offsets_are_respected():
    # A wide image: the letterbox square starts above the image (negative y0).
    letterbox = letterbox_box(40, 20)
    assert letterbox[1] < 0
    ys = (torch.arange(20) + 0.5) * 2 + letterbox[1]  # y coordinate of each feature row, image pixels
    fmap = ys.view(1, 20, 1).expand(1, 20, 20).clone()
    out = crop_cached_features(fmap, letterbox, (10, 0, 30, 20), (10, 10))
    torch.testing.assert_close(out[0, :, 5], (torch.arange(10) + 0.5) * 2, atol=1e-4, rtol=0)
    # A tall image: the square starts left of the image (negative x0), and x is read from its own offset.
    letterbox = letterbox_box(20, 40)
    assert letterbox[0] < 0 == letterbox[1]
    xs = (torch.arange(20) + 0.5) * 2 + letterbox[0]
    fmap = xs.view(1, 1, 20).expand(1, 20, 20).clone()
    out = crop_cached_features(fmap, letterbox, (0, 10, 20, 30), (10, 10))
    torch.testing.assert_close(out[0, 5], (torch.arange(10) + 0.5) * 2, atol=1e-4, rtol=0)


def test_the_cache_runs_phi_once_per_image():
    calls = []

    def phi(x):
        calls.append(x.shape)
        return x[:, :2, ::4, ::4]

    cache = FeatureCache(phi, side=32)
    image = (torch.rand(3, 20, 30) * 255).to(torch.uint8)
    first, letterbox = cache.get(0, image)
    again, _ = cache.get(0, image)
    assert len(calls) == 1 and calls[0] == (1, 3, 32, 32) and first.dtype == torch.float16
    assert again is first and letterbox == letterbox_box(30, 20) and len(cache) == 1
    expected = (crop_resize(image, letterbox, 32) / 255.0)[:2, ::4, ::4]
    torch.testing.assert_close(first.float(), expected, atol=1e-3, rtol=0)


def test_training_items_carry_cropped_features(tiny_dataset):
    from partdiscovery.data import open_dataset

    dataset = open_dataset(tiny_dataset, "train")
    cfg = DataConfig(input_size=32)
    cache = FeatureCache(lambda x: x.mean(dim=1, keepdim=True).repeat(1, 2, 1, 1), side=37)
    items = TrainingSet(dataset, cfg, features=cache, feature_size=16)
    item = items[(0, 123)]
    plain = TrainingSet(dataset, cfg)[(0, 123)]
    torch.testing.assert_close(item["image"], plain["image"])  # same crop and flip as without the cache
    assert item["features"].shape == (2, 16, 16)
    # The "feature" here is the grey image: cropped from the cache it matches the grey crop.
    grey = F.avg_pool2d(item["image"].mean(dim=0, keepdim=True)[None], 2)[0, 0]
    assert float((item["features"][0] - grey).abs().mean()) < 0.05
    assert np.isfinite(item["features"].numpy()).all()


def test_part_labels_are_computed_once_per_image_then_cropped_by_nearest_neighbour_and_flipped():
    """Self-training's targets (``train.self_train_steps``): the labeller sees the whole image and its 0/1 mask
    once; crops take the label at each output pixel's centre, flipped with the image, 0 outside the image."""
    calls = []

    def labeller(image, mask):
        calls.append((image.shape, image.max().item(), sorted(mask.unique().tolist())))
        return (torch.arange(8).view(1, 1, 8) // 2).expand(1, 6, 8)  # label = x // 2, image 6 x 8

    cache = PartLabelCache(labeller, crop_size=4)
    image = torch.full((3, 6, 8), 255, dtype=torch.uint8)
    mask = torch.zeros(1, 6, 8, dtype=torch.uint8)
    mask[:, 2:, 2:] = 255
    out = cache.crop(0, image, (0, 0, 8, 8), (4, 4), mask=mask)  # the box runs 2 px below the image
    assert out.dtype == torch.uint8 and out.shape == (1, 4, 4)
    assert out[0, 0].tolist() == [0, 1, 2, 3]  # x centres 1, 3, 5, 7
    assert out[0, 3].tolist() == [0, 0, 0, 0]  # y centre 7: below the image
    assert cache.crop(0, image, (0, 0, 8, 8), (4, 4), flip=True)[0, 0].tolist() == [3, 2, 1, 0]
    assert calls == [((1, 3, 6, 8), 1.0, [0.0, 1.0])] and len(cache) == 1


def test_the_first_crop_of_an_image_needs_its_mask():
    cache = PartLabelCache(lambda image, mask: torch.zeros(1, 4, 4), crop_size=4)
    with pytest.raises(ValueError, match="mask"):
        cache.crop(0, torch.zeros(3, 4, 4, dtype=torch.uint8), (0, 0, 4, 4), (4, 4))


def test_the_training_set_puts_part_targets_in_items_at_the_caches_crop_size(tiny_dataset):
    from partdiscovery.data import open_dataset

    dataset = open_dataset(tiny_dataset, "train")
    cache = PartLabelCache(lambda image, mask: mask[:, 0].long() * 2, crop_size=16)
    item = TrainingSet(dataset, DataConfig(input_size=16), features=cache, feature_size=8)[(0, 5)]
    assert item["part_targets"].shape == (1, 16, 16) and "features" not in item
    # The labeller's labels are the mask times 2, cropped by nearest neighbour (the mask bilinearly, then cut at
    # 0.5): they agree but for a few pixels on the mask's edge.
    targets = item["part_targets"].float()
    assert set(targets.unique().tolist()) == {0.0, 2.0}
    assert (targets == item["fg_mask"] * 2).float().mean() > 0.95
