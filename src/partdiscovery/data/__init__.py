"""Datasets and augmentation.

Every dataset implements :class:`~partdiscovery.data.base.PartDataset`; :func:`open_dataset` opens
one from a spec string: a plain path is a part folder, ``name:ARGS`` picks a registered dataset
(:func:`list_datasets`, :mod:`partdiscovery.data.registry`).
"""

from __future__ import annotations

# Importing the dataset modules registers their kinds (folder, cub, deepfashion, pascal-part) in DATASETS.
from partdiscovery.data import cub, deepfashion, pascal_part  # noqa: F401
from partdiscovery.data.base import PartDataset, RawSample
from partdiscovery.data.part_folder import ImageFolderDataset, PartFolderDataset
from partdiscovery.data.registry import (
    DATASETS,
    DatasetKind,
    dataset_kind,
    dataset_root,
    list_datasets,
    open_dataset,
    register_dataset,
)
from partdiscovery.errors import DatasetError

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetKind",
    "ImageFolderDataset",
    "PartDataset",
    "PartFolderDataset",
    "RawSample",
    "dataset_kind",
    "dataset_root",
    "list_datasets",
    "open_dataset",
    "register_dataset",
]
