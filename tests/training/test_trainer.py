"""The trainer: run folder contents, checkpoints, exact resume, fallbacks and failure modes."""

from __future__ import annotations

import csv
import json
import shutil
import warnings

import pytest
import torch
import yaml

from partdiscovery.config import config_from_dict, with_overrides
from partdiscovery.data import open_dataset
from partdiscovery.errors import CheckpointError, ConfigError, PartDiscoveryError
from partdiscovery.runs.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
)
from partdiscovery.training import ContrastiveReconstruction, create_method
from partdiscovery.training.trainer import Trainer, TrainingDivergedError

LOSSES = {"feature", "contrastive", "visual", "equivariance", "total"}


@pytest.fixture(scope="module")
def four_step_run(tiny_dataset, tmp_path_factory, tiny_config, train_tiny):
    """4 steps with a checkpoint after each: (run folder, summary, config)."""
    cfg = tiny_config("train.steps=4", "train.checkpoint_every=1")
    run = tmp_path_factory.mktemp("trainer") / "run"
    summary = train_tiny(tiny_dataset, run, cfg)
    return run, summary, cfg


def interrupted_copy(run, tmp_path):
    """A copy of the finished ``run`` in ``tmp_path/copy`` without its summary: a run to resume."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "train_summary.json").unlink()
    return copy


def test_run_folder_contents(four_step_run, tiny_dataset):
    run, summary, cfg = four_step_run
    for name in ("config.yaml", "metrics.csv", "run_info.json", "train_summary.json"):
        assert (run / name).is_file(), name
    assert config_from_dict(yaml.safe_load((run / "config.yaml").read_text())) == cfg
    stored = json.loads((run / "train_summary.json").read_text())
    assert stored == summary
    for key in ("steps", "batch_size", "input_size", "wall_s", "images_per_s", "peak_rss_mb", "final_losses"):
        assert key in stored, key
    assert (stored["steps"], stored["batch_size"], stored["input_size"]) == (4, 4, 48)
    assert stored["wall_s"] > 0 and stored["images_per_s"] > 0 and stored["peak_rss_mb"] > 10
    assert set(stored["final_losses"]) == LOSSES and stored["finite"] is True
    assert all(stored[f"loss_{k}"] == v for k, v in stored["final_losses"].items())
    info = json.loads((run / "run_info.json").read_text())
    assert {"git_sha", "version", "torch", "dataset", "device"} <= set(info) and info["device"] == "cpu"
    # The training ids, sorted, last (thousands of them would bury the rest of the record)
    assert list(info)[-1] == "ids" and info["ids"] == sorted(open_dataset(tiny_dataset, info["split"]).ids)
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert LOSSES | {"lr", "elapsed_s"} <= set(rows[0])
    assert float(rows[-1]["total"]) == pytest.approx(stored["final_losses"]["total"], rel=1e-6)
    # Poly schedule: each row holds the rate its step trained at (it was the next step's: the first row below
    # the configured rate and the last 0), from the configured rate down towards 0.
    head_lr, power = cfg.optim.lr, cfg.optim.poly_power
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == pytest.approx([head_lr * (1 - s / 4) ** power for s in range(4)], rel=1e-6)


def test_checkpoints_are_pruned_safe_and_self_describing(four_step_run):
    run, _, cfg = four_step_run
    ckpts = list_checkpoints(run)
    assert [p.name for p in ckpts] == ["step_00000004.pt", "step_00000003.pt"]  # newest first, 2 kept
    payload = torch.load(ckpts[0], map_location="cpu", weights_only=True)
    assert payload["step"] == 4 and payload["format_version"] == 1
    assert config_from_dict(payload["config"]) == cfg
    assert {"model", "optimizer", "schedule", "git_sha", "version"} <= set(payload)
    assert any(k.startswith("net.backbone.") for k in payload["model"])
    assert not any(k.startswith("phi.") for k in payload["model"])  # φ is rebuilt, never stored
    assert not list(run.glob("**/*.tmp"))


def test_a_finished_run_is_not_overwritten(four_step_run, tiny_dataset, train_tiny):
    run, _, cfg = four_step_run
    before = (run / "train_summary.json").read_text()
    with pytest.raises(PartDiscoveryError, match="--overwrite"):
        train_tiny(tiny_dataset, run, cfg)
    assert (run / "train_summary.json").read_text() == before
    assert len(list_checkpoints(run)) == 2


def test_an_unfinished_run_needs_resume_or_overwrite(four_step_run, tiny_dataset, tmp_path, train_tiny):
    run, _, cfg = four_step_run
    copy = interrupted_copy(run, tmp_path)
    with pytest.raises(PartDiscoveryError, match="--resume"):
        train_tiny(tiny_dataset, copy, cfg)


def test_resume_reproduces_an_uninterrupted_run(tiny_dataset, tmp_path, tiny_config, train_tiny):
    cfg = tiny_config("train.steps=6", "train.checkpoint_every=3")
    run = tmp_path / "run"
    train_tiny(tiny_dataset, run, cfg)
    straight = torch.load(checkpoint_path(run, 6), weights_only=True)
    rows_before = (run / "metrics.csv").read_text().splitlines()

    # Interrupt after step 3: only the step-3 checkpoint survives.
    checkpoint_path(run, 6).unlink()
    (run / "train_summary.json").unlink()
    torch.manual_seed(12345)  # a different random init, which the checkpoint must overwrite
    summary = train_tiny(tiny_dataset, run, cfg, resume=True)
    resumed = torch.load(checkpoint_path(run, 6), weights_only=True)

    assert summary["steps_this_session"] == 3
    assert straight["model"].keys() == resumed["model"].keys()
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert straight["schedule"] == resumed["schedule"]
    rows_after = (run / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows_after] == ["step", "1", "2", "3", "4", "5", "6"]
    # Same learning rates and losses (all but the wall-clock column) as the uninterrupted run.
    assert [r.split(",")[1:-1] for r in rows_after] == [r.split(",")[1:-1] for r in rows_before]


def test_stop_at_pauses_with_a_checkpoint_and_resume_finishes_the_same_run(
    four_step_run, tiny_dataset, tmp_path
):
    """``fit(stop_at=k)`` is a pause: a checkpoint at step k, no summary, and ``resume`` ends exactly as
    the uninterrupted run (the restarts' early choice relies on it)."""
    straight_run, _, cfg = four_step_run
    run = tmp_path / "run"
    torch.manual_seed(cfg.train.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        method = create_method(cfg)
    paused = Trainer(method, cfg, open_dataset(tiny_dataset, "train"), run, progress=False).fit(stop_at=2)
    assert paused["stopped_at"] == 2 and paused["steps_this_session"] == 2
    assert sorted(p.name for p in list_checkpoints(run)) == ["step_00000001.pt", "step_00000002.pt"]
    assert not (run / "train_summary.json").exists()
    # A pause at or before the newest checkpoint trains nothing.
    assert train_tiny_fit(cfg, tiny_dataset, run, stop_at=2)["steps_this_session"] == 0
    summary = train_tiny_fit(cfg, tiny_dataset, run)
    assert summary["steps_this_session"] == 2 and "stopped_at" not in summary
    assert (run / "train_summary.json").is_file()
    a = load_checkpoint(checkpoint_path(straight_run, 4))["model"]
    b = load_checkpoint(checkpoint_path(run, 4))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def train_tiny_fit(cfg, dataset, run, stop_at=None) -> dict:
    """Resume ``run`` with a fresh method; seeded as the run, since the tiny config's φ is random and not
    in the checkpoint (a pretrained φ is the same whatever the seed)."""
    torch.manual_seed(cfg.train.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        method = create_method(cfg)
    trainer = Trainer(method, cfg, open_dataset(dataset, "train"), run, resume=True, progress=False)
    return trainer.fit(stop_at=stop_at)


def test_resume_from_a_corrupt_newest_checkpoint(
    four_step_run, tiny_dataset, tmp_path, tiny_config, train_tiny
):
    run, _, cfg = four_step_run
    copy = interrupted_copy(run, tmp_path)
    checkpoint_path(copy, 4).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="falling back"):
        summary = train_tiny(tiny_dataset, copy, cfg, resume=True)
    assert summary["steps_this_session"] == 1
    assert load_checkpoint(checkpoint_path(copy, 4))["step"] == 4
    # Resuming with another model is refused.
    (copy / "train_summary.json").unlink()
    with pytest.raises(CheckpointError, match="different settings \\(model.num_parts 3 -> 5\\)"):
        train_tiny(tiny_dataset, copy, tiny_config("train.steps=4", "model.num_parts=5"), resume=True)


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
    tiny_dataset, tmp_path, tiny_config, train_tiny, monkeypatch
):
    original = ContrastiveReconstruction.training_step
    calls = {"n": 0}
    weights_at_step_2 = {}

    def sometimes_nan(self, batch, generator, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # before this step's forward pass updates BatchNorm statistics
            weights_at_step_2.update({k: v.clone() for k, v in self.state_dict().items()})
        losses = original(self, batch, generator, *args, **kwargs)
        if calls["n"] > 2:
            losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(ContrastiveReconstruction, "training_step", sometimes_nan)
    run = tmp_path / "run"
    cfg = tiny_config("train.steps=20", "train.checkpoint_every=1", "train.max_bad_steps=3")
    with (
        pytest.raises(
            TrainingDivergedError, match=r"3 consecutive.*the last good checkpoint, step_00000002.pt in"
        ),
        pytest.warns(UserWarning, match="non-finite"),
    ):
        train_tiny(tiny_dataset, run, cfg)
    assert calls["n"] == 5
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.pt", "step_00000001.pt"]
    good = load_checkpoint(checkpoint_path(run, 2))
    for key, value in weights_at_step_2.items():
        assert torch.equal(good["model"][key], value), key
    assert not (run / "train_summary.json").exists()


def test_a_run_that_diverges_from_its_first_step_says_no_checkpoint_was_written(
    tiny_dataset, tmp_path, tiny_config, train_tiny, monkeypatch
):
    original = ContrastiveReconstruction.training_step

    def always_nan(self, *args, **kwargs):
        losses = original(self, *args, **kwargs)
        losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(ContrastiveReconstruction, "training_step", always_nan)
    cfg = tiny_config("train.steps=20", "train.max_bad_steps=2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TrainingDivergedError, match="no checkpoint had been written yet"):
            train_tiny(tiny_dataset, tmp_path / "run", cfg)
    # the schedule steps with the skipped steps on purpose: torch's warning about its order is not the user's
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]


def test_a_skipped_step_leaves_no_trace_in_the_model(
    tiny_dataset, tmp_path, tiny_config, train_tiny, monkeypatch
):
    original = ContrastiveReconstruction.training_step
    calls = {"n": 0}

    def nan_images_once(self, batch, generator, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # e.g. activations that overflowed: the forward pass itself yields NaN
            batch = {**batch, "image": batch["image"] * float("nan")}
        return original(self, batch, generator, *args, **kwargs)

    monkeypatch.setattr(ContrastiveReconstruction, "training_step", nan_images_once)
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="non-finite"):
        summary = train_tiny(tiny_dataset, run, tiny_config("train.steps=3"))
    assert summary["finite"]
    state = load_checkpoint(checkpoint_path(run, 3))["model"]
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    assert not bad, f"non-finite tensors in the final checkpoint: {bad[:3]}"


def test_training_with_the_phi_feature_cache(tiny_dataset, tmp_path, tiny_config, train_tiny):
    """loss.cache_features: φ runs once per training image, and the run trains and keeps its checkpoints."""
    from partdiscovery.runs.checkpoint import list_checkpoints

    cfg = tiny_config("loss.cache_features=true", "train.keep_checkpoints=0", "train.checkpoint_every=1")
    summary = train_tiny(tiny_dataset, tmp_path / "run", cfg)
    assert summary["finite"] and summary["steps"] == 4
    assert len(list_checkpoints(tmp_path / "run")) == 4  # keep_checkpoints=0 keeps every checkpoint
    with pytest.raises(ConfigError, match="num_workers"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            create_method(tiny_config("loss.cache_features=true", "data.num_workers=1")).feature_cache()


def test_self_training_copies_f_at_its_first_step_and_trains_with_fresh_moments(
    tiny_dataset, tmp_path, tiny_config, train_tiny
):
    """The last ``train.self_train_steps`` steps: the teacher is f as it was after step ``steps - tail``, the
    log has one set of columns (the terms not computed in a phase are 0), Adam starts its moments anew."""
    cfg = tiny_config(
        "train.steps=5", "train.self_train_steps=2", "train.checkpoint_every=1", "train.keep_checkpoints=0"
    )
    run = tmp_path / "run"
    summary = train_tiny(tiny_dataset, run, cfg)
    assert summary["finite"] and summary["steps"] == 5
    at_copy = torch.load(checkpoint_path(run, 3), weights_only=True)
    final = torch.load(checkpoint_path(run, 5), weights_only=True)
    assert int(at_copy["model"]["teacher_step"]) == -1 and int(final["model"]["teacher_step"]) == 3
    # Before the copy the checkpoints hold no teacher (it would double their size).
    assert not any(k.startswith("teacher.") for k in at_copy["model"])
    for key, value in at_copy["model"].items():
        if key.startswith("net."):
            assert torch.equal(final["model"]["teacher." + key[4:]], value), key
    assert not torch.equal(final["model"]["net.classifier.weight"], at_copy["model"]["net.classifier.weight"])
    # Adam's step count: 3 after the method's steps, 1 after the first self-training step (fresh moments).
    counts = {
        step: torch.load(checkpoint_path(run, step), weights_only=True)["optimizer"]["state"]
        for step in (3, 4)
    }
    assert {float(v["step"]) for v in counts[3].values()} == {3.0}
    assert {float(v["step"]) for v in counts[4].values()} == {1.0}
    with open(run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["self_training"]) > 0 for r in rows] == [False, False, False, True, True]
    assert [float(r["feature"]) > 0 for r in rows] == [True, True, True, False, False]
    assert float(rows[3]["lr"]) == float(rows[0]["lr"])  # the schedule starts anew


TWO_ROUNDS_CHECKPOINTED = (
    "train.steps=6",
    "train.self_train_steps=4",
    "train.self_train_rounds=2",
    "train.checkpoint_every=1",
    "train.keep_checkpoints=0",
)
"""Two steps of the method, then two rounds of two self-training steps (starting at steps 2 and 4); every
checkpoint kept."""


def test_each_self_training_round_copies_f_again_and_starts_over(
    tiny_dataset, tmp_path, tiny_config, train_tiny
):
    """``train.self_train_rounds=2``: the second round's teacher is f after the first round, with fresh moments."""
    cfg = tiny_config(*TWO_ROUNDS_CHECKPOINTED)
    run = tmp_path / "run"
    train_tiny(tiny_dataset, run, cfg)
    # Checkpoint N is the state after N steps; the rounds start at steps 2 and 4.
    states = {step: torch.load(checkpoint_path(run, step), weights_only=True) for step in range(2, 7)}
    assert [int(states[step]["model"]["teacher_step"]) for step in range(2, 7)] == [-1, 2, 2, 4, 4]
    for key, value in states[4]["model"].items():
        if key.startswith("net."):
            assert torch.equal(states[3]["model"]["teacher." + key[4:]], states[2]["model"][key]), key
            assert torch.equal(states[6]["model"]["teacher." + key[4:]], value), key
    adam_steps = [
        {float(v["step"]) for v in states[step]["optimizer"]["state"].values()} for step in range(3, 7)
    ]
    assert adam_steps == [{1.0}, {2.0}, {1.0}, {2.0}]  # fresh moments at each round's first step


@pytest.mark.parametrize(
    "rounds, interrupted_after", [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5)]
)
def test_a_self_training_run_resumes_exactly(
    tiny_dataset, tmp_path, tiny_config, train_tiny, rounds, interrupted_after
):
    """One round or two: before the first copy, at each round's copy, and within a round, the resumed run is the
    uninterrupted one (the teacher is in the checkpoints; the moments are cleared only where a phase starts), and so
    is its log (with a learned background, whose column a self-training step fills too)."""
    cfg = tiny_config(
        *TWO_ROUNDS_CHECKPOINTED, f"train.self_train_rounds={rounds}", "model.learned_background=true"
    )
    run = tmp_path / "run"
    train_tiny(tiny_dataset, run, cfg)
    straight = torch.load(checkpoint_path(run, 6), weights_only=True)
    rows_before = [r.split(",")[:-1] for r in (run / "metrics.csv").read_text().splitlines()]
    for step in range(interrupted_after + 1, 7):
        checkpoint_path(run, step).unlink()
    (run / "train_summary.json").unlink()
    torch.manual_seed(12345)
    train_tiny(tiny_dataset, run, cfg, resume=True)
    resumed = torch.load(checkpoint_path(run, 6), weights_only=True)
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    rows_after = [r.split(",")[:-1] for r in (run / "metrics.csv").read_text().splitlines()]
    assert rows_after == rows_before  # the same columns in the same order (all but the wall clock)


def test_a_self_training_run_refuses_a_resume_that_changes_its_targets(
    tiny_dataset, tmp_path, tiny_config, train_tiny
):
    """The predict section (the refiner) and the in-memory image size make self-training's targets: fixed for such
    a run; a run without self-training may still change them on resume."""

    def interrupted(run, *settings):  # trained to step 4, then cut back to its step-2 checkpoint
        train_tiny(tiny_dataset, run, tiny_config("train.steps=4", "train.checkpoint_every=2", *settings))
        checkpoint_path(run, 4).unlink()
        (run / "train_summary.json").unlink()

    run = tmp_path / "run"
    interrupted(run, "train.self_train_steps=2")
    for change in ("predict.refine=guided", "data.cache_size=40"):
        with pytest.raises(CheckpointError, match=change.split("=")[0]):
            cfg = tiny_config("train.steps=4", "train.checkpoint_every=2", "train.self_train_steps=2", change)
            train_tiny(tiny_dataset, run, cfg, resume=True)
    plain = tmp_path / "plain"
    interrupted(plain)
    cfg = tiny_config(
        "train.steps=4", "train.checkpoint_every=2", "predict.refine=guided", "data.cache_size=40"
    )
    assert train_tiny(tiny_dataset, plain, cfg, resume=True)["steps"] == 4


def test_a_method_written_before_phases_trains_a_run_without_self_training(
    tiny_dataset, tmp_path, tiny_config
):
    """``feature_cache(device)`` (the protocol before 0.28) still works where a run has one phase."""

    class Older(ContrastiveReconstruction):
        def feature_cache(self, device="cpu"):
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method = Older(tiny_config())
        summary = Trainer(
            method, tiny_config(), open_dataset(tiny_dataset, "train"), tmp_path / "run", progress=False
        ).fit()
    assert summary["finite"]


# ------------------------------------------------------------------------ the run folder and the user's files
def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_users_folder_is_never_trained_into(tiny_dataset, tmp_path, tiny_config, train_tiny):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, text in (("config.yaml", "my: config\n"), ("run_info.json", "{}\n"), ("metrics.csv", "a,b\n")):
        (mine / name).write_text(text)
    before = _snapshot(mine)
    for flags in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(PartDiscoveryError, match="not written by partdiscovery"):
            train_tiny(tiny_dataset, mine, tiny_config(), **flags)
        assert _snapshot(mine) == before
    with pytest.raises(PartDiscoveryError, match="inside the dataset folder"):
        train_tiny(tiny_dataset, tiny_dataset / "run", tiny_config())
    assert not (tiny_dataset / "run").exists()


def test_overwrite_replaces_our_files_and_keeps_the_users(four_step_run, tiny_dataset, tmp_path, train_tiny):
    run, _, cfg = four_step_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "notes.txt").write_text("the user's notes")
    train_tiny(tiny_dataset, copy, cfg, overwrite=True)
    assert (copy / "notes.txt").read_text() == "the user's notes"
    assert (copy / "train_summary.json").is_file()


