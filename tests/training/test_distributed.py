"""Two gloo processes on CPU compute the same step as one process on the same global batch."""

from __future__ import annotations

import warnings

import pytest
import torch

from partdiscovery.config import load_config
from partdiscovery.data import open_dataset
from partdiscovery.runs.checkpoint import load_latest
from partdiscovery.training import Trainer, create_method
from partdiscovery.utils.seed import seed_everything
from tests.ddp import spawn

OVERRIDES = [
    "data.input_size=48",
    "model.decoder_channels=16",
    "model.pretrained=false",
    "model.freeze_bn=true",
    "train.batch_size=4",
    "train.steps=1",
    "train.checkpoint_every=1",
    "train.log_every=1",
    "optim.optimizer=sgd",
    "optim.lr=1.0",
    "optim.backbone_lr=1.0",
    "optim.momentum=0.0",
    "optim.grad_clip=0",
    "optim.schedule=constant",
    "loss.usage=1",
    "loss.usage_floor=1",  # tau = an even share: active on a random net, so its gather across processes is tested
]


def _train(data: str, out: str) -> None:
    warnings.simplefilter("ignore")
    cfg = load_config("cpu", overrides=OVERRIDES)
    seed_everything(cfg.train.seed)
    torch.set_num_threads(1)
    Trainer(create_method(cfg), cfg, open_dataset(data, "train"), out, progress=False).fit()


def _worker(rank: int, data: str, out: str) -> None:
    _train(data, out)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_processes_equal_one(tiny_dataset, tmp_path):
    single, double = tmp_path / "single", tmp_path / "ddp"
    _train(str(tiny_dataset), str(single))
    spawn(_worker, 2, str(tiny_dataset), str(double))

    _, a = load_latest(single)
    _, b = load_latest(double)
    assert a["step"] == b["step"] == 1
    # One plain SGD step with lr 1 from identical weights: w' = w - grad, so equal weights = equal gradients,
    # provided the step moved them (counted against the initial weights: a step that changed nothing passes too).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = load_config("cpu", overrides=OVERRIDES)
        seed_everything(cfg.train.seed)
        initial = create_method(cfg).state_dict()
    moved = 0
    for key, value in a["model"].items():
        assert torch.allclose(value, b["model"][key], atol=1e-5, rtol=0), key
        moved += not torch.equal(value, initial[key])
    assert moved > 0
    rows_a = (single / "metrics.csv").read_text().splitlines()
    rows_b = (double / "metrics.csv").read_text().splitlines()
    assert rows_a[0] == rows_b[0]
    header = rows_a[0].split(",")
    for ra, rb in zip(rows_a[1:], rows_b[1:]):
        va, vb = dict(zip(header, ra.split(","))), dict(zip(header, rb.split(",")))
        for name in ("feature", "contrastive", "visual", "equivariance", "usage", "total"):
            assert abs(float(va[name]) - float(vb[name])) < 1e-5, name
        assert float(va["usage"]) > 0
