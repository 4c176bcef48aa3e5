"""Two rounds of automatic masks (``foreground.rounds`` = 2), and a label-free choice between them.

A run trained on automatic masks learns the collection's background, and masks made from it (``masks
--from-run``, :mod:`partdiscovery.foreground.distill`) are better than the first ones on the validation
images (IoU 74.9 -> 80.6 on CCP, 61.6 -> 68.1 on PASCAL-Person, 52.8 -> 52.8 on ADE20K chairs). Parts trained
on them were better on CCP and PASCAL-Person and worse on ADE20K chairs, whose second masks are no better and
differ from the first in where they err (validation, four seeds each; BENCHMARKS.md "Two rounds in one ``train``
call"). So with ``foreground.rounds`` = 2 ``train`` trains both rounds and keeps one, chosen as the restarts choose
(:mod:`partdiscovery.workflows.restarts`): the run whose parts explain more of φ's deepest layer, here over the
foreground both rounds' masks agree on, so that neither run is scored on its own masks' errors. On the
validation runs it kept the better round in 11 of 12 pairs; on the test splits it kept the second round in all five
runs, right on CCP, level on PASCAL-Person and wrong on both of ADE20K chairs' (-6.8 and -5.2 FG-NMI), where R²
rewards a candidate of the second round whose parts score low. Hence an option, off by default.

Folders: ``OUT/masks`` (first masks), ``OUT/round_1`` (a run on them), ``OUT/masks_round_2`` (masks from its
learned background), ``OUT/round_2`` (a run on those), ``OUT/rounds.json`` (the choice); the kept run's files
are copied to the top of ``OUT``. ``--resume`` reuses finished rounds, the second masks and the choice.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from partdiscovery.config import Config
from partdiscovery.data.base import PartDataset, RawSample
from partdiscovery.runs import REQUEST_FILE, RunFolder, model_config
from partdiscovery.segmenter import PartSegmenter
from partdiscovery.training.trainer import check_resume_config, check_same_images
from partdiscovery.utils.distributed import broadcast_object, env_info, main_first
from partdiscovery.utils.io import atomic_write_json
from partdiscovery.workflows.restarts import adopt, check_request, score_runs

ROUND_DIRS = ("round_1", "round_2")
SECOND_MASKS = "masks_round_2"
RECORD = "rounds.json"
CRITERION = "R² of φ's deepest layer over the foreground both rounds' masks agree on, explained by the parts"


class MaskIntersection(PartDataset):
    """``first``'s samples with the foreground that ``first`` and ``second`` (same images, same order) agree on."""

    def __init__(self, first: PartDataset, second: PartDataset) -> None:
        if first.ids != second.ids:
            raise ValueError("the two datasets must hold the same images in the same order")
        self.first, self.second = first, second
        self.root, self.split, self.ids = first.root, first.split, first.ids

    def load(self, index: int) -> RawSample:
        sample = self.first.load(index)
        return dataclasses.replace(sample, fg_mask=sample.fg_mask & self.second.load(index).fg_mask)


def choose_round(
    cfg: Config, runs: list[Path], datasets: list[PartDataset], device: torch.device, max_images: int = 120
) -> dict:
    """Score the two rounds' runs on the foreground both rounds' masks agree on (up to ``max_images``
    training images, as the restarts sample them): the record of the choice (``kept``: 1 or 2; ties keep 1)."""
    common = MaskIntersection(*datasets)
    values = score_runs(cfg, runs, common, device, max_images)
    return {
        "criterion": CRITERION,
        "images": min(len(common), max_images),
        "scores": {str(i + 1): round(v, 6) for i, v in enumerate(values)},
        "kept": 2 if values[1] > values[0] else 1,
    }


def check_finished_run(run: Path, cfg: Config, dataset: PartDataset) -> None:
    """A finished run that a resume skips must have been asked for with ``cfg`` on ``dataset``: its request
    (a run of restarts, :func:`~partdiscovery.workflows.restarts.check_request`), or its own config and
    ``run_info.json`` (a single run)."""
    if (run / REQUEST_FILE).is_file():
        check_request(run, cfg, dataset, resume=True)
        return
    check_resume_config(model_config(run), cfg, run)
    check_same_images(RunFolder(run).read_run_info(), dataset, RunFolder(run).run_info)


