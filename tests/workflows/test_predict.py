"""workflows/predict.py: label maps and overlays for a folder of images; predictions folders."""

from __future__ import annotations

import numpy as np
import pytest

from partdiscovery.data.image_io import read_labels
from partdiscovery.errors import OutputPathError
from partdiscovery.workflows.predict import predict_folder, prediction_folder


def predict_with_masks(tmp_path, tiny_run, tiny_dataset, **kwargs) -> dict:
    """``predict_folder`` on the tiny dataset's images with its masks, into ``tmp_path/out``."""
    return predict_folder(
        tiny_run,
        tiny_dataset / "images",
        tmp_path / "out",
        masks=tiny_dataset / "masks",
        device="cpu",
        progress=False,
        **kwargs,
    )


def test_labels_and_overlays_for_every_image(tmp_path, tiny_run, tiny_dataset):
    done = predict_with_masks(tmp_path, tiny_run, tiny_dataset)
    ids = sorted(p.stem for p in (tiny_dataset / "images").iterdir())
    assert done["count"] == len(ids) and done["num_parts"] == 3
    assert sorted(p.stem for p in done["labels"].glob("*.png")) == ids
    assert sorted(p.stem for p in done["overlays"].glob("*.png")) == ids
    labels = read_labels(done["labels"] / f"{ids[0]}.png")
    mask = np.asarray(read_labels(tiny_dataset / "masks" / f"{ids[0]}.png")) > 0
    assert (labels[~mask] == 0).all() and labels[mask].max() <= 3


def test_each_photo_is_read_once_and_the_overlay_drawn_on_it(tmp_path, tiny_run, tiny_dataset, monkeypatch):
    """The overlay is drawn on the photo f was given (``Prediction.image``), not on a second decode of the file."""
    from PIL import Image

    from partdiscovery.data import ImageFolderDataset
    from partdiscovery.viz import parts_figure

    reads = []
    load = ImageFolderDataset.load
    monkeypatch.setattr(
        ImageFolderDataset, "load", lambda self, index: reads.append(index) or load(self, index)
    )
    done = predict_with_masks(tmp_path, tiny_run, tiny_dataset)
    assert sorted(reads) == list(range(done["count"]))
    monkeypatch.undo()
    raw = ImageFolderDataset(tiny_dataset / "images", tiny_dataset / "masks").load(0)
    expected = parts_figure(raw.image, read_labels(done["labels"] / f"{raw.id}.png"), done["num_parts"])
    drawn = Image.open(done["overlays"] / f"{raw.id}.png")
    assert np.array_equal(np.asarray(drawn.convert("RGB")), np.asarray(expected))


def test_part_names_go_to_the_legend_and_parts_json(tmp_path, tiny_run, tiny_dataset):
    import json

    from PIL import Image

    from partdiscovery.data import ImageFolderDataset
    from partdiscovery.errors import InvalidArgumentError
    from partdiscovery.viz import parts_figure

    done = predict_with_masks(tmp_path, tiny_run, tiny_dataset, part_names=["head", " body ", "tail"])
    assert done["names"] == {1: "head", 2: "body", 3: "tail"}
    assert json.loads((tmp_path / "out" / "parts.json").read_text()) == {
        "names": {"1": "head", "2": "body", "3": "tail"}
    }
    raw = ImageFolderDataset(tiny_dataset / "images", tiny_dataset / "masks").load(0)
    labels = read_labels(done["labels"] / f"{raw.id}.png")
    drawn = np.asarray(Image.open(done["overlays"] / f"{raw.id}.png").convert("RGB"))
    assert np.array_equal(drawn, np.asarray(parts_figure(raw.image, labels, 3, done["names"])))
    assert not np.array_equal(drawn, np.asarray(parts_figure(raw.image, labels, 3)))
    for wrong in (["head", "tail"], ["head", "", "tail"]):
        with pytest.raises(InvalidArgumentError, match="the model has 3 parts"):
            predict_with_masks(tmp_path / "wrong", tiny_run, tiny_dataset, part_names=wrong)
    assert not (tmp_path / "wrong").exists()


def test_refine_reaches_the_segmenter(tmp_path, tiny_run, tiny_dataset):
    """``refine`` overrides the run's ``predict.refine``: the labels are those of a guided PartSegmenter."""
    from partdiscovery import PartSegmenter
    from partdiscovery.data import ImageFolderDataset

    done = predict_with_masks(tmp_path, tiny_run, tiny_dataset, refine="guided")
    guided = PartSegmenter.load(tiny_run, device="cpu", refine="guided")
    raw = ImageFolderDataset(tiny_dataset / "images", tiny_dataset / "masks").load(0)
    assert np.array_equal(
        read_labels(done["labels"] / f"{raw.id}.png"), guided.predict(raw.image, raw.fg_mask)
    )


