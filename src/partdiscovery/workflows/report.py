"""Report: a run folder (+ a dataset) -> one self-contained HTML page (:mod:`partdiscovery.viz.report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from partdiscovery.errors import InvalidArgumentError, PartDiscoveryError
from partdiscovery.utils.io import atomic_write_text


def write_report(
    run: str | Path,
    data: str | None = None,
    out: str | Path | None = None,
    split: str = "test",
    max_images: int = 16,
    *,
    gallery_size: int = 8,
    part_names: Sequence[str] | None = None,
    device: str = "auto",
    progress: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write a self-contained HTML report of ``run`` and return its path (default ``run/report.html``).

    Args:
        run: a run folder (or a checkpoint / exported model inside or beside one).
        data: a dataset spec; adds the split's metrics, a grid of images with their parts and, for every
            part, the images where it is largest. Without it only the run's own files are shown.
        split: the dataset split to show and score.
        max_images: images in the grid (the galleries and metrics use the whole split).
        gallery_size: images per part in the galleries.
        part_names: what parts 1..K depict, in order, for the legend and the galleries' titles (as ``predict``'s
            ``--part-names``); needs ``data``, since without it no part is shown.
        overwrite: replace an existing ``out`` (only a report of ours). The default ``run/report.html``
            is the run's own and is replaced when it is a report of ours.
    """
    from partdiscovery.data import dataset_root
    from partdiscovery.data.part_folder import open_to_score
    from partdiscovery.evaluation import score_pixels
    from partdiscovery.runs import REPORT_FILE, RunFolder, config_text, is_report, resolve_run
    from partdiscovery.segmenter import PartSegmenter
    from partdiscovery.utils.outputs import check_output_file
    from partdiscovery.viz.report import render_report
    from partdiscovery.workflows.predict import name_parts

    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 0:
        raise InvalidArgumentError(f"max_images must be an integer >= 0, got {max_images!r}")
    if isinstance(gallery_size, bool) or not isinstance(gallery_size, int) or gallery_size < 1:
        raise InvalidArgumentError(f"gallery_size must be an integer >= 1, got {gallery_size!r}")
    if part_names is not None and data is None:
        raise InvalidArgumentError(
            "part names (--part-names) name the parts of the images and galleries, which need a dataset (--data)"
        )
    folder, source = resolve_run(Path(run))
    default = out is None
    if default and not RunFolder(folder).is_ours():
        where = f"{run}: is not inside a run folder" if Path(run).is_file() else f"{folder}: not a run folder"
        raise PartDiscoveryError(
            f"{where} written by partdiscovery; the report is not written into it "
            "(give --out FILE to write it elsewhere)"
        )
    out = folder / REPORT_FILE if out is None else Path(out)
    check_output_file(
        out,
        overwrite or (default and is_report(out)),
        what="report",
        ours=is_report,
        inputs=[(dataset_root(data) if data else None, "dataset folder")],
    )
    segmenter = dataset = names = None
    if data is not None:
        segmenter = PartSegmenter.load(source, device=device)
        names = name_parts(part_names, segmenter.num_parts)  # before the split is read
        dataset = open_to_score(data, split)
    page = render_report(
        folder,
        source,
        segmenter.cfg.to_yaml() if segmenter is not None else config_text(folder, source),
        segmenter=segmenter,
        dataset=dataset,
        data=data,
        split=split,
        max_images=max_images,
        gallery_size=gallery_size,
        part_names=names,
        score=score_pixels,
        progress=progress,
    )
    return atomic_write_text(out, page)
