"""workflows/restarts.py: several seeds, the most consistent run kept, resumable."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch

from partdiscovery.config import with_overrides
from partdiscovery.errors import CheckpointError, PartDiscoveryError
from partdiscovery.runs.checkpoint import checkpoint_path, list_checkpoints
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.workflows import restarts
from partdiscovery.workflows.restarts import candidate_configs, candidate_dir, candidate_variants
from partdiscovery.workflows.train import run_training


def _train(cfg, dataset, out, **kwargs) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        return run_training(cfg, str(dataset), out, "cpu", quiet=True, **kwargs)


def choice(summary: dict) -> dict:
    """The record of the choice without the call's wall time."""
    return {k: v for k, v in summary["restarts"].items() if k != "wall_s"}


def test_candidates_are_single_runs_of_consecutive_seeds(tiny_config):
    cfg = tiny_config("train.seed=5", "train.restarts=3")
    candidates = candidate_configs(cfg)
    assert [c.train.seed for c in candidates] == [5, 6, 7]
    assert all(c.train.restarts == 1 for c in candidates)
    assert candidates[0].model == cfg.model and candidates[0].loss == cfg.loss


def test_every_second_candidate_takes_a_single_variant(tiny_config):
    cfg = tiny_config("train.restarts=5")
    candidates = candidate_configs(cfg, [["loss.mask_erosion=0.01"]])
    assert [c.loss.mask_erosion for c in candidates] == [0.0, 0.01, 0.0, 0.01, 0.0]
    assert [c.train.seed for c in candidates] == [0, 1, 2, 3, 4]
    assert candidates[1].model == cfg.model
    assert candidates[1].train == dataclasses.replace(candidates[0].train, seed=1)
    assert candidate_variants(cfg, [["loss.mask_erosion=0.01"]]) == {
        1: ["loss.mask_erosion=0.01"],
        3: ["loss.mask_erosion=0.01"],
    }


def test_candidates_cycle_through_two_variants_after_the_plain_config(tiny_config):
    cfg = tiny_config("train.seed=3", "train.restarts=5", "loss.temperature=0.19")
    variants = [["loss.mask_erosion=0.01"], ["loss.temperature=0.5", "loss.usage=1"]]
    candidates = candidate_configs(cfg, variants)
    assert [(c.loss.mask_erosion, c.loss.temperature, c.loss.usage) for c in candidates] == [
        (0.0, 0.19, 0.0),
        (0.01, 0.19, 0.0),
        (0.0, 0.5, 1.0),
        (0.0, 0.19, 0.0),
        (0.01, 0.19, 0.0),
    ]
    assert list(candidate_variants(cfg, variants)) == [4, 5, 7]
    assert candidate_configs(tiny_config("train.restarts=1"), variants)[0].loss.mask_erosion == 0.0


def test_a_tie_keeps_the_lowest_seed(tmp_path, tiny_config, monkeypatch):
    """Equal scores (real ones never tie, so no training run shows it) choose the lowest seed."""
    monkeypatch.setattr(restarts, "score_runs", lambda cfg, runs, *args: [0.5] * len(runs))
    selection = restarts._choose(tiny_config(), [None] * 3, tmp_path, [4, 2, 3], 1, torch.device("cpu"), 10)
    assert selection["chosen_seed"] == 2 and selection["images"] == 3


