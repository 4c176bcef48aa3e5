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


def test_a_folder_being_written_or_not_writable_is_refused_in_one_line(tmp_path, tiny_dataset, monkeypatch):
    import pytest
    from filelock import FileLock

    from partdiscovery.errors import OutputPathError, RunLockedError
    from partdiscovery.utils import outputs

    out = tmp_path / "masks"
    out.mkdir()
    cfg = ForegroundConfig(refine="none")
    with FileLock(out / outputs.LOCK, timeout=0, thread_local=False):  # another `masks` call writing
        with pytest.raises(RunLockedError, match="another partdiscovery process is writing masks"):
            make_masks(tiny_dataset / "images", out, cfg, device="cpu", progress=False)
    monkeypatch.setattr(outputs, "_writable", lambda folder: folder != out)
    with pytest.raises(OutputPathError, match=f"{out}: the folder is not writable"):
        make_masks(tiny_dataset / "images", out, cfg, device="cpu", progress=False)


def test_a_refused_call_leaves_no_folder_behind(tmp_path):
    import pytest

    from partdiscovery.errors import DatasetError

    images = tmp_path / "images"
    images.mkdir()
    (images / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetError):
        make_masks(images, tmp_path / "masks", ForegroundConfig(), device="cpu", progress=False)
    assert not (tmp_path / "masks").exists()
