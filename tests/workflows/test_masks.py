"""workflows/masks.py: foreground masks for a folder of images, with no labels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from partdiscovery.config import ForegroundConfig
from partdiscovery.workflows import make_masks


def test_one_mask_per_image_and_a_manifest(tmp_path, tiny_dataset):
    cfg = ForegroundConfig(refine="none")
    manifest = make_masks(tiny_dataset / "images", tmp_path / "masks", cfg, device="cpu", progress=False)
    ids = sorted(p.stem for p in (tiny_dataset / "images").iterdir())
    assert manifest["count"] == len(ids) and not manifest["reused"]
    assert sorted(p.stem for p in (tmp_path / "masks").glob("*.png")) == ids
    mask = np.asarray(Image.open(tmp_path / "masks" / f"{ids[0]}.png"))
    assert set(np.unique(mask)) <= {0, 255}
    again = make_masks(tiny_dataset / "images", tmp_path / "masks", cfg, device="cpu", progress=False)
    assert again["reused"]
