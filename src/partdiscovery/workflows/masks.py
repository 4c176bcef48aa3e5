"""Masks: a folder of images -> foreground masks, fitted on the folder itself with no labels."""

from __future__ import annotations

from pathlib import Path

from partdiscovery.config import ForegroundConfig


def make_masks(
    images: str | Path,
    out: str | Path,
    cfg: ForegroundConfig | None = None,
    device: str = "auto",
    threads: int = 0,
    progress: bool = True,
) -> dict:
    """Write ``OUT/<stem>.png`` masks (0/255) and ``OUT/foreground.json`` for every image of ``images``
    (:func:`partdiscovery.foreground.folder.write_mask_folder`); ``threads > 0`` sets PyTorch's intra-op
    threads first. Returns the manifest (``count``, ``reused``, ``fitted_on``, ``ms_per_image``, ...)."""
    from partdiscovery.foreground.folder import list_images, write_mask_folder
    from partdiscovery.segmenter import resolve_device

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    cfg = cfg or ForegroundConfig()
    return write_mask_folder(list_images(images), out, cfg, resolve_device(device), progress=progress)
