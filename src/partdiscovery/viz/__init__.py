"""Visualisation: palette, overlays, grids."""

from partdiscovery.viz.overlay import PALETTE, colourise, grid, label_image, overlay, part_colour

__all__ = ["PALETTE", "colourise", "grid", "label_image", "overlay", "part_colour"]
