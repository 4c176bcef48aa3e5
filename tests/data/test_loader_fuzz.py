"""Property-based: any bytes or shapes fed to the loaders give a valid sample or a DatasetError, nothing else."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from partdiscovery.data.image_io import read_image, read_labels, read_mask
from partdiscovery.data.part_folder import PartFolderDataset
from partdiscovery.errors import DatasetError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _image_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "truncated", "png", "empty"]))
    if kind == "random":
        return draw(st.binary(min_size=0, max_size=256))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    channels = draw(st.sampled_from([None, 3, 4]))
    shape = (h, w) if channels is None else (h, w, channels)
    array = np.asarray(
        draw(st.lists(st.integers(0, 255), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
        dtype=np.uint8,
    ).reshape(shape)
    data = _png_bytes(array)
    if kind == "truncated":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return b"" if kind == "empty" else data


file_bytes = st.composite(lambda draw: _image_bytes(draw))


@FAST
@given(data=file_bytes())
def test_readers_return_valid_output_or_a_dataset_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.png"
        path.write_bytes(data)
        for reader in (read_image, read_mask, read_labels):
            try:
                out = reader(path)
            except DatasetError as e:
                assert str(path) in str(e)
                continue
            if reader is read_image:
                assert out.mode == "RGB" and out.width > 0 and out.height > 0
            elif reader is read_mask:
                assert out.dtype == bool and out.ndim == 2
            else:
                assert out.dtype == np.int64 and out.ndim == 2


@FAST
@given(image=file_bytes(), mask=file_bytes())
def test_part_folder_gives_samples_or_a_dataset_error(image, mask):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "masks").mkdir()
        (root / "images" / "a.png").write_bytes(image)
        (root / "masks" / "a.png").write_bytes(mask)
        (root / "train.txt").write_text("a\n")
        try:
            sample = PartFolderDataset(root, "train").load(0)
        except DatasetError as e:
            assert str(root) in str(e)
            return
        assert sample.image.size == sample.fg_mask.shape[::-1] and sample.fg_mask.any()
