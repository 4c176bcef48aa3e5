"""Train: a dataset or a plain folder of images -> a run folder (config, log, checkpoints).

Where there are no foreground masks, they are computed first from the images alone
(:mod:`partdiscovery.foreground`), written beside the run (``RUN/masks``) and reused on resume.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from partdiscovery.config import Config
from partdiscovery.errors import ConfigError, PartDiscoveryError


def dataset_inputs(data: str | None) -> list:
    """The user's input folders of a ``--data`` argument, as :mod:`partdiscovery.utils.outputs` takes them
    (an output is never written inside them)."""
    from partdiscovery.data import dataset_root

    return [(dataset_root(data) if data else None, "dataset folder")]


def training_dataset(
    cfg: Config,
    data: str | None,
    out: str | Path,
    images: str | None = None,
    masks: str | None = None,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    keep_background_setting: bool = False,
    split: str = "train",
):
    """The training split (``split``) to train on, the config to train with, and what ``run_info.json`` should
    record about the masks.

    Masks, in order of precedence: ``masks`` (a folder of ``<id>.png``; automatic if ``partdiscovery masks``
    made it, :func:`_passed_masks`), the part folder's own
    ``masks/``, else automatic masks computed from the images alone (:mod:`partdiscovery.foreground`)
    into ``OUT/masks``, reused on ``--resume``. With automatic masks the model also learns a background
    channel (``model.learned_background``, unless ``keep_background_setting``), so that ``predict``
    works on raw photos without masks.

    Returns:
        ``(dataset, cfg, info)``.
    """
    from partdiscovery.data import open_dataset
    from partdiscovery.foreground.folder import MANIFEST as MASKS_MANIFEST
    from partdiscovery.foreground.folder import check_enough_images, masks_record, write_mask_folder
    from partdiscovery.runs import RunFolder
    from partdiscovery.segmenter import resolve_device
    from partdiscovery.utils.distributed import main_first, process_device, setup
    from partdiscovery.utils.threads import available_cpus

    if (data is None) == (images is None):
        raise PartDiscoveryError("give exactly one of --data DATASET or --images FOLDER")
    data = part_folder_path(data)
    if masks is not None:
        return _with_masks(data, images, split, masks), *_passed_masks(cfg, masks, keep_background_setting)
    root = Path(data) if data is not None else None
    if root is not None:
        if not (root.is_dir() and (root / "images").is_dir() and not (root / "masks").is_dir()):
            dataset = open_dataset(data, split)
            given = dataset.masks_dir
            return dataset, cfg, {"masks": {"source": "given", "folder": str(given) if given else str(data)}}
    paths = _image_paths(data, images, split)

    # No masks anywhere: make them from the images (fitted on this very collection), then train.
    if cfg.foreground.rounds > 1 and keep_background_setting and not cfg.model.learned_background:
        raise ConfigError(
            "foreground.rounds=2 makes the second masks from the first run's learned background: "
            "it needs model.learned_background=true"
        )
    check_enough_images(paths, root / "images" if root is not None else Path(images))  # before the run folder
    # Under torchrun the main process makes the masks and the others wait for them (one writer, no repeated work).
    dev = process_device(resolve_device(device))
    main = setup(dev).is_main
    if main:
        RunFolder(Path(out)).prepare(resume, overwrite)  # refuse to clobber a run before the slow part
    if cfg.train.threads > 0:  # φ runs here, before the trainer would set the threads
        import torch

        torch.set_num_threads(cfg.train.threads)
    mask_dir = Path(out) / "masks"
    fg = cfg.foreground
    source = root / "images" if root is not None else Path(images)
    quiet = quiet or not main
    if not quiet and not (resume and (mask_dir / MASKS_MANIFEST).is_file()):  # else "reusing" is said below
        print(
            f"no foreground masks for {source}: computing them from the images ({fg.coarse} + {fg.refine}, "
            f"fitted on these {len(paths)} images) into {mask_dir}",
            file=sys.stderr,
            flush=True,
        )
    workers = cfg.train.threads if cfg.train.threads > 0 else available_cpus()  # images masked at once
    manifest = main_first(
        lambda: write_mask_folder(
            paths,
            mask_dir,
            fg,
            dev,
            progress=not quiet,
            keep_existing=resume,
            workers=workers,
            replace_other=overwrite and not resume,
        )
    )
    if not quiet and manifest["reused"]:
        made_for = manifest.get("ids")
        why = (
            "the run started on them; they were made with another foreground config"
            if manifest["config_differs"]
            else "the run started on them; they were made for more images"
            if isinstance(made_for, list) and len(made_for) != len(paths)
            else "same images and foreground config"
        )
        print(f"reusing the masks in {mask_dir} ({why})", file=sys.stderr)
    elif not quiet and manifest["kept_from_interrupted_call"]:
        print(
            f"kept the {manifest['kept_from_interrupted_call']} masks an interrupted call wrote",
            file=sys.stderr,
        )
    made = manifest.get("config") or {}  # reused masks: how they were made, not this call's foreground config
    approach = f"{made.get('coarse', fg.coarse)}+{made.get('refine', fg.refine)}"
    return (
        _with_masks(data, images, split, mask_dir),
        _with_learned_background(cfg, keep_background_setting),
        {"masks": masks_record(mask_dir, approach, manifest, rounds=fg.rounds)},
    )


def _with_learned_background(cfg: Config, keep_background_setting: bool) -> Config:
    """``cfg`` with ``model.learned_background`` on, for automatic masks (unless the user set it), so that
    ``predict`` finds the object on photos without masks.

    Its loss trains f's backbone and decoder too, and on automatic masks that helps the parts: on the validation
    splits single runs without the channel scored -1.3 / +1.1 / -5.3 FG-NMI on CCP / PASCAL-Person / ade_chairs, and
    with the channel's gradient kept out of f (its own classifier row only) -1.8 / +0.9 / -5.3, its foreground IoU
    falling from 76 / 64 / 57 to 59 / 53 / 36 (BENCHMARKS.md, "The learned background's gradient")."""
    if keep_background_setting or cfg.model.learned_background:
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, learned_background=True))


def _passed_masks(cfg: Config, masks: str | Path, keep_background_setting: bool) -> tuple[Config, dict]:
    """The config and ``run_info`` record for a ``--masks`` folder. A folder that ``partdiscovery masks`` made
    (it holds its manifest) is automatic masks, trained like the masks ``train`` makes itself: a learned
    background (unless ``keep_background_setting``) and the restarts' eroded candidates."""
    from partdiscovery.foreground.folder import MANIFEST

    manifest = Path(masks) / MANIFEST
    if not manifest.is_file():
        return cfg, {"masks": {"source": "given", "folder": str(masks)}}
    cfg = _with_learned_background(cfg, keep_background_setting)
    return cfg, {"masks": {"source": "automatic", "folder": str(masks), "manifest": str(manifest)}}