def test_a_refused_resume_leaves_the_run_as_it_was(
    four_step_run, tiny_dataset, tmp_path, tiny_config, train_tiny
):
    run, _, _ = four_step_run
    copy = interrupted_copy(run, tmp_path)
    before = _snapshot(copy)
    with pytest.raises(CheckpointError, match="different settings \\(model.num_parts 3 -> 5\\)"):
        train_tiny(tiny_dataset, copy, tiny_config("train.steps=4", "model.num_parts=5"), resume=True)
    assert _snapshot(copy) == before  # config.yaml is written only once the checkpoint is accepted


@pytest.mark.parametrize(
    "change",
    [
        ["train.seed=7"],
        ["optim.lr=0.1"],
        ["loss.visual=5"],
        ["train.steps=8"],
        ["data.hflip=false", "train.amp=true"],
    ],
)
def test_a_resume_with_other_training_settings_is_refused(
    four_step_run, tiny_dataset, tmp_path, tiny_config, train_tiny, change
):
    """Not only the model: a seed, a weight or a schedule of the rest of the run that the run's files do not
    say would make it another run than the one recorded."""
    run, _, cfg = four_step_run
    copy = interrupted_copy(run, tmp_path)
    before = _snapshot(copy)
    keys = [c.split("=")[0] for c in change]
    with pytest.raises(CheckpointError, match="different settings.*" + ".*".join(keys)):
        train_tiny(tiny_dataset, copy, with_overrides(cfg, change), resume=True)
    assert _snapshot(copy) == before


