"""Foreground masks without labels, fitted on the collection itself.

The method trains from foreground masks; a folder of photos has none. :class:`ForegroundModel`
makes them: frozen φ features of every image, a coarse object mask from the border prior (by default
per image: cells unlike the image's own border; collection clusterings are registered too,
:mod:`~partdiscovery.foreground.cosegment`), snapped to image edges by GrabCut with the object's most
certain cells fixed (:mod:`~partdiscovery.foreground.refine`).
:func:`~partdiscovery.foreground.folder.write_mask_folder` runs it over a folder.
Approaches are registered (:func:`list_coarse`, :func:`list_refiners`) and chosen by
``ForegroundConfig`` (``foreground.coarse`` / ``foreground.refine``); BENCHMARKS.md has the
measured comparison that chose the defaults.
"""

from partdiscovery.config import ForegroundConfig
from partdiscovery.foreground.cosegment import COARSE, CoarseForeground, list_coarse
from partdiscovery.foreground.features import border_cells, image_features
from partdiscovery.foreground.model import ForegroundModel, create_phi
from partdiscovery.foreground.refine import REFINERS, list_refiners

__all__ = [
    "COARSE",
    "REFINERS",
    "CoarseForeground",
    "ForegroundConfig",
    "ForegroundModel",
    "border_cells",
    "create_phi",
    "image_features",
    "list_coarse",
    "list_refiners",
]
