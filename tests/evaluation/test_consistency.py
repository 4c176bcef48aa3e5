"""evaluation/consistency.py: the label-free score of how consistent a model's parts are across images."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

from partdiscovery.data import open_dataset
from partdiscovery.evaluation.consistency import (
    deepest_layer_phi,
    explained_variance,
    explained_variances,
    foreground_partitions,
    partition_r2,
    sample_indices,
)
from partdiscovery.models import PartOutput


def _r2_by_hand(x: torch.Tensor, parts: torch.Tensor) -> float:
    total = ((x - x.mean(0)) ** 2).sum()
    within = sum(((x[parts == k] - x[parts == k].mean(0)) ** 2).sum() for k in parts.unique())
    return float(1 - within / total)


def test_partition_r2_is_the_explained_sum_of_squares():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g, dtype=torch.float64)
    parts = torch.randint(0, 4, (200,), generator=g)
    assert partition_r2(x, parts) == pytest.approx(_r2_by_hand(x, parts), abs=1e-12)
    assert partition_r2(x, (parts + 1) % 4) == pytest.approx(
        partition_r2(x, parts), abs=1e-12
    )  # ids do not matter
    assert partition_r2(x, torch.zeros(200, dtype=torch.long)) == pytest.approx(0.0, abs=1e-12)


def test_partition_r2_rewards_parts_that_follow_the_features():
    g = torch.Generator().manual_seed(1)
    truth = torch.arange(300) % 3
    x = torch.randn(300, 4, generator=g) * 0.1 + torch.eye(4)[truth] * 3  # three tight clusters
    assert partition_r2(x, truth) > 0.95
    assert partition_r2(x, torch.randint(0, 3, (300,), generator=g)) < 0.05
    assert partition_r2(x[:1], truth[:1]) == 0.0  # nothing to explain


def test_sample_indices_are_a_sorted_deterministic_subset():
    assert sample_indices(5, 10) == [0, 1, 2, 3, 4]
    picked = sample_indices(100, 10, seed=3)
    assert picked == sorted(set(picked)) and len(picked) == 10 and picked == sample_indices(100, 10, seed=3)
    assert picked != sample_indices(100, 10, seed=4)


def test_deepest_layer_phi_keeps_only_the_last_layer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        phi = deepest_layer_phi("efficientnet_lite0", pretrained=False)
    assert phi.computed_layers == ("stride32",) and phi.channels == phi.layer_channels[0]


class _SplitNet(nn.Module):
    """Part 0 left of ``column``, part 1 right of it (``column=None``: part 0 everywhere)."""

    def __init__(self, column: int | None) -> None:
        super().__init__()
        self.column = column

    def forward(self, images: torch.Tensor) -> PartOutput:
        b, _, h, w = images.shape
        logits = torch.zeros(b, 2, h, w)
        logits[:, 0] = 5.0
        if self.column is not None:
            logits[:, 1, :, self.column :] = 10.0
        return PartOutput(logits)


def test_explained_variance_of_a_collapsed_and_of_a_split_model(tiny_dataset):
    dataset = open_dataset(tiny_dataset, "train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        phi = deepest_layer_phi("efficientnet_lite0", pretrained=False)
    collapsed = explained_variance(_SplitNet(None), phi, dataset, input_size=64, max_images=6)
    split = explained_variance(_SplitNet(32), phi, dataset, input_size=64, max_images=6)
    assert collapsed == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < split < 1.0


def test_several_models_are_scored_as_each_alone(tiny_dataset):
    dataset = open_dataset(tiny_dataset, "train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        phi = deepest_layer_phi("efficientnet_lite0", pretrained=False)
    nets = [_SplitNet(None), _SplitNet(16), _SplitNet(32)]
    together = explained_variances(nets, phi, dataset, input_size=64, max_images=6)
    alone = [explained_variance(n, phi, dataset, input_size=64, max_images=6) for n in nets]
    assert together == pytest.approx(alone, abs=1e-12)
    assert together[1] != pytest.approx(together[2])


def test_foreground_partitions_give_each_model_a_part_per_foreground_cell(tiny_dataset):
    dataset = open_dataset(tiny_dataset, "train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        phi = deepest_layer_phi("efficientnet_lite0", pretrained=False)
    cells, parts = foreground_partitions([_SplitNet(None), _SplitNet(32)], phi, dataset, 64, max_images=6)
    assert cells.ndim == 2 and 0 < len(cells) <= 6 * 8 * 8  # 64 px at stride 8: at most 64 cells an image
    assert [p.shape for p in parts] == [cells.shape[:1]] * 2
    assert parts[0].unique().tolist() == [0] and parts[1].unique().tolist() == [0, 1]
    assert partition_r2(cells, parts[1]) == pytest.approx(
        explained_variance(_SplitNet(32), phi, dataset, input_size=64, max_images=6), abs=1e-12
    )


def test_each_cells_part_is_read_at_that_cell(tiny_dataset):
    """A φ whose features are the cell's own (x, y): the split net's part 1 is exactly the cells right of the
    middle, so parts paired with the cells of another place (e.g. transposed) show."""

    def coordinates(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        ys, xs = ((torch.arange(n) + 0.5) / n for n in size)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([grid_x, grid_y]).expand(len(images), -1, -1, -1)

    dataset = open_dataset(tiny_dataset, "train")
    cells, (parts,) = foreground_partitions([_SplitNet(32)], coordinates, dataset, 64, max_images=6)
    assert parts.unique().tolist() == [0, 1]
    assert torch.equal(parts, (cells[:, 0] > 0.5).long())
