"""Shared fixtures: a tiny synthetic part folder, a tiny config, a tiny trained run, the shared data."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

from partdiscovery.config import Config, load_config
from partdiscovery.data.synth import generate_synthetic_dataset

# One intra-op thread by default (PARTDISCOVERY_TEST_THREADS to change it): on a 2-core machine that is
# busy with anything else, OpenMP's spinning worker threads make PyTorch 10-60x slower.
TEST_THREADS = int(os.environ.get("PARTDISCOVERY_TEST_THREADS", "1"))
torch.set_num_threads(TEST_THREADS)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY_PARTS = 3
TINY_SIZE = 48


def tiny_overrides(*extra: str) -> list[str]:
    """Overrides for a model that trains in well under a second per step on one CPU thread."""
    return [
        f"data.input_size={TINY_SIZE}",
        "train.batch_size=4",
        "train.steps=4",
        "train.log_every=1",
        "train.checkpoint_every=2",
        "model.pretrained=false",
        "model.decoder_channels=16",
        f"model.num_parts={TINY_PARTS}",
        *extra,
    ]


def make_tiny_config(*extra: str) -> Config:
    """The cpu preset shrunk to 48 px, batch 4, 4 steps, random weights; ``extra`` overrides win."""
    return load_config("cpu", overrides=tiny_overrides(*extra))


def pytest_collection_modifyitems(items):
    """The slow end-to-end tests first: with pytest-xdist's workers (``-n auto --dist loadfile``, pyproject.toml) their
    files go to a worker at the start and the other files are shared out meanwhile, instead of one worker running the
    demo's minutes alone at the end."""
    # A stable sort: the order is kept otherwise.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    """Re-apply the thread count after collection (a test module may have changed it on import)."""
    torch.set_num_threads(TEST_THREADS)


@pytest.fixture
def deterministic_mode_off():
    """torch's deterministic-algorithms mode off for the test (as in a user's program), then as it was: a test
    that checks a workflow leaves the mode as it found it must not depend on what earlier tests in its process did."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@pytest.fixture(scope="session")
def tiny_config():
    """A factory: ``tiny_config("train.steps=6", ...)`` -> :class:`Config`."""
    return make_tiny_config


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """16 synthetic 48 px images with 3 parts (13 train, 3 test) in the part folder format."""
    out = tmp_path_factory.mktemp("tiny") / "synth"
    return generate_synthetic_dataset(out, n=16, num_parts=TINY_PARTS, size=TINY_SIZE, seed=0)


def _train(dataset: Path, run_dir: Path, cfg: Config, **kwargs) -> dict:
    """Train ``cfg`` on ``dataset``'s train split into ``run_dir``; return the summary."""
    from partdiscovery.data import open_dataset
    from partdiscovery.training import Trainer, create_method

    torch.manual_seed(cfg.train.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "uses random weights (pretrained=False)"
        method = create_method(cfg)
    trainer = Trainer(
        method, cfg, open_dataset(dataset, "train"), run_dir, device="cpu", progress=False, **kwargs
    )
    return trainer.fit()


@pytest.fixture(scope="session")
def train_tiny():
    """``train_tiny(dataset, run_dir, cfg, resume=..., overwrite=...)`` -> the run's summary (CPU, quiet)."""
    return _train


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> Path:
    """A finished 2-step run folder (checkpoints at steps 1 and 2) of the tiny config."""
    run = tmp_path_factory.mktemp("tiny_run") / "run"
    _train(tiny_dataset, run, make_tiny_config("train.steps=2", "train.checkpoint_every=1"))
    return run


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real datasets); tests that need it are skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (shared evaluation data is not on this machine)")
    return SHARED_DATA
