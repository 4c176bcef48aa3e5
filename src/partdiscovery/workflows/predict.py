"""Predict: a model + a folder of images -> label maps and overlays a person can read."""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Sequence
from pathlib import Path

from partdiscovery.data.part_folder import PARTS_FILE
from partdiscovery.errors import InvalidArgumentError
from partdiscovery.utils.outputs import OutputFolder, writing_into

PREDICTIONS_KIND = "predictions"
"""The marker kind of every predictions folder this tool writes (``predict``, ``baseline``, the demo)."""


def prediction_folder(
    out: str | Path, files: list[str], overwrite: bool, inputs: list | None = None
) -> OutputFolder:
    """Check that ``files`` (relative paths) may be written into the predictions folder ``out``: new,
    empty, or a predictions folder of ours (then only with ``overwrite``, and never over a user's file).
    Writes nothing; returns the :class:`~partdiscovery.utils.outputs.OutputFolder` to ``claim`` and
    ``finish``."""
    folder = OutputFolder(out, PREDICTIONS_KIND)
    folder.check(overwrite, inputs=inputs or [])
    folder.refuse_foreign_files(files)
    return folder


def predict_folder(
    run: str | Path,
    images: str | Path,
    out: str | Path,
    masks: str | Path | None = None,
    batch_size: int = 8,
    device: str = "auto",
    amp: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    refine: str | None = None,
    max_side: int | None = None,
    part_names: Sequence[str] | None = None,
) -> dict:
    """Segment every image of ``images`` with the model ``run`` (run folder, checkpoint or exported file):
    ``OUT/labels/<id>.png`` (0 = background, k = part k) and ``OUT/overlays/<id>.png`` (each part in its
    palette colour with its outline, the background left as the photo, a legend; at most ``predict.max_side``
    pixels on the longer side, as the part maps were computed).

    Foreground: ``masks`` (``<stem>.png``) if given, else the model's learned background, else the whole
    image (with a warning). ``refine``: the part maps' edge refinement (default: the model's
    ``predict.refine``); ``max_side``: the size above which photos are segmented smaller (default: the model's
    ``predict.max_side``); ``part_names``: what parts 1..K depict, in order (named after looking at the report's
    galleries), for the overlays' legend and ``OUT/parts.json`` (``{"names": {"1": ...}}``, a part folder's format,
    "part k" when not named), so that the labels say what they are. Returns ``{"count", "num_parts", "labels",
    "overlays", "names"}``."""
    from PIL import Image

    from partdiscovery.data import ImageFolderDataset
    from partdiscovery.segmenter import PartSegmenter, check_whole_number
    from partdiscovery.utils.io import atomic_save_image, atomic_write_json
    from partdiscovery.viz import label_image, parts_figure

    check_whole_number(batch_size, "batch_size", 1, "images per batch, >= 1")
    if max_side is not None:
        check_whole_number(max_side, "max_side", 0, "0 (the photo's own size) or a side in pixels")
    inputs = [(images, "image folder"), (masks, "mask folder")]
    prediction_folder(out, [], overwrite, inputs)  # fail before reading anything
    dataset = ImageFolderDataset(images, masks)
    files = [f"{sub}/{i}.png" for i in dataset.ids for sub in ("labels", "overlays")] + [PARTS_FILE]
    folder = prediction_folder(out, files, overwrite, inputs)
    segmenter = PartSegmenter.load(run, device=device, amp=amp, refine=refine, max_side=max_side)
    names = name_parts(part_names, segmenter.num_parts)
    if masks is None and not segmenter.has_learned_background:
        # `masks` fits its foreground model on a folder (two images or more): the hint only for a folder.
        hint = (
            f"; for the object only, make masks first (partdiscovery masks --images {shlex.quote(str(images))} "
            "--out MASKS) and pass --masks MASKS"
            if Path(images).is_dir()
            else ""
        )
        warnings.warn(
            "no --masks given and the model has no learned background: the whole image is treated as foreground"
            + hint,
            stacklevel=2,
        )
    out = Path(out)
    with writing_into(out, "writing predictions into this folder"):
        folder = prediction_folder(
            out, files, overwrite, inputs
        )  # again: another call may have written meanwhile
        folder.claim(files)
        count = 0
        for pred in segmenter.predict_dataset(dataset, batch_size=batch_size, progress=progress):
            atomic_save_image(out / "labels" / f"{pred.id}.png", label_image(pred.parts))
            photo = Image.fromarray(pred.image)  # the photo as decoded for f: not read a second time
            image, parts = overlay_size(photo, pred.parts, segmenter.cfg.predict.max_side)
            figure = parts_figure(image, parts, segmenter.num_parts, names)
            atomic_save_image(out / "overlays" / f"{pred.id}.png", figure)
            count += 1
        # Last: a call refused at its first image (a truncated photo) has written nothing, and leaves no folder.
        atomic_write_json(out / PARTS_FILE, {"names": {str(k): name for k, name in names.items()}})
        folder.finish(files)
    return {
        "count": count,
        "num_parts": segmenter.num_parts,
        "labels": out / "labels",
        "overlays": out / "overlays",
        "names": names,
    }


def name_parts(part_names: Sequence[str] | None, num_parts: int) -> dict[int, str]:
    """``{k: name}`` for parts 1..``num_parts``: ``part_names`` in order, or "part k" without them."""
    from partdiscovery.viz import part_name

    if part_names is None:
        return {k: part_name(k) for k in range(1, num_parts + 1)}
    names = [str(name).strip() for name in part_names]
    if len(names) != num_parts or not all(names):
        raise InvalidArgumentError(
            f"part names (--part-names): the model has {num_parts} parts, so give {num_parts} non-empty names, "
            f"parts 1..{num_parts} in order; got {len(names)}: {', '.join(map(repr, part_names))}"
        )
    return dict(enumerate(names, start=1))


def overlay_size(image, parts, max_side: int):
    """``image`` (PIL) and ``parts`` (``int [H, W]``) shrunk so the longer side is at most ``max_side`` (0: as they
    are): the overlay of a 48-megapixel photo is looked at, not measured, and drawing it at full size took 13 s."""
    from PIL import Image

    from partdiscovery.segmenter import prediction_size, resize_nearest

    height, width = prediction_size(image.height, image.width, max_side)
    if (height, width) == (image.height, image.width):
        return image, parts
    return image.resize((width, height), Image.BILINEAR, reducing_gap=2.0), resize_nearest(
        parts, height, width
    )