def test_overlays_of_large_photos_are_drawn_at_max_side():
    from PIL import Image

    from partdiscovery.workflows.predict import overlay_size

    image, parts = Image.new("RGB", (400, 300)), np.kron(np.array([[1, 2]]), np.ones((300, 200), np.int64))
    small_image, small_parts = overlay_size(image, parts, 100)
    assert small_image.size == (100, 75) and small_parts.shape == (75, 100)
    assert (small_parts[:, :50] == 1).all() and (small_parts[:, 50:] == 2).all()
    assert overlay_size(image, parts, 0) == (image, parts) and overlay_size(image, parts, 400)[0] is image


def test_without_masks_or_learned_background_it_warns(tmp_path, tiny_run, tiny_dataset):
    """The warning says how to make masks for a folder (`masks` needs one), not for a single photo."""
    folder = tmp_path / "my photos"  # a space: the suggested command quotes the path
    folder.mkdir()
    for image in sorted((tiny_dataset / "images").iterdir())[:2]:
        (folder / image.name).write_bytes(image.read_bytes())
    with pytest.warns(UserWarning, match="whole image") as warned:
        predict_folder(tiny_run, folder, tmp_path / "out", device="cpu", progress=False)
    assert f"partdiscovery masks --images '{folder}' --out MASKS" in str(warned[0].message)
    with pytest.warns(UserWarning, match="whole image") as warned:
        predict_folder(tiny_run, next(folder.iterdir()), tmp_path / "one", device="cpu", progress=False)
    assert "partdiscovery masks" not in str(warned[0].message)


def test_prediction_folder_refuses_a_users_folder_and_needs_overwrite(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "a.png").write_bytes(b"mine")
    with pytest.raises(OutputPathError):
        prediction_folder(user, ["a.png"], overwrite=True)
    ours = prediction_folder(tmp_path / "ours", ["a.png"], overwrite=False)
    ours.claim(["a.png"])
    (tmp_path / "ours" / "a.png").write_bytes(b"x")
    ours.finish(["a.png"])
    with pytest.raises(OutputPathError, match="--overwrite"):
        prediction_folder(tmp_path / "ours", ["a.png"], overwrite=False)
    prediction_folder(tmp_path / "ours", ["a.png"], overwrite=True)


def test_a_second_predict_into_a_folder_being_written_is_refused(tmp_path, tiny_run, tiny_dataset):
    """Two calls into one folder would each remove the other's files as stale (a trial found 12 of 16 gone)."""
    from filelock import FileLock

    from partdiscovery.errors import RunLockedError
    from partdiscovery.utils.outputs import LOCK

    out = tmp_path / "out"
    out.mkdir()
    with FileLock(out / LOCK, timeout=0, thread_local=False):  # another process writing
        with pytest.raises(RunLockedError, match="another partdiscovery process is writing predictions"):
            predict_with_masks(tmp_path, tiny_run, tiny_dataset)
        assert sorted(p.name for p in out.iterdir()) == [LOCK]
    assert predict_with_masks(tmp_path, tiny_run, tiny_dataset)["count"] > 0  # free again


def test_a_predict_refused_at_its_first_image_leaves_no_folder(tmp_path, tiny_run, tiny_dataset):
    from partdiscovery.errors import PartDiscoveryError

    images = tmp_path / "photos"
    images.mkdir()
    first = sorted((tiny_dataset / "images").iterdir())[0]
    (images / f"a{first.suffix}").write_bytes(first.read_bytes()[: first.stat().st_size // 2])  # truncated
    with pytest.raises(PartDiscoveryError, match=f"a{first.suffix}: cannot read image"):
        predict_folder(tiny_run, images, tmp_path / "out", device="cpu", progress=False)
    assert not (tmp_path / "out").exists()


def test_one_photo_is_segmented_into_a_folder_beside_it(tmp_path, tiny_run, tiny_dataset):
    photo = tmp_path / "photo.png"
    photo.write_bytes(sorted((tiny_dataset / "images").iterdir())[0].read_bytes())
    done = predict_folder(tiny_run, photo, tmp_path / "seg", device="cpu", progress=False)
    assert done["count"] == 1 and [p.name for p in done["labels"].iterdir()] == ["photo.png"]