def test_a_resume_may_change_how_the_run_is_executed_and_logged(
    four_step_run, tiny_dataset, tmp_path, train_tiny
):
    run, _, cfg = four_step_run
    copy = interrupted_copy(run, tmp_path)
    checkpoint_path(copy, 4).unlink()  # one step left
    changed = with_overrides(cfg, ["train.threads=1", "train.log_every=1", "train.checkpoint_every=2"])
    changed = with_overrides(changed, ["predict.refine=guided"])
    assert train_tiny(tiny_dataset, copy, changed, resume=True)["steps_this_session"] == 1
    assert config_from_dict(yaml.safe_load((copy / "config.yaml").read_text())) == changed


def test_a_resume_on_another_split_is_refused(four_step_run, tiny_dataset, tmp_path, train_tiny):
    run, _, cfg = four_step_run
    copy = interrupted_copy(run, tmp_path)
    info = json.loads((copy / "run_info.json").read_text())
    assert (info["split"], info["images"]) == ("train", len(open_dataset(tiny_dataset, "train")))
    held_out = open_dataset(tiny_dataset, "train_minus_val")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        trainer = Trainer(create_method(cfg), cfg, held_out, copy, device="cpu", resume=True, progress=False)
    with pytest.raises(CheckpointError, match="trained on split 'train' .* not on split 'train_minus_val'"):
        trainer.fit()
    assert json.loads((copy / "run_info.json").read_text()) == info  # the record still says what f saw