def run_training(
    cfg: Config,
    data: str | None,
    out: str | Path,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    split: str = "train",
    images: str | None = None,
    masks: str | None = None,
    keep_background_setting: bool = False,
) -> dict:
    """Train ``cfg`` on a dataset (``data``) or a plain folder of images (``images``) into ``out``;
    foreground masks are computed first where there are none (:func:`training_dataset`).

    With ``train.restarts`` > 1, trains that many runs from consecutive seeds and keeps the one whose parts
    are most consistent across the training images (:mod:`partdiscovery.workflows.restarts`); on automatic
    masks some runs learn their parts from the masks' inside only (``train.restarts_mask_erosion``); on given
    masks, with ``train.restarts_temperature`` some train with that contrastive temperature.

    With ``foreground.rounds`` = 2 and masks made here, trains twice, the second time on masks from the first
    run's learned background, and keeps the better run (:mod:`partdiscovery.workflows.rounds`).

    Returns the run's training summary (``train_summary.json``)."""
    from partdiscovery.runs import RunFolder
    from partdiscovery.training.checks import check_config
    from partdiscovery.utils.distributed import env_info
    from partdiscovery.utils.outputs import first_missing

    check_config(cfg)  # registered names, before any work
    data = part_folder_path(data)
    inputs = dataset_inputs(data) + ([(Path(images), "image folder")] if images else [])
    RunFolder(Path(out)).check(resume, overwrite, inputs=inputs)  # before reading any data
    created = first_missing(Path(out))
    try:
        return _train(
            cfg, data, out, device, resume, overwrite, quiet, split, images, masks, keep_background_setting
        )
    except BaseException:
        # Refused before anything was written (a corrupt image while making masks): no folder is left behind. By the
        # main process only, and under the folder's lock: another training that made the folder after this call's
        # check holds it (and its lock and marker are its own).
        if created is not None and env_info().is_main:
            _remove_unwritten_run(Path(out), created)
        raise


