"""write_mask_folder: masks for a folder, a manifest, reuse, and one clear line for bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from partdiscovery.config import ForegroundConfig
from partdiscovery.data.image_io import read_mask
from partdiscovery.data.part_folder import list_images
from partdiscovery.errors import DatasetError, OutputPathError
from partdiscovery.foreground import folder as folder_module
from partdiscovery.foreground.folder import MANIFEST, PARTIAL, write_mask_folder

FAST = ForegroundConfig(input_size=96, fit_pixels=2000)


@pytest.fixture()
def photos(tmp_path, collection):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (image, _) in enumerate(collection[:4]):
        image.save(folder / f"img{i}.jpg", quality=95)
    return folder


def test_writes_masks_and_manifest_then_reuses_them(photos, tmp_path, collection, iou):
    out = tmp_path / "masks"
    manifest = write_mask_folder(list_images(photos), out, FAST, progress=False)
    assert not manifest["reused"] and manifest["count"] == 4
    for i in range(4):
        mask = read_mask(out / f"img{i}.png")
        assert mask.shape == (96, 96) and iou(mask, collection[i][1]) > 0.8
    stored = json.loads((out / MANIFEST).read_text())
    assert stored["config"]["refine"] == "grabcut" and stored["ids"] == [f"img{i}" for i in range(4)]
    before = (out / "img0.png").stat().st_mtime_ns
    assert write_mask_folder(list_images(photos), out, FAST, progress=False)["reused"]
    assert (out / "img0.png").stat().st_mtime_ns == before


def test_keep_existing_reuses_masks_made_with_another_config(photos, tmp_path):
    """A resumed run keeps its masks when a default changed since (the manifest's config differs)."""
    out = tmp_path / "masks"
    write_mask_folder(list_images(photos), out, FAST, progress=False)
    before = (out / "img0.png").stat().st_mtime_ns
    other = dataclasses.replace(FAST, certain_fraction=0.3)
    kept = write_mask_folder(list_images(photos), out, other, progress=False, keep_existing=True)
    assert kept["reused"] and kept["config_differs"] and kept["config"] == dataclasses.asdict(FAST)
    assert (out / "img0.png").stat().st_mtime_ns == before
    remade = write_mask_folder(list_images(photos), out, other, progress=False)
    assert not remade["reused"] and not remade["config_differs"]
    assert json.loads((out / MANIFEST).read_text())["config"]["certain_fraction"] == 0.3
    # A resume that needs fewer images (0.24 made a --holdout-val run's masks for its validation images too).
    fewer = write_mask_folder(list_images(photos)[1:], out, other, progress=False, keep_existing=True)
    assert fewer["reused"] and (out / "img0.png").is_file()
    with pytest.raises(OutputPathError, match="holds the masks of"):  # not reused without a resume
        write_mask_folder(list_images(photos)[1:], out, other, progress=False)
    # A resume with an image the run did not start on says so (not "choose another folder").
    write_mask_folder(list_images(photos)[1:], out, other, progress=False, replace_other=True)
    with pytest.raises(
        OutputPathError, match=r"1 of this call's are new \(e.g. img0\): resume with the images"
    ):
        write_mask_folder(list_images(photos), out, other, progress=False, keep_existing=True)


class Killed(Exception):
    """Stands for the process being killed while it writes masks."""


def write_then_kill(monkeypatch, after: int, *args, **kwargs) -> None:
    """Call write_mask_folder and stop it when it is about to write mask number ``after + 1``."""
    save = folder_module.atomic_save_image
    calls = []

    def save_until(path, image):
        if len(calls) == after:
            raise Killed
        calls.append(path)
        return save(path, image)

    with monkeypatch.context() as patch:
        patch.setattr(folder_module, "atomic_save_image", save_until)
        with pytest.raises(Killed):
            write_mask_folder(*args, **kwargs)


def test_masks_are_the_same_whatever_the_number_of_workers(photos, tmp_path):
    paths = list_images(photos)
    alone = write_mask_folder(paths, tmp_path / "alone", FAST, progress=False, workers=1)
    together = write_mask_folder(paths, tmp_path / "together", FAST, progress=False, workers=3)
    assert (alone["workers"], together["workers"]) == (1, 3)
    for i in range(4):
        assert (tmp_path / "together" / f"img{i}.png").read_bytes() == (
            tmp_path / "alone" / f"img{i}.png"
        ).read_bytes()


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_call_is_continued_not_refused(photos, tmp_path, monkeypatch, workers):
    """A killed ``masks`` / ``train`` left masks and no manifest; the next call keeps them and makes the rest,
    and the folder is the one an uninterrupted call writes (before, it was refused as "not written by us"); with
    several workers too, whose masks are written in the images' order."""
    paths = list_images(photos)
    whole = tmp_path / "whole"
    write_mask_folder(paths, whole, FAST, progress=False)
    out = tmp_path / "masks"
    write_then_kill(monkeypatch, 2, paths, out, FAST, progress=False, workers=workers)
    assert (out / PARTIAL).is_file() and not (out / MANIFEST).exists()
    assert sorted(p.name for p in out.glob("*.png")) == ["img0.png", "img1.png"]
    kept = (out / "img0.png").stat().st_mtime_ns
    manifest = write_mask_folder(paths, out, FAST, progress=False)
    assert not manifest["reused"] and manifest["kept_from_interrupted_call"] == 2
    assert (out / "img0.png").stat().st_mtime_ns == kept
    assert not (out / PARTIAL).exists() and (out / MANIFEST).is_file()
    for i in range(4):
        assert (out / f"img{i}.png").read_bytes() == (whole / f"img{i}.png").read_bytes()
    assert write_mask_folder(paths, out, FAST, progress=False)["reused"]


def test_an_interrupted_call_with_another_config_starts_over(photos, tmp_path, monkeypatch):
    """Masks of an earlier config never pass for the new one's: neither those a killed call left, nor those of
    a complete folder that a killed call with a new config was rewriting."""
    paths = list_images(photos)
    other = dataclasses.replace(FAST, certain_fraction=0.3)
    expected = tmp_path / "expected"
    write_mask_folder(paths, expected, other, progress=False)

    out = tmp_path / "masks"
    write_then_kill(monkeypatch, 2, paths, out, FAST, progress=False)
    assert write_mask_folder(paths, out, other, progress=False)["kept_from_interrupted_call"] == 0

    complete = tmp_path / "complete"
    write_mask_folder(paths, complete, FAST, progress=False)
    write_then_kill(monkeypatch, 1, paths, complete, other, progress=False)
    assert sorted(p.name for p in complete.glob("*.png")) == ["img0.png"]  # the others were FAST's: gone
    assert write_mask_folder(paths, complete, other, progress=False)["kept_from_interrupted_call"] == 1
    for folder in (out, complete):
        for i in range(4):
            assert (folder / f"img{i}.png").read_bytes() == (expected / f"img{i}.png").read_bytes()


def test_never_writes_into_a_foreign_folder(photos, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not written by partdiscovery"):
        write_mask_folder(list_images(photos), out, FAST, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"
    run = tmp_path / "run"
    run.mkdir()
    (run / ".partdiscovery.json").write_text('{"kind": "run", "files": []}')
    with pytest.raises(DatasetError, match=f"^{run}: holds a partdiscovery run, not masks; choose another"):
        write_mask_folder(list_images(photos), run, FAST, progress=False)
    with pytest.raises(DatasetError, match="is a file; give the folder that holds the images"):
        list_images(photos / "img0.jpg")


def test_the_masks_of_other_images_are_never_mixed_in(photos, tmp_path):
    """A second folder of images written into the same --out is refused (it would replace the first folder's masks,
    e.g. those a run trained on); replacing it on purpose (train --overwrite) removes the first folder's masks."""
    paths = list_images(photos)
    out = tmp_path / "masks"
    write_mask_folder(paths[:3], out, FAST, progress=False)
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    with pytest.raises(OutputPathError, match=f"^{out}: holds the masks of 3 other image"):
        write_mask_folder(paths[1:], out, FAST, progress=False)
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == before
    manifest = write_mask_folder(paths[1:], out, FAST, progress=False, replace_other=True)
    assert sorted(p.name for p in out.glob("*.png")) == ["img1.png", "img2.png", "img3.png"]
    assert manifest["ids"] == ["img1", "img2", "img3"]


def test_masks_of_other_images_left_by_an_interrupted_call_are_removed(photos, tmp_path, monkeypatch):
    paths = list_images(photos)
    out = tmp_path / "masks"
    write_then_kill(monkeypatch, 1, paths[:3], out, FAST, progress=False)
    assert sorted(p.name for p in out.glob("*.png")) == ["img0.png"]
    write_mask_folder(paths[2:], out, FAST, progress=False)
    assert sorted(p.name for p in out.glob("*.png")) == ["img2.png", "img3.png"]


def test_outputs_that_are_files_or_inside_the_images_are_refused(photos, tmp_path):
    paths = list_images(photos)
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("mine")
    for out, match in (
        (a_file, "exists and is not a folder"),
        (a_file / "sub", "cannot create the mask folder here"),
        (photos / "masks", "is inside the image folder"),
    ):
        with pytest.raises(OutputPathError, match=f"^{out}: {match}"):
            write_mask_folder(paths, out, FAST, progress=False)
    assert a_file.read_text() == "mine" and not (photos / "masks").exists()


def test_bad_input_is_one_line_naming_the_folder_or_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=f"^{empty}: no images found"):
        list_images(empty)
    (empty / "sub").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(empty / "sub" / "a.png")
    with pytest.raises(DatasetError, match=f"^{empty}: no images found .*its subfolder sub/ holds images"):
        list_images(empty)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(empty / "b.png")
    with pytest.warns(UserWarning, match=r"images in 1 subfolder\(s\) \(sub/, ...\) are not used"):
        assert list_images(empty) == [empty / "b.png"]

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.jpg", "b.png"):
        (broken / name).write_bytes(b"not an image")
    with pytest.raises(DatasetError) as info:
        write_mask_folder(list_images(broken), tmp_path / "out1", FAST, progress=False)
    assert str(info.value).startswith(f"{broken}: none of its 2 image file(s) can be read")
    assert len(str(info.value).splitlines()) == 1

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("a.jpg", "b.png"):
        (mixed / name).write_bytes(b"not an image")
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(mixed / f"good_{name}")
    with pytest.raises(DatasetError) as info:
        write_mask_folder(list_images(mixed), tmp_path / "out2", FAST, progress=False)
    assert str(info.value).startswith(f"{mixed}: 2 image problem(s):\n")  # a plain folder has no splits

    single = tmp_path / "single"
    single.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(single / "only.png")
    with pytest.raises(DatasetError) as info:
        write_mask_folder(list_images(single), tmp_path / "out2", FAST, progress=False)
    assert str(info.value).startswith(f"{single / 'only.png'}: is the only image")
    assert len(str(info.value).splitlines()) == 1


class _Background:
    """A trained run's learned background (``predict_proba``'s channel 0): the object is the image's middle."""

    def predict_proba(self, images):
        import torch

        h, w = images.shape[-2:]
        background = torch.ones(h, w)
        background[h // 4 : -h // 4, w // 4 : -w // 4] = 0
        return torch.stack([background, 1 - background])[None]


def test_masks_from_a_run_are_reused_for_that_run_only(photos, tmp_path):
    """The manifest records the run the masks came from: another run's, or masks fitted on the images, are made anew."""
    paths, out = list_images(photos), tmp_path / "masks"
    cfg = dataclasses.replace(FAST, refine="none")
    made = write_mask_folder(paths, out, cfg, progress=False, from_run=_Background(), run_source="run_a")
    assert made["from_run"] == "run_a" and read_mask(out / "img0.png")[48, 48]
    again = write_mask_folder(paths, out, cfg, progress=False, from_run=_Background(), run_source="run_a")
    assert again["reused"]
    other = write_mask_folder(paths, out, cfg, progress=False, from_run=_Background(), run_source="run_b")
    assert not other["reused"] and other["from_run"] == "run_b"
    fitted = write_mask_folder(paths, out, cfg, progress=False)
    assert not fitted["reused"] and fitted["from_run"] is None
