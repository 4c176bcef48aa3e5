"""Datasets and augmentation.

Every dataset implements :class:`~partdiscovery.data.base.PartDataset`; :func:`open_dataset` opens
one from a spec string: a plain path is a part folder, ``name:ARGS`` picks a registered dataset
(:func:`list_datasets`).
"""

from __future__ import annotations

from pathlib import Path

from partdiscovery.data.base import PartDataset, RawSample
from partdiscovery.data.part_folder import ImageFolderDataset, PartFolderDataset
from partdiscovery.errors import DatasetError
from partdiscovery.utils.registry import Registry

DATASETS: Registry[PartDataset] = Registry("dataset")


@DATASETS.register("folder")
def _part_folder(args: str, split: str, **kwargs) -> PartDataset:
    return PartFolderDataset(args, split, **kwargs)


def list_datasets() -> list[str]:
    return DATASETS.names()


def open_dataset(spec: str | Path, split: str = "train", **kwargs) -> PartDataset:
    """Open ``spec`` (``PATH`` | ``folder:PATH`` | ``NAME:ARGS``) at ``split``.

    Keyword arguments go to the dataset class (e.g. ``validate=False``, ``require_parts=True``).
    """
    spec = str(spec)
    name, sep, args = spec.partition(":")
    if sep and name in DATASETS:
        return DATASETS.build(name, args, split, **kwargs)
    if sep and not Path(spec).exists() and "/" not in name and len(name) > 1:
        raise DatasetError(
            f"{spec}: unknown dataset kind {name!r}; choose one of: {', '.join(list_datasets())} "
            "(or give a plain path to a part folder)"
        )
    return PartFolderDataset(spec, split, **kwargs)


def dataset_root(spec: str | Path) -> Path | None:
    """The folder a dataset spec reads from, without opening it (the path of ``PATH``, ``folder:PATH``,
    ``cub:PATH``, ``pascal-part:CLASS:PATH``): commands refuse outputs inside it before any work."""
    spec = str(spec)
    name, sep, args = spec.partition(":")
    if sep and name in DATASETS:
        path = args.rsplit(":", 1)[-1] if name != "folder" else args
        return Path(path) if path else None
    return Path(spec) if spec else None


# Importing these modules registers their datasets (cub, deepfashion, pascal-part) in DATASETS.
from partdiscovery.data import cub, deepfashion, pascal_part  # noqa: E402, F401

__all__ = [
    "DATASETS",
    "DatasetError",
    "ImageFolderDataset",
    "PartDataset",
    "PartFolderDataset",
    "RawSample",
    "dataset_root",
    "list_datasets",
    "open_dataset",
]