def train_two_rounds(
    cfg: Config,
    first_dataset: PartDataset,
    info: dict,
    out: str | Path,
    image_paths: list[Path],
    second_dataset: Callable[[Path], PartDataset],
    train: Callable[[Config, PartDataset, Path, dict], dict],
    device: torch.device,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train ``OUT/round_1`` on ``first_dataset`` (the first automatic masks), make the masks of
    ``image_paths`` again from its learned background into ``OUT/masks_round_2``, train ``OUT/round_2`` on
    ``second_dataset(that folder)``, keep the run :func:`choose_round` prefers and copy it to ``OUT``.

    Args:
        info: ``run_info.json``'s record of the first masks (``{"masks": {...}}``).
        train: trains ``(cfg, dataset, run folder, info)`` into a run folder (restarts and all) and returns
            its summary, as ``train`` does for one round.
        resume: reuse a round whose run has finished, complete second masks and a choice already made.

    Under ``torchrun`` the main process makes the second masks (the others wait, then read them), scores the
    rounds and adopts the kept one; the others return their last training's summary.

    Returns:
        The kept run's summary, with ``"rounds"``: the record of the choice.
    """
    from partdiscovery.foreground.folder import masks_record, write_mask_folder
    from partdiscovery.utils.threads import available_cpus

    out = Path(out)
    runs = [out / name for name in ROUND_DIRS]
    masks = out / SECOND_MASKS
    main = env_info().is_main  # under torchrun only the main process writes, scores and says what it does

    def say(text: str) -> None:
        if progress and main:
            print(text, file=sys.stderr, flush=True)

    def clear(folder: Path) -> None:
        if main:
            shutil.rmtree(folder, ignore_errors=True)  # ours: inside OUT

    # Whatever is trained in this call makes what follows it stale: the second masks, the second run, the choice.
    fresh = broadcast_object(not (resume and RunFolder(runs[0]).summary.is_file()))
    if main and not fresh:
        check_finished_run(runs[0], cfg, first_dataset)  # skipped: no trainer compares its settings
    if fresh:
        say(f"round 1 of 2: training on the first masks into {runs[0]}")
        train(cfg, first_dataset, runs[0], info)
        clear(masks)  # made from an earlier round 1
    say(f"round 2 of 2: masks from the learned background of {runs[0]} into {masks}")
    manifest = main_first(
        lambda: write_mask_folder(
            image_paths,
            masks,
            cfg.foreground,
            device,
            progress=progress and main,
            keep_existing=resume,
            from_run=PartSegmenter.load(runs[0], device=device, refine="none"),
            run_source=str(runs[0]),
            workers=cfg.train.threads if cfg.train.threads > 0 else available_cpus(),
        )
    )
    datasets = [first_dataset, second_dataset(masks)]
    approach = f"learned background of {runs[0]} + {cfg.foreground.refine}"
    second_info = {"masks": masks_record(masks, approach, manifest, first_round=info["masks"]["folder"])}
    if fresh or not manifest["reused"]:
        clear(runs[1])  # trained on other masks: resuming it would mix the two
        fresh = True
    fresh = broadcast_object(fresh or not (resume and RunFolder(runs[1]).summary.is_file()))
    if main and not fresh:
        check_finished_run(runs[1], cfg, datasets[1])
    last: dict = {}
    if fresh:
        say(f"round 2 of 2: training on the second masks into {runs[1]}")
        last = train(cfg, datasets[1], runs[1], second_info)
    if not main:
        return last  # the other processes' result, as for the restarts

    record_path = out / RECORD
    record = (
        None if fresh or not record_path.is_file() else json.loads(record_path.read_text(encoding="utf-8"))
    )
    if record is None:
        record = choose_round(cfg, runs, datasets, device)
        atomic_write_json(record_path, record)  # the choice is made once: a resume reuses it
    listed = ", ".join(f"round {r}: {v}" for r, v in record["scores"].items())
    say(f"rounds scored ({CRITERION}): {listed}; keeping round {record['kept']}")
    return adopt(RunFolder(runs[record["kept"] - 1]), RunFolder(out), record, key="rounds")