def test_restarts_keep_the_highest_scoring_candidate(
    tmp_path, tiny_config, tiny_dataset, train_tiny, deterministic_mode_off
):
    out = tmp_path / "run"
    cfg = tiny_config("train.steps=2", "train.restarts=2")
    summary = _train(cfg, tiny_dataset, out)
    assert not torch.are_deterministic_algorithms_enabled()  # each candidate seeded, the caller's mode kept
    selection = summary["restarts"]
    scores = {int(s): v for s, v in selection["scores"].items()}
    assert sorted(scores) == [0, 1]
    chosen = selection["chosen_seed"]
    assert scores[chosen] == max(scores.values())
    # OUT is the chosen candidate: its checkpoints, config (with its seed) and a record of the choice.
    top = [p.name for p in list_checkpoints(out)]
    assert top == [p.name for p in list_checkpoints(candidate_dir(out, chosen))]
    for name in top:
        a = torch.load(out / "checkpoints" / name, weights_only=False)["model"]
        b = torch.load(candidate_dir(out, chosen) / "checkpoints" / name, weights_only=False)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert PartSegmenter.load(out, device="cpu").cfg.train.seed == chosen
    assert selection["step"] == 2 and selection["wall_s"] > 0  # chosen after the last step; the call's time
    assert "variants" not in selection  # given masks: every candidate trains alike
    assert json.loads((out / "run_info.json").read_text())["restarts"] == selection
    assert json.loads((out / "train_summary.json").read_text())["restarts"] == selection
    # A candidate is exactly the single run of its seed.
    single = tmp_path / "single"
    train_tiny(tiny_dataset, single, tiny_config("train.steps=2", f"train.seed={chosen}"))
    a = torch.load(list_checkpoints(single)[-1], weights_only=False)["model"]
    b = torch.load(list_checkpoints(out)[-1], weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_restarts_temperature_trains_every_second_candidate_at_it(tmp_path, tiny_config, tiny_dataset):
    out = tmp_path / "run"
    cfg = tiny_config("train.steps=1", "train.restarts=2", "train.restarts_temperature=0.5")
    selection = _train(cfg, tiny_dataset, out)["restarts"]
    assert selection["variants"] == {"1": ["loss.temperature=0.5"]}
    seeds = [PartSegmenter.load(candidate_dir(out, s), device="cpu").cfg for s in (0, 1)]
    assert [c.loss.temperature for c in seeds] == [cfg.loss.temperature, 0.5]
    kept = PartSegmenter.load(out, device="cpu").cfg  # the run records how the kept candidate trained
    assert kept.loss.temperature == seeds[selection["chosen_seed"]].loss.temperature


def test_restarts_temperature_equal_to_the_loss_temperature_trains_every_candidate_alike(
    tmp_path, tiny_config, tiny_dataset
):
    cfg = tiny_config("train.steps=1", "train.restarts=2")
    cfg = with_overrides(cfg, [f"train.restarts_temperature={cfg.loss.temperature}"])
    assert "variants" not in _train(cfg, tiny_dataset, tmp_path / "run")["restarts"]


def test_resume_reuses_finished_candidates_and_refuses_without_a_flag(tmp_path, tiny_config, tiny_dataset):
    out = tmp_path / "run"
    cfg = tiny_config("train.steps=2", "train.restarts=2")
    first = _train(cfg, tiny_dataset, out)
    log = candidate_dir(out, 1) / "metrics.csv"
    before = log.stat().st_mtime_ns
    # An interrupted second candidate (before the choice): resume trains it again from its checkpoint,
    # not the first one.
    (candidate_dir(out, 1) / "train_summary.json").unlink()
    (out / "restarts" / "selection.json").unlink()
    again = _train(cfg, tiny_dataset, out, resume=True)
    assert choice(again) == choice(first)
    assert (candidate_dir(out, 0) / "train_summary.json").is_file()
    assert log.stat().st_mtime_ns != before  # candidate 1 was resumed (its log rewritten)
    with pytest.raises(PartDiscoveryError, match="--overwrite|--resume"):
        _train(cfg, tiny_dataset, out)


def test_a_resume_with_other_settings_is_refused_even_where_every_candidate_finished(
    tmp_path, tiny_config, tiny_dataset
):
    """A finished candidate is skipped by a resume, so no trainer compares its settings; the workflow does."""
    out = tmp_path / "run"
    cfg = tiny_config("train.steps=2", "train.restarts=2")
    _train(cfg, tiny_dataset, out)
    (out / "restarts" / "selection.json").unlink()
    with pytest.raises(
        CheckpointError, match="train_request.json: was trained with different settings \\(loss.visual"
    ):
        _train(with_overrides(cfg, ["loss.visual=5"]), tiny_dataset, out, resume=True)
    with pytest.raises(CheckpointError, match="trained on split 'train' .* not on split 'train_minus_val'"):
        _train(cfg, tiny_dataset, out, resume=True, split="train_minus_val")
    _train(with_overrides(cfg, ["train.log_every=1"]), tiny_dataset, out, resume=True)  # allowed: logging


def test_with_self_training_only_the_chosen_candidate_self_trains(
    tmp_path, tiny_config, tiny_dataset, train_tiny, monkeypatch
):
    """The candidates are the method's runs, compared after its last step; the chosen one then self-trains, and
    is exactly the single run of its seed."""
    monkeypatch.setattr(restarts, "explained_variances", lambda nets, *a, **k: [0.1, 0.2])
    out = tmp_path / "run"
    cfg = tiny_config("train.steps=4", "train.self_train_steps=2", "train.restarts=2")
    assert restarts.choice_step_of(cfg) == 2
    assert restarts.choice_step_of(tiny_config("train.steps=4", "train.restarts=2")) == 4
    summary = _train(cfg, tiny_dataset, out)
    assert summary["restarts"]["step"] == 2 and summary["restarts"]["chosen_seed"] == 1
    assert [p.name for p in list_checkpoints(candidate_dir(out, 0))] == ["step_00000002.pt"]
    final = torch.load(checkpoint_path(out, 4), weights_only=False)["model"]
    assert int(final["teacher_step"]) == 2
    single = tmp_path / "single"
    train_tiny(tiny_dataset, single, tiny_config("train.steps=4", "train.self_train_steps=2", "train.seed=1"))
    alone = torch.load(checkpoint_path(single, 4), weights_only=False)["model"]
    assert all(torch.equal(alone[k], final[k]) for k in alone)


def test_an_early_choice_trains_only_the_chosen_candidate_on(
    tmp_path, tiny_config, tiny_dataset, train_tiny, monkeypatch
):
    scored = []

    def fake_scores(nets, *args, **kwargs):  # seed 1 scores higher; remember what was scored
        scored.append([{k: v.clone() for k, v in net.state_dict().items()} for net in nets])
        return [0.1, 0.2]

    monkeypatch.setattr(restarts, "explained_variances", fake_scores)
    out = tmp_path / "run"
    cfg = tiny_config("train.steps=4", "train.restarts=2", "train.restarts_choice_step=2")
    summary = _train(cfg, tiny_dataset, out)
    assert summary["restarts"]["step"] == 2 and summary["restarts"]["chosen_seed"] == 1
    assert summary["steps"] == 4
    # The candidates were scored at step 2; the other one stopped there, unfinished.
    for seed, state in zip((0, 1), scored[0]):
        at_2 = torch.load(checkpoint_path(candidate_dir(out, seed), 2), weights_only=False)["model"]
        assert all(torch.equal(at_2[f"net.{k}"], v) for k, v in state.items())
    assert [p.name for p in list_checkpoints(candidate_dir(out, 0))] == ["step_00000002.pt"]
    assert not (candidate_dir(out, 0) / "train_summary.json").exists()
    # The kept run is exactly the single 4-step run of seed 1.
    single = tmp_path / "single"
    train_tiny(tiny_dataset, single, tiny_config("train.steps=4", "train.seed=1"))
    a = torch.load(checkpoint_path(single, 4), weights_only=False)["model"]
    b = torch.load(checkpoint_path(out, 4), weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Interrupted after the choice: resume keeps the choice and trains only the chosen one on.
    (candidate_dir(out, 1) / "train_summary.json").unlink()
    checkpoint_path(candidate_dir(out, 1), 4).unlink()
    untouched = (candidate_dir(out, 0) / "metrics.csv").stat().st_mtime_ns
    again = _train(cfg, tiny_dataset, out, resume=True)
    assert choice(again) == choice(summary) and len(scored) == 1
    assert (candidate_dir(out, 0) / "metrics.csv").stat().st_mtime_ns == untouched
    b = torch.load(checkpoint_path(out, 4), weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A record of the choice that cannot be read is chosen again, to the same choice.
    (candidate_dir(out, 1) / "train_summary.json").unlink()
    (out / "restarts" / "selection.json").write_text('{"step": 2, "scores": ', encoding="utf-8")
    assert choice(_train(cfg, tiny_dataset, out, resume=True)) == choice(summary) and len(scored) == 2
    # Started again over the finished run (--overwrite): the same choice and run.
    assert choice(_train(cfg, tiny_dataset, out, overwrite=True)) == choice(summary)
    assert len(scored) == 3


def test_a_resume_goes_on_as_the_run_began_one_run_or_restarts(tmp_path, tiny_config, tiny_dataset):
    """Resumed with restarts, an interrupted single run was started afresh as candidates and its checkpoints replaced;
    resumed without them, a restarts run trained a new single run."""
    single, several = tmp_path / "single", tmp_path / "several"
    one = tiny_config("train.steps=4", "train.checkpoint_every=1")
    _train(one, tiny_dataset, single)
    (single / "train_summary.json").unlink()  # interrupted after its last checkpoint
    with pytest.raises(CheckpointError, match=r"different settings \(train.restarts 1 -> 2"):
        _train(with_overrides(one, ["train.restarts=2"]), tiny_dataset, single, resume=True)
    assert list_checkpoints(single)  # untouched
    cfg = tiny_config("train.steps=2", "train.restarts=2")
    _train(cfg, tiny_dataset, several)
    (several / "restarts" / "selection.json").unlink()
    with pytest.raises(
        CheckpointError, match=r"train_request.json: .*different settings \(train.restarts 2 -> 1"
    ):
        _train(with_overrides(cfg, ["train.restarts=1"]), tiny_dataset, several, resume=True)