def _remove_unwritten_run(out: Path, created: Path) -> None:
    """:func:`~partdiscovery.utils.outputs.remove_if_unwritten` under the run folder's lock, if no other call holds
    it (a training that began meanwhile has written only its lock and marker yet, and they are its)."""
    from partdiscovery.utils.outputs import lock_folder, remove_if_unwritten

    if not out.is_dir():
        return
    try:
        lock = lock_folder(out, "training into this run folder")
    except PartDiscoveryError:
        return
    try:
        remove_if_unwritten(out, created)
    finally:
        lock.release()


def _train(
    cfg: Config,
    data: str | None,
    out: str | Path,
    device: str,
    resume: bool,
    overwrite: bool,
    quiet: bool,
    split: str,
    images: str | None,
    masks: str | None,
    keep_background_setting: bool,
) -> dict:
    """:func:`run_training` once ``out`` is checked."""
    from partdiscovery.segmenter import resolve_device
    from partdiscovery.utils.distributed import process_device

    dataset, cfg, info = training_dataset(
        cfg, data, out, images, masks, device, resume, overwrite, quiet, keep_background_setting, split
    )
    if info["masks"].get("rounds", 1) > 1:
        from partdiscovery.workflows.rounds import train_two_rounds

        return train_two_rounds(
            cfg,
            dataset,
            info,
            out,
            _image_paths(data, images, split),
            lambda masks: _with_masks(data, images, split, masks),
            lambda cfg, dataset, run, info: _train_one(
                cfg, dataset, run, device, resume, overwrite, quiet, info
            ),
            process_device(resolve_device(device)),
            resume,
            progress=not quiet,
        )
    return _train_one(cfg, dataset, out, device, resume, overwrite, quiet, info)


def part_folder_path(data: str | None) -> str | None:
    """A part folder's spec as its plain path (``folder:PATH`` -> ``PATH``), so that whether it has ``masks/`` is
    judged on the folder itself; other specs unchanged."""
    from partdiscovery.data import dataset_root
    from partdiscovery.data.part_folder import is_part_folder

    if data is None or not is_part_folder(data):
        return data
    return str(dataset_root(data))


def _image_paths(data: str | None, images: str | None, split: str) -> list[Path]:
    """The images that automatic masks are made for, and fitted on: a part folder's training split (``split``:
    with ``--holdout-val`` the validation images are neither masked nor seen by the mask model), or a plain
    folder's."""
    from partdiscovery.data.part_folder import list_images, split_image_paths

    return split_image_paths(Path(data), split) if data is not None else list_images(images)


def _with_masks(data: str | None, images: str | None, split: str, masks: Path):
    """The training dataset of ``data`` (a part folder, at ``split``) or ``images`` with the masks of ``masks``."""
    from partdiscovery.data import ImageFolderDataset, PartFolderDataset

    return (
        PartFolderDataset(data, split, masks=masks) if data is not None else ImageFolderDataset(images, masks)
    )


def _train_one(
    cfg: Config, dataset, out: str | Path, device: str, resume: bool, overwrite: bool, quiet: bool, info: dict
) -> dict:
    """One training into ``out``: the best of ``train.restarts`` candidates, or a single run."""
    from partdiscovery.segmenter import resolve_device
    from partdiscovery.training import Trainer, create_method
    from partdiscovery.utils.seed import seeded
    from partdiscovery.workflows.restarts import check_resume_kind

    if resume:
        check_resume_kind(Path(out), cfg)
    if cfg.train.restarts > 1:
        from partdiscovery.workflows.restarts import train_with_restarts

        erosion, temperature = cfg.train.restarts_mask_erosion, cfg.train.restarts_temperature
        automatic = info["masks"]["source"] == "automatic"
        variants = []
        if automatic and erosion > 0:
            variants.append([f"loss.mask_erosion={erosion}"])
        # Given masks only: on automatic masks the runs at 0.5 scored lower and R² kept them anyway (config.py).
        # Equal to loss.temperature, the candidates would not differ.
        if not automatic and temperature not in (0, cfg.loss.temperature):
            variants.append([f"loss.temperature={temperature}"])
        return train_with_restarts(
            cfg,
            dataset,
            out,
            resolve_device(device),
            resume,
            overwrite,
            progress=not quiet,
            info=info,
            variants=variants,
        )
    with seeded(cfg.train.seed):
        trainer = Trainer(
            create_method(cfg),
            cfg,
            dataset,
            out,
            device=resolve_device(device),
            resume=resume,
            overwrite=overwrite,
            progress=not quiet,
            info=info,
        )
        return trainer.fit()
