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
    from_run: str | Path | None = None,
) -> dict:
    """Write ``OUT/<stem>.png`` masks (0/255) and ``OUT/foreground.json`` for every image of ``images``
    (:func:`partdiscovery.foreground.folder.write_mask_folder`). ``threads``: the CPU threads to use, PyTorch's
    intra-op threads and the images masked at once (0: every CPU this process may use; the masks are the same
    whatever the number). Returns the manifest (``count``, ``reused``, ``fitted_on``, ``ms_per_image``, ...).

    ``from_run``: a run folder (or model file) trained with a learned background, e.g. by ``train`` on
    automatic masks: the masks come from its background (:mod:`partdiscovery.foreground.distill`), a second
    round of masks that is better than the first on the validation images (BENCHMARKS.md)."""
    from partdiscovery.data.part_folder import list_images
    from partdiscovery.errors import PartDiscoveryError
    from partdiscovery.foreground.folder import write_mask_folder
    from partdiscovery.segmenter import PartSegmenter, resolve_device
    from partdiscovery.utils.threads import available_cpus

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    cfg = cfg or ForegroundConfig()
    paths = list_images(images)
    run = None
    if from_run is not None:
        run = PartSegmenter.load(from_run, device=resolve_device(device), refine="none")
        if not run.has_learned_background:
            raise PartDiscoveryError(
                f"{from_run}: has no learned background (it was trained on given masks); use a run trained "
                "without masks, or with model.learned_background=true"
            )
    workers = threads if threads > 0 else available_cpus()
    return write_mask_folder(
        paths,
        out,
        cfg,
        resolve_device(device),
        progress=progress,
        from_run=run,
        run_source=from_run,
        workers=workers,
    )