def resume_on_changed_copy(four_step_run, tiny_dataset, tmp_path, change) -> tuple[Trainer, list[str]]:
    """A trainer resuming an interrupted copy of the four-step run on a copy of the tiny dataset that ``change``
    (``change(folder, ids)``) altered; also the original training ids."""
    run, _, cfg = four_step_run
    copy = interrupted_copy(run, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    ids = (other / "train.txt").read_text().split()
    change(other, ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        trainer = Trainer(
            create_method(cfg), cfg, open_dataset(other, "train"), copy, device="cpu", resume=True
        )
    return trainer, ids


def test_a_resume_on_other_images_of_the_same_number_is_refused(four_step_run, tiny_dataset, tmp_path):
    def rename_first(other, ids):  # the same image under another id
        for sub in ("images", "masks", "parts"):
            for p in (other / sub).glob(f"{ids[0]}.*") if (other / sub).is_dir() else []:
                p.rename(p.with_name(ids[0] + "b" + p.suffix))
        (other / "train.txt").write_text("\n".join([ids[0] + "b", *ids[1:]]) + "\n")

    trainer, ids = resume_on_changed_copy(four_step_run, tiny_dataset, tmp_path, rename_first)
    assert len(trainer.dataset) == len(ids)
    with pytest.raises(CheckpointError, match="trained on other images .*the ids differ") as refused:
        trainer.fit()
    assert f"removed: {ids[0]}; new: {ids[0]}b" in str(refused.value)


def test_a_resume_after_an_image_was_removed_names_it(four_step_run, tiny_dataset, tmp_path):
    def remove_first(other, ids):
        (other / "train.txt").write_text("\n".join(ids[1:]) + "\n")

    trainer, ids = resume_on_changed_copy(four_step_run, tiny_dataset, tmp_path, remove_first)
    with pytest.raises(CheckpointError, match=f"images\\); removed: {ids[0]}; resume with the same data"):
        trainer.fit()


def test_two_trainings_never_share_a_run_folder(tiny_dataset, tmp_path, tiny_config, train_tiny):
    from filelock import FileLock

    from partdiscovery.errors import RunLockedError
    from partdiscovery.utils.outputs import LOCK

    run = tmp_path / "run"
    run.mkdir()
    holder = FileLock(run / LOCK, timeout=0, thread_local=False)
    with holder:  # another process (a lock on another file description conflicts the same way)
        with pytest.raises(RunLockedError, match="another partdiscovery process"):
            train_tiny(tiny_dataset, run, tiny_config("train.steps=1"))
        assert sorted(p.name for p in run.iterdir()) == [LOCK]
    train_tiny(tiny_dataset, run, tiny_config("train.steps=1"))  # free again: trains


def test_stale_temporaries_are_removed_when_a_run_is_opened(
    four_step_run, tiny_dataset, tmp_path, train_tiny
):
    run, _, cfg = four_step_run
    copy = interrupted_copy(run, tmp_path)
    stale = copy / "checkpoints" / ".step_00000005.pt.k2j4h5g6.tmp"  # a checkpoint write killed midway
    stale.write_bytes(b"\0" * 4096)
    users = copy / "draft.tmp"
    users.write_text("mine")
    with pytest.warns(UserWarning, match="removed 1 temporary file"):
        train_tiny(tiny_dataset, copy, cfg, resume=True)
    assert not stale.exists() and users.exists()


def test_a_run_from_before_markers_can_be_resumed(four_step_run, tiny_dataset, tmp_path, train_tiny):
    from partdiscovery.utils.outputs import MARKER

    run, _, cfg = four_step_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / MARKER).unlink()
    (copy / "train_summary.json").unlink()
    summary = train_tiny(tiny_dataset, copy, cfg, resume=True)
    assert summary["steps_this_session"] == 0 and (copy / MARKER).is_file()


def test_resume_on_a_new_folder_starts_a_run(tiny_dataset, tmp_path, tiny_config, train_tiny):
    """A cluster job launched with --resume from its first start (and requeued later) must work."""
    summary = train_tiny(tiny_dataset, tmp_path / "new", tiny_config("train.steps=1"), resume=True)
    assert summary["steps_this_session"] == 1


# ------------------------------------------------------------------------------------------- the pieces of fit
def test_training_log_writes_every_log_every_steps_and_the_last(tmp_path, tiny_config, capsys):
    from partdiscovery.runs import RunFolder
    from partdiscovery.training.trainer import TrainingLog

    cfg = tiny_config("train.steps=5", "train.log_every=2")
    run = RunFolder(tmp_path)
    with TrainingLog(run, cfg, 0, main=True, progress=True) as log:  # stderr is no terminal: log lines
        for done in (1, 2, 3):
            log.step(done, 0.1, {"total": float(done)}, elapsed_s=0.5)
    with TrainingLog(run, cfg, 3, main=True, progress=False) as log:  # resumed: appends, no second header
        for done in (4, 5):
            log.step(done, 0.1, {"total": float(done)}, elapsed_s=0.5)
    with open(run.metrics, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["step"], r["total"]) for r in rows] == [("2", "2.0"), ("4", "4.0"), ("5", "5.0")]
    assert capsys.readouterr().err.splitlines() == ["step 2/5 total=2"]
    other = RunFolder(tmp_path / "other")
    other.path.mkdir()
    with TrainingLog(other, cfg, 0, main=False, progress=False) as log:  # not the main process: no files
        log.step(2, 0.1, {"total": 2.0}, elapsed_s=0.5)
    assert not any(other.path.iterdir())


def test_the_run_records_the_methods_config(tiny_dataset, tmp_path, tiny_config):
    """A method may complete its config (SCOPS: a learned background); the run must record that one."""
    from partdiscovery.data import open_dataset
    from partdiscovery.training import Trainer

    cfg = tiny_config("method=scops")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method = create_method(cfg)
    trainer = Trainer(method, cfg, open_dataset(tiny_dataset, "train"), tmp_path / "run")
    assert trainer.cfg.model.learned_background and not cfg.model.learned_background
    with pytest.raises(ValueError, match="not the config the method was built from"):
        Trainer(
            method,
            tiny_config("method=scops", "train.steps=9"),
            open_dataset(tiny_dataset, "train"),
            tmp_path,
        )
