"""Masks for a folder of images: fit the foreground model on the folder, write ``<stem>.png`` masks.

The output folder gets a manifest (``foreground.json``: config, approach, counts, timings) written
last, so a folder with a manifest is complete; a later call with the same config and images reuses it
(``train --resume`` does not recompute masks). While masks are being written the folder holds a marker
(``foreground.partial.json``: images, config, source) instead, so a folder left by a killed call is known
as ours: the next call with the same images, config and source keeps the masks already written and makes
the rest (each mask is written atomically and the model is fitted deterministically, so the result is the
folder an uninterrupted call writes); with anything else it starts over. A folder that holds files but
neither file belongs to someone else and is never written into. With ``from_run`` the masks come from a
trained run's learned background instead of a model fitted here (:mod:`~partdiscovery.foreground.distill`).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from partdiscovery.config import ForegroundConfig
from partdiscovery.data.base import raise_problems
from partdiscovery.data.image_io import read_image
from partdiscovery.errors import DatasetError, OutputPathError
from partdiscovery.foreground.distill import mask_from_run
from partdiscovery.foreground.model import ForegroundModel
from partdiscovery.utils.distributed import env_info
from partdiscovery.utils.io import atomic_save_image, atomic_write_json
from partdiscovery.utils.moved import moved_names
from partdiscovery.utils.outputs import LOCK, MARKER, check_output_folder, writing_into
from partdiscovery.utils.progress import progress as progress_bar
from partdiscovery.utils.threads import ordered_map, torch_threads

MANIFEST = "foreground.json"
PARTIAL = "foreground.partial.json"  # present while masks are being written; see the module docstring


def check_collection(paths: Sequence[Path], folder: Path) -> None:
    """Refuse what cannot be fitted, with one line: no readable image, a single image, duplicate stems;
    several unreadable images are listed, one per line."""
    stems: dict[str, Path] = {}
    problems = []
    for path in paths:
        if path.stem in stems:
            problems.append(f"{path}: same name as {stems[path.stem].name}; masks are named <stem>.png")
        stems[path.stem] = path
    unreadable = []
    for path in paths:
        try:
            read_image(path)
        except DatasetError as e:
            unreadable.append(str(e))
    if unreadable and len(unreadable) == len(paths):
        raise DatasetError(f"{folder}: none of its {len(paths)} image file(s) can be read ({unreadable[0]})")
    raise_problems(folder, None, unreadable + problems, kind="image")
    check_enough_images(paths, folder)


def check_enough_images(paths: Sequence[Path], folder: Path) -> None:
    """Refuse a single image: the foreground model is fitted on the collection. Cheap (no image is read), so that
    ``train`` can say it before it makes a run folder."""
    if len(paths) < 2:
        raise DatasetError(
            f"{paths[0]}: is the only image in {folder}; the foreground model is fitted on the "
            "collection, so give at least 2 images of the same kind of object (or pass masks)"
        )


def _read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _manifest_matches(
    manifest: dict | None,
    out: Path,
    cfg: ForegroundConfig,
    stems: list[str],
    any_config: bool = False,
    from_run: str | None = None,
) -> dict | None:
    """``manifest`` (``out``'s, read) when it is that of a complete mask folder for ``stems`` made with ``cfg``
    from the same run (``from_run``, None: fitted on the images), else None. ``any_config`` (a resume: the masks
    the run started on) takes any config, and a folder made for more images than ``stems`` (0.24 made the masks of
    ``train --holdout-val`` for the validation images too)."""
    if manifest is None:
        return None
    ids = manifest.get("ids")
    same_images = ids == stems or (any_config and isinstance(ids, list) and set(stems) <= set(ids))
    if not same_images or not (any_config or manifest.get("config") == asdict(cfg)):
        return None
    if manifest.get("from_run") != from_run:
        return None
    if not all((out / f"{s}.png").is_file() for s in stems):
        return None
    return manifest


def _clear_other_images(
    out: Path,
    complete: dict | None,
    partial: dict | None,
    stems: list[str],
    replace: bool,
    resuming: bool = False,
) -> None:
    """Masks in ``out`` of images other than ``stems`` must not pass for theirs: a complete folder of other images'
    masks is refused (unless ``replace``), and the masks of other images that an interrupted call or a replaced
    folder left (ours: named in its manifest, ``complete``, or marker, ``partial``) are removed."""
    if complete is not None and complete.get("ids") != stems and not replace:
        ids = complete.get("ids") or []
        if resuming:  # a run's own masks: its images changed since it started
            added = sorted(set(stems) - set(ids))
            raise OutputPathError(
                f"{out}: the run's masks were made for {len(ids)} image(s); {len(added)} of this call's are new "
                f"(e.g. {added[0] if added else '?'}): resume with the images the run started on, or start it "
                "again with --overwrite"
            )
        raise OutputPathError(
            f"{out}: holds the masks of {len(ids)} other image(s) (made from {complete.get('images', '?')}); "
            "choose another output folder, or delete it first"
        )
    keep = set(stems)
    for record in (complete, partial):
        ids = (record or {}).get("ids")
        for stem in ids if isinstance(ids, list) else []:
            if isinstance(stem, str) and stem not in keep and "/" not in stem and "\\" not in stem:
                (out / f"{stem}.png").unlink(missing_ok=True)


def write_mask_folder(
    paths: Sequence[Path],
    out: str | Path,
    cfg: ForegroundConfig,
    device: str | torch.device = "cpu",
    progress: bool = True,
    fit_paths: Sequence[Path] | None = None,
    keep_existing: bool = False,
    from_run=None,
    run_source: str | None = None,
    workers: int = 1,
    replace_other: bool = False,
) -> dict:
    """Fit the foreground model on ``fit_paths`` (default ``paths``) and write ``OUT/<stem>.png`` masks
    (0/255, the size of each image) for every image of ``paths``.

    Args:
        keep_existing: reuse a complete folder of masks of the same images (or of more: 0.24 made a
            ``--holdout-val`` run's masks for the validation images too) even if it was made with another config
            (a resumed run must go on training on the masks it started with, e.g. after an upgrade changed a
            default; ``config_differs`` in the result says so).
        from_run: a :class:`~partdiscovery.segmenter.PartSegmenter` with a learned background: the masks
            come from it (:func:`~partdiscovery.foreground.distill.mask_from_run`) and nothing is fitted.
        run_source: where ``from_run`` was loaded from (recorded in the manifest; a folder made from
            another run is not reused).
        workers: images masked at once, on threads (GrabCut and φ release the GIL); the masks are the same
            whatever the number (each depends on its image and the fitted model only).
        replace_other: a complete folder of masks of *other* images (another folder, or images added or removed)
            is replaced (its masks removed first) instead of refused (``train --overwrite``: the run is replaced).

    Returns:
        The manifest (also written to ``OUT/foreground.json``); ``reused`` is True when a complete
        folder of masks made with the same config (or, with ``keep_existing``, any config) and images was
        found and nothing was recomputed; ``kept_from_interrupted_call`` counts the masks an interrupted call
        with the same images, config and source had written (kept, not recomputed).
    """
    out = Path(out)
    paths = [Path(p) for p in paths]
    check_output_folder(out, [(paths[0].parent, "image folder")] if paths else [], "mask folder")
    # The processes of one torchrun job come here one after the other (main_first) and wait their turn.
    with writing_into(out, "writing masks into this folder", "mask folder", wait=env_info().world_size > 1):
        return _write_mask_folder(
            paths,
            out,
            cfg,
            device,
            progress,
            fit_paths,
            keep_existing,
            from_run,
            run_source,
            workers,
            replace_other,
        )


def _write_mask_folder(
    paths: list[Path],
    out: Path,
    cfg: ForegroundConfig,
    device: str | torch.device,
    progress: bool,
    fit_paths: Sequence[Path] | None,
    keep_existing: bool,
    from_run,
    run_source: str | None,
    workers: int,
    replace_other: bool,
) -> dict:
    """:func:`write_mask_folder` under the folder's lock."""
    folder = paths[0].parent if paths else out
    stems = [p.stem for p in paths]
    run_source = None if from_run is None else str(run_source)
    # Read once: each is rewritten below.
    complete, interrupted = _read_json(out / MANIFEST), _read_json(out / PARTIAL)
    manifest = _manifest_matches(complete, out, cfg, stems, any_config=keep_existing, from_run=run_source)
    if manifest is not None:
        return manifest | {"reused": True, "config_differs": manifest.get("config") != asdict(cfg)}
    ours = (out / MANIFEST).is_file() or (out / PARTIAL).is_file()
    if any(p.name != LOCK for p in out.iterdir()) and not ours:
        other = (_read_json(out / MARKER) or {}).get("kind")
        held = (
            f"holds a partdiscovery {other}, not masks"
            if other
            else "holds files not written by partdiscovery masks"
        )
        raise DatasetError(f"{out}: {held}; choose another output folder")
    _clear_other_images(out, complete, interrupted, stems, replace_other, resuming=keep_existing)
    check_collection(paths, folder)
    # The same images, config and source as an interrupted call: keep what it wrote (a different config
    # makes other masks, so with one the folder is written anew).
    marker = {"ids": stems, "config": asdict(cfg), "from_run": run_source}
    done = set()
    if interrupted is not None and {k: interrupted.get(k) for k in marker} == marker:
        done = {s for s in stems if (out / f"{s}.png").is_file()}
    empty = [s for s in (interrupted or {}).get("empty", []) if s in done]
    started = time.perf_counter()
    fit_on = list(fit_paths) if fit_paths is not None else paths
    if from_run is None:
        model = ForegroundModel.fit(
            [lambda p=p: read_image(p) for p in fit_on], cfg, device=device, progress=progress
        )
        predict, coarse = model.predict, model.coarse.summary()
    else:

        def predict(image: Image.Image) -> np.ndarray:
            return mask_from_run(from_run, np.array(image.convert("RGB")), cfg)

        fit_on, coarse = [], {"approach": "learned background of a trained run", "run": run_source}
    fit_s = time.perf_counter() - started
    if not done:  # masks of another config or source must not pass for this call's after an interruption
        for stem in stems:
            (out / f"{stem}.png").unlink(missing_ok=True)
    # The marker goes in before the manifest goes out, so that the folder is known as ours throughout.
    atomic_write_json(out / PARTIAL, marker | {"empty": empty})
    (out / MANIFEST).unlink(missing_ok=True)  # an interrupted rewrite must not look complete
    todo = [p for p in paths if p.stem not in done]
    predict_started = time.perf_counter()

    def write(path: Path, mask: np.ndarray) -> None:
        if not mask.any():
            # Training refuses empty masks; the whole image is the honest "no idea" answer.
            empty.append(path.stem)
            atomic_write_json(out / PARTIAL, marker | {"empty": empty})  # a resumed call must still report it
            mask = np.ones_like(mask)
        atomic_save_image(out / f"{path.stem}.png", Image.fromarray(mask.astype(np.uint8) * 255, mode="L"))

    # Workers start at the first mask asked for, inside the block: one PyTorch thread each (torch_threads says why);
    # closing: an error while writing stops them at once.
    masks = ordered_map(lambda p: (p, predict(read_image(p))), todo, workers)
    with torch_threads(1 if workers > 1 else 0), closing(masks):
        for path, mask in progress_bar(
            masks, "foreground: masks", enabled=progress, total=len(todo), unit="img"
        ):
            write(path, mask)
    if empty:
        warnings.warn(
            f"no foreground found in {len(empty)} image(s) (e.g. {empty[0]}); their masks cover the whole image",
            stacklevel=2,
        )
    predict_s = time.perf_counter() - predict_started
    manifest = {
        "images": str(folder),
        "ids": stems,
        "count": len(paths),
        "fitted_on": len(fit_on),
        "config": asdict(cfg),
        "coarse": coarse,
        "from_run": run_source,
        "empty_masks_replaced_by_whole_image": [s for s in stems if s in set(empty)],
        "fit_s": round(fit_s, 2),
        "ms_per_image": round(1000 * predict_s / max(1, len(todo)), 1),
        "workers": workers,
        "kept_from_interrupted_call": len(done),
    }
    atomic_write_json(out / MANIFEST, manifest)
    (out / PARTIAL).unlink(missing_ok=True)
    return manifest | {"reused": False, "config_differs": False}


def masks_record(folder: Path, approach: str, manifest: dict, **more) -> dict:
    """What a run records of the automatic masks it trained on (``run_info.json``, ``"masks"``): the folder that
    :func:`write_mask_folder` filled, its ``manifest`` (as returned), how they were made, and ``more``."""
    return {
        "source": "automatic",
        "folder": str(folder),
        "approach": approach,
        "manifest": str(folder / MANIFEST),
        "reused": manifest["reused"],
        "empty_masks_replaced_by_whole_image": len(manifest["empty_masks_replaced_by_whole_image"]),
        **more,
    }


# moved in 0.24 to the data layer, where predict's image folders are read too
__getattr__ = moved_names(__name__, {"list_images": "partdiscovery.data.part_folder"})
