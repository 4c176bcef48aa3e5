"""Visualisation: palette, overlays, grids."""

from partdiscovery.viz.overlay import (
    PALETTE,
    colourise,
    draw_parts,
    grid,
    label_image,
    legend,
    overlay,
    part_colour,
    part_name,
    parts_figure,
)

__all__ = [
    "PALETTE",
    "colourise",
    "draw_parts",
    "grid",
    "label_image",
    "legend",
    "overlay",
    "part_colour",
    "part_name",
    "parts_figure",
]
