"""Several runs from different seeds; keep the one whose parts mean the same thing in every image.

Which partition of the object a run settles on is decided in its first hundred steps and depends on the
seed by more than any setting tried (BENCHMARKS.md: seven seeds of one preset span 20.5-25.1 validation
FG-NMI on PASCAL-Person), and the training losses do not tell the better run (the final contrastive loss
picked the better of two runs in 8 of 17 pairs). What does tell is how well the parts explain φ's most
semantic layer *across* the collection, with one prototype per part for all images
(:func:`~partdiscovery.evaluation.consistency.explained_variance`): it needs no labels, only the training
images and their foreground masks.

Layout: the candidates train into ``OUT/restarts/seed_<S>/`` (ordinary run folders, resumable one by
one); the chosen one's files (config, log, run info, checkpoints, summary last) are then copied to ``OUT``,
so ``OUT`` loads, predicts and exports like any run. ``run_info.json`` and ``train_summary.json`` record
every candidate's score and the choice under ``"restarts"``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import torch

from partdiscovery.config import Config
from partdiscovery.data.base import PartDataset
from partdiscovery.evaluation.consistency import deepest_layer_phi, explained_variances
from partdiscovery.runs import RunFolder
from partdiscovery.runs.checkpoint import list_checkpoints
from partdiscovery.runs.folder import CONFIG_FILE, METRICS_FILE
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.training.methods import create_method
from partdiscovery.training.trainer import Trainer
from partdiscovery.utils.distributed import env_info
from partdiscovery.utils.io import atomic_write, atomic_write_json
from partdiscovery.utils.seed import seed_everything

RESTARTS_DIR = "restarts"
CRITERION = "R² of φ's deepest layer over the training foreground, explained by the parts"


def candidate_dir(out: str | Path, seed: int) -> Path:
    """Where the candidate of ``seed`` trains: ``OUT/restarts/seed_<seed>``."""
    return Path(out) / RESTARTS_DIR / f"seed_{seed}"


def candidate_configs(cfg: Config) -> list[Config]:
    """One config per candidate: seeds ``train.seed`` .. ``train.seed + restarts - 1``, each a single run."""
    return [
        dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=cfg.train.seed + i, restarts=1))
        for i in range(cfg.train.restarts)
    ]


def _copy_file(src: Path, dst: Path) -> None:
    with open(src, "rb") as fh:
        atomic_write(dst, lambda out: shutil.copyfileobj(fh, out))


def _adopt(chosen: RunFolder, run: RunFolder, selection: dict) -> dict:
    """Copy the chosen candidate's files to the top of the run (each atomically, the summary last) and
    record ``selection`` in its run info and summary; the summary."""
    for name in (CONFIG_FILE, METRICS_FILE):
        if (chosen.path / name).is_file():
            _copy_file(chosen.path / name, run.path / name)
    info = json.loads(chosen.run_info.read_text(encoding="utf-8")) if chosen.run_info.is_file() else {}
    atomic_write_json(run.run_info, {**info, "restarts": selection})
    keep = {p.name for p in list_checkpoints(chosen.path)}
    for old in list_checkpoints(run.path):  # an earlier choice's checkpoints (a resumed selection)
        if old.name not in keep:
            old.unlink()
    for ckpt in list_checkpoints(chosen.path):
        _copy_file(ckpt, run.checkpoints / ckpt.name)
    summary = {**json.loads(chosen.summary.read_text(encoding="utf-8")), "restarts": selection}
    atomic_write_json(run.summary, summary)
    return summary


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
) -> dict:
    """Train ``cfg.train.restarts`` candidates, score each on ``dataset`` without labels
    (:func:`~partdiscovery.evaluation.consistency.explained_variances` on up to ``max_images`` training
    images, read once for all candidates) and make the best the run in ``out``. ``resume`` skips finished
    candidates and resumes an interrupted one. Returns the run's summary (with ``"restarts"``: seeds, scores,
    chosen seed).
    """
    run = RunFolder(Path(out))
    main = env_info().is_main
    lock = run.lock() if main else None  # held throughout: one writer of OUT and its candidates
    try:
        if main:
            run.prepare(resume, overwrite)
        summaries = {}
        for candidate in candidate_configs(cfg):
            seed = candidate.train.seed
            folder = RunFolder(candidate_dir(out, seed))
            if resume and folder.summary.is_file():
                summaries[seed] = json.loads(folder.summary.read_text(encoding="utf-8"))
                continue
            if progress and main:
                print(
                    f"restart {seed - cfg.train.seed + 1} of {cfg.train.restarts} (seed {seed})",
                    file=sys.stderr,
                )
            seed_everything(seed)
            summaries[seed] = Trainer(
                create_method(candidate),
                candidate,
                dataset,
                folder.path,
                device=device,
                resume=resume,
                overwrite=overwrite,
                progress=progress,
                info=info,
            ).fit()
        if not main:
            return summaries[cfg.train.seed]
        phi = deepest_layer_phi(cfg.model.feature_extractor, cfg.model.pretrained, cfg.model.feature_weights)
        phi = phi.to(device)
        models = [PartSegmenter.load(candidate_dir(out, seed), device=device) for seed in summaries]
        values = explained_variances(
            [m.net for m in models], phi, dataset, cfg.data.input_size, max_images, device=models[0].device
        )
        scores = dict(zip(summaries, values))
        chosen = max(scores, key=lambda s: (scores[s], -s))  # ties: the lowest seed
        selection = {
            "criterion": CRITERION,
            "images": min(len(dataset), max_images),
            "scores": {str(s): round(v, 6) for s, v in scores.items()},
            "chosen_seed": chosen,
        }
        if progress:
            listed = ", ".join(f"seed {s}: {v:.4f}" for s, v in scores.items())
            print(f"restarts scored ({CRITERION}): {listed}; keeping seed {chosen}", file=sys.stderr)
        return _adopt(RunFolder(candidate_dir(out, chosen)), run, selection)
    finally:
        if lock is not None:
            lock.release()
