"""Several runs from different seeds; keep the one whose parts mean the same thing in every image.

Which partition of the object a run settles on is decided in its first hundred steps and depends on the
seed by more than any setting tried (BENCHMARKS.md: seven seeds of one preset span 20.5-25.1 validation
FG-NMI on PASCAL-Person), and the training losses do not tell the better run (the final contrastive loss
picked the better of two runs in 8 of 17 pairs). What does tell is how well the parts explain φ's most
semantic layer *across* the collection, with one prototype per part for all images
(:func:`~partdiscovery.evaluation.consistency.explained_variance`): it needs no labels, only the training
images and their foreground masks.

With ``train.restarts_choice_step`` the candidates are compared at that step and only the chosen one trains
on (:meth:`Trainer.fit(stop_at=...) <partdiscovery.training.Trainer.fit>` pauses a run exactly where a resume
picks it up), so the kept run is still the single run of its seed. With ``train.self_train_steps`` they are
compared after the method's last step at the latest, and only the chosen one self-trains.

The candidates may also differ in a setting: with ``variants`` (lists of overrides) the candidates cycle
through the plain config and each variant, and the same criterion chooses between the settings as between the
seeds. ``train`` uses this for settings whose worth depends on the collection, which no label tells: on masks
it made itself whether the parts should learn from the masks' rim (``train.restarts_mask_erosion``), on given
masks the contrastive temperature (``train.restarts_temperature``).

Layout: the candidates train into ``OUT/restarts/seed_<S>/`` (ordinary run folders, resumable one by
one); the choice is written to ``OUT/restarts/selection.json`` once made (a resume reuses it); the chosen
one's files (config, log, run info, checkpoints, summary last) are then copied to ``OUT``, so ``OUT`` loads,
predicts and exports like any run. ``run_info.json`` and ``train_summary.json`` record every candidate's
score and the choice under ``"restarts"``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from partdiscovery.config import Config, config_from_dict, with_overrides
from partdiscovery.data.base import PartDataset
from partdiscovery.errors import CheckpointError, ConfigError
from partdiscovery.evaluation.consistency import deepest_layer_phi, explained_variances
from partdiscovery.runs import RunFolder
from partdiscovery.runs.checkpoint import checkpoint_config, checkpoint_path, list_checkpoints, load_latest
from partdiscovery.runs.folder import CONFIG_FILE, METRICS_FILE, REQUEST_FILE
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.training.methods import create_method
from partdiscovery.training.phases import method_steps
from partdiscovery.training.trainer import Trainer, check_resume_config, check_same_images, training_images
from partdiscovery.utils.distributed import broadcast_object, env_info
from partdiscovery.utils.io import atomic_write, atomic_write_json
from partdiscovery.utils.seed import seeded

RESTARTS_DIR = "restarts"
SELECTION_FILE = "selection.json"
CRITERION = "R² of φ's deepest layer over the training foreground, explained by the parts"


def candidate_dir(out: str | Path, seed: int) -> Path:
    """Where the candidate of ``seed`` trains: ``OUT/restarts/seed_<seed>``."""
    return Path(out) / RESTARTS_DIR / f"seed_{seed}"


def candidate_configs(cfg: Config, variants: Sequence[Sequence[str]] = ()) -> list[Config]:
    """One config per candidate: seeds ``train.seed`` .. ``train.seed + restarts - 1``, each a single run.
    With ``variants`` (lists of overrides ``section.key=value``) candidate ``i`` takes the overrides of
    ``[none, *variants][i % (len(variants) + 1)]``: one variant goes to every second candidate (the 2nd,
    4th, ...), two to the 2nd, 5th, ... and the 3rd, 6th, ... . The first candidate is always the plain
    config, so a restart of one is the single run of the preset."""
    varied = candidate_variants(cfg, variants)
    configs = []
    for seed in range(cfg.train.seed, cfg.train.seed + cfg.train.restarts):
        single = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed, restarts=1))
        configs.append(with_overrides(single, varied[seed]) if seed in varied else single)
    return configs


def candidate_variants(cfg: Config, variants: Sequence[Sequence[str]] = ()) -> dict[int, list[str]]:
    """``{seed: overrides}`` of the candidates that take a variant (see :func:`candidate_configs`)."""
    cycle = [[], *map(list, variants)]
    seeds = range(cfg.train.seed, cfg.train.seed + cfg.train.restarts)
    return {seed: cycle[i % len(cycle)] for i, seed in enumerate(seeds) if cycle[i % len(cycle)]}


def choice_step_of(cfg: Config) -> int:
    """The step at which the candidates are compared: ``train.restarts_choice_step``, or the method's last step
    when that is 0 or beyond it: with ``train.self_train_steps`` only the chosen run self-trains (the candidates'
    parts are the method's; self-training each of them would cost its steps and its targets once per candidate)."""
    step, end = cfg.train.restarts_choice_step, method_steps(cfg)
    return end if step <= 0 or step >= end else step


def _earlier_choice(record: Path, step: int, seeds: list[int], resume: bool) -> dict | None:
    """The choice recorded in ``record`` by an interrupted run, when resuming and it was made among these
    ``seeds`` at this ``step``; else None (and a stale record is removed). An unreadable record (it is
    written atomically, so only an edit by hand makes one) is stale too: the candidates' checkpoints are
    there, so choosing again costs one scoring pass and gives the same choice."""
    if resume and record.is_file():
        try:
            selection = json.loads(record.read_text(encoding="utf-8"))
            if selection.get("step") == step and set(selection["scores"]) == {str(s) for s in seeds}:
                return selection
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    record.unlink(missing_ok=True)
    return None


def _has_step(folder: RunFolder, step: int) -> bool:
    return checkpoint_path(folder.path, step).is_file()


def score_runs(
    cfg: Config, runs: Sequence[Path], dataset: PartDataset, device: torch.device, max_images: int = 120
) -> list[float]:
    """R² of φ's deepest layer (``cfg``'s φ) over ``dataset``'s foreground, explained by the parts of each run
    (run folders or checkpoints; one pass over up to ``max_images`` images for all):
    :func:`~partdiscovery.evaluation.consistency.explained_variances`."""
    # A φ without pretrained weights (tests, timing) is initialised from the run's seed, not from whatever the
    # process drew before (a resume that trains fewer steps draws less): the choice is a function of the runs.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        phi = deepest_layer_phi(cfg.model.feature_extractor, cfg.model.pretrained, cfg.model.feature_weights)
    models = [PartSegmenter.load(run, device=device) for run in runs]
    return explained_variances(
        [m.net for m in models],
        phi.to(device),
        dataset,
        cfg.data.input_size,
        max_images,
        device=models[0].device,
    )


def _choose(
    cfg: Config,
    dataset: PartDataset,
    out: str | Path,
    seeds: list[int],
    step: int,
    device: torch.device,
    max_images: int,
) -> dict:
    """Score each candidate's checkpoint at ``step`` on ``dataset`` (one pass over the images for all):
    the record of the choice, with the chosen seed (the highest score; ties: the lowest seed)."""
    values = score_runs(
        cfg, [checkpoint_path(candidate_dir(out, s), step) for s in seeds], dataset, device, max_images
    )
    scores = dict(zip(seeds, values))
    chosen = max(scores, key=lambda s: (scores[s], -s))
    return {
        "criterion": CRITERION,
        "images": min(len(dataset), max_images),
        "step": step,
        "scores": {str(s): round(v, 6) for s, v in scores.items()},
        "chosen_seed": chosen,
    }


def _copy_file(src: Path, dst: Path) -> None:
    with open(src, "rb") as fh:
        atomic_write(dst, lambda out: shutil.copyfileobj(fh, out))


def adopt(chosen: RunFolder, run: RunFolder, selection: dict, key: str = "restarts") -> dict:
    """Copy the chosen run's files (a candidate's, or a round's: :mod:`~partdiscovery.workflows.rounds`) to
    the top of ``run`` (each atomically, the summary last) and record ``selection`` under ``key`` in its run
    info and summary; the summary."""
    for name in (CONFIG_FILE, METRICS_FILE):
        if (chosen.path / name).is_file():
            _copy_file(chosen.path / name, run.path / name)
    info = json.loads(chosen.run_info.read_text(encoding="utf-8")) if chosen.run_info.is_file() else {}
    atomic_write_json(run.run_info, {**info, key: selection})
    keep = {p.name for p in list_checkpoints(chosen.path)}
    for old in list_checkpoints(run.path):  # an earlier choice's checkpoints (a resumed selection)
        if old.name not in keep:
            old.unlink()
    for ckpt in list_checkpoints(chosen.path):
        _copy_file(ckpt, run.checkpoints / ckpt.name)
    summary = {**json.loads(chosen.summary.read_text(encoding="utf-8")), key: selection}
    atomic_write_json(run.summary, summary)
    return summary


def check_request(out: Path, cfg: Config, dataset: PartDataset, resume: bool) -> None:
    """Record what ``train`` was asked for in ``OUT/train_request.json`` (the config before the candidates' are
    derived from it, and :func:`~partdiscovery.training.trainer.training_images`); on ``resume``, first refuse a
    request that differs from the recorded one (:func:`~partdiscovery.training.trainer.check_resume_config`)."""
    path = out / REQUEST_FILE
    if resume and path.is_file():
        stored, recorded = _read_request(path)
        check_resume_config(recorded, cfg, path)
        check_same_images(stored, dataset, path)
    atomic_write_json(path, {"config": cfg.to_dict(), **training_images(dataset)})


def _read_request(path: Path) -> tuple[dict, Config]:
    """``OUT/train_request.json`` as read, and its config; a :class:`CheckpointError` naming it if unreadable."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return stored, config_from_dict(stored["config"])
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{path}: cannot read the run's request ({e})") from None


def check_resume_kind(out: Path, cfg: Config) -> None:
    """A resume goes on as the run began: a run begun with restarts (it wrote ``train_request.json``) is not
    resumed as one run, nor one run (its checkpoints) with restarts, which would start the candidates afresh and
    replace the run's checkpoints. :func:`~partdiscovery.training.trainer.check_resume_config` names what changed
    (``train.restarts`` and the other settings, e.g. a preset's)."""
    request = out / REQUEST_FILE
    if request.is_file():
        if cfg.train.restarts <= 1:
            check_resume_config(_read_request(request)[1], cfg, request)
    elif cfg.train.restarts > 1 and list_checkpoints(out):
        path, payload = load_latest(out)
        check_resume_config(checkpoint_config(payload, path), cfg, path)


def train_with_restarts(
    cfg: Config,
    dataset: PartDataset,
    out: str | Path,
    device: torch.device,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    info: dict | None = None,
    max_images: int = 120,
    variants: Sequence[Sequence[str]] = (),
) -> dict:
    """Train ``cfg.train.restarts`` candidates (to ``train.restarts_choice_step`` when set), score each on
    ``dataset`` without labels (:func:`~partdiscovery.evaluation.consistency.explained_variances` on up to
    ``max_images`` training images, read once for all candidates), train the best on to the last step and
    make it the run in ``out``. ``resume`` skips finished candidates, resumes an interrupted one and keeps a
    choice already made. ``variants``: lists of config overrides that the candidates cycle through (see
    :func:`candidate_configs`), so that the choice is also between settings. Returns the run's summary
    (with ``"restarts"``: step, seeds, scores, chosen seed, ``"variants"`` (``{seed: overrides}``) where
    any, and ``wall_s``, the seconds of this call).
    """
    started = time.perf_counter()
    run = RunFolder(Path(out))
    main = env_info().is_main
    lock = run.lock() if main else None  # held throughout: one writer of OUT and its candidates
    try:
        if main:
            run.prepare(resume, overwrite)
            # Finished candidates are skipped on resume, so no trainer compares their settings: the request does.
            check_request(run.path, cfg, dataset, resume)
        choice_step = choice_step_of(cfg)
        candidates = {c.train.seed: c for c in candidate_configs(cfg, variants)}
        varied = candidate_variants(cfg, variants)
        last: dict = {}  # what this process's last training returned (the other processes' result)

        def train(seed: int, stop_at: int | None, resume_candidate: bool) -> dict:
            with seeded(seed):
                return Trainer(
                    create_method(candidates[seed]),
                    candidates[seed],
                    dataset,
                    candidate_dir(out, seed),
                    device=device,
                    resume=resume_candidate,
                    overwrite=overwrite and not resume_candidate,  # the chosen one, trained on, is resumed
                    progress=progress,
                    info=info,
                ).fit(stop_at=stop_at)

        record = Path(out) / RESTARTS_DIR / SELECTION_FILE
        selection = _earlier_choice(record, choice_step, list(candidates), resume) if main else None
        selection = broadcast_object(selection)
        early = choice_step < cfg.train.steps
        for seed in candidates:
            if selection is not None and seed != selection["chosen_seed"]:
                continue  # chosen before an interruption: only the chosen one may have steps left
            folder = RunFolder(candidate_dir(out, seed))
            if resume and (folder.summary.is_file() or (early and _has_step(folder, choice_step))):
                continue
            if progress and main:
                print(
                    f"restart {seed - cfg.train.seed + 1} of {cfg.train.restarts} (seed {seed}"
                    + (f", {' '.join(varied[seed])}" if seed in varied else "")
                    + ")"
                    + (f", to step {choice_step}" if early else ""),
                    file=sys.stderr,
                )
            last = train(seed, choice_step if early else None, resume)
        if main and selection is None:
            selection = _choose(cfg, dataset, out, list(candidates), choice_step, device, max_images)
            if varied:
                selection["variants"] = {str(seed): overrides for seed, overrides in varied.items()}
            atomic_write_json(record, selection)  # the choice is made once: a resume reuses it
            if progress:
                listed = ", ".join(f"seed {s}: {v}" for s, v in selection["scores"].items())
                print(
                    f"restarts scored ({CRITERION}): {listed}; keeping seed {selection['chosen_seed']}",
                    file=sys.stderr,
                )
        chosen = broadcast_object(selection["chosen_seed"] if main else None, slow=True)  # main scored them
        folder = RunFolder(candidate_dir(out, chosen))
        if not folder.summary.is_file():  # chosen early (or interrupted at its end): train it on
            if progress and main:
                print(f"seed {chosen}: on to step {cfg.train.steps}", file=sys.stderr)
            last = train(chosen, None, True)
        if not main:
            return last
        # The kept run's own summary times its last session only; this is the whole call's.
        return adopt(folder, run, {**selection, "wall_s": round(time.perf_counter() - started, 3)})
    finally:
        if lock is not None:
            lock.release()
