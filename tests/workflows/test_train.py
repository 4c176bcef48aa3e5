"""workflows/train.py: which masks a run trains with, and the run folder it writes."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from partdiscovery.errors import PartDiscoveryError
from partdiscovery.workflows.train import dataset_inputs, run_training, training_dataset


def test_exactly_one_of_data_and_images(tmp_path, tiny_config, tiny_dataset):
    with pytest.raises(PartDiscoveryError, match="exactly one"):
        training_dataset(tiny_config(), None, tmp_path / "run")
    with pytest.raises(PartDiscoveryError, match="exactly one"):
        training_dataset(
            tiny_config(), str(tiny_dataset), tmp_path / "run", images=str(tiny_dataset / "images")
        )


def test_given_masks_take_precedence_over_the_part_folders(tmp_path, tiny_config, tiny_dataset):
    other = tmp_path / "other_masks"
    shutil.copytree(tiny_dataset / "masks", other)
    first = sorted(other.glob("*.png"))[0]
    changed = np.zeros_like(np.asarray(Image.open(first)))
    changed[:4, :6] = 255  # unlike the folder's own mask: the dataset must read it from `other`
    Image.fromarray(changed).save(first)
    cfg = tiny_config()
    dataset, used, info = training_dataset(cfg, str(tiny_dataset), tmp_path / "run", masks=str(other))
    assert used is cfg and info == {"masks": {"source": "given", "folder": str(other)}}
    np.testing.assert_array_equal(dataset.load(dataset.ids.index(first.stem)).fg_mask, changed > 0)
    own, _, info = training_dataset(cfg, str(tiny_dataset), tmp_path / "run")
    assert info["masks"]["source"] == "given" and len(own) == len(dataset)


def test_dataset_inputs_names_the_dataset_root(tiny_dataset):
    assert dataset_inputs(str(tiny_dataset))[0][0].resolve() == tiny_dataset.resolve()
    assert dataset_inputs(None) == [(None, "dataset folder")]


def test_run_training_writes_a_run_and_records_the_masks(
    tmp_path, tiny_config, tiny_dataset, deterministic_mode_off
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        summary = run_training(
            tiny_config("train.steps=2"), str(tiny_dataset), tmp_path / "run", "cpu", quiet=True
        )
    assert summary["steps"] == 2
    assert not torch.are_deterministic_algorithms_enabled()  # trained in it, then the caller's mode again
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["masks"]["source"] == "given"
    with pytest.raises(PartDiscoveryError, match="--overwrite|--resume"):
        run_training(tiny_config("train.steps=2"), str(tiny_dataset), tmp_path / "run", "cpu", quiet=True)


def test_automatic_masks_under_holdout_val_leave_the_validation_images_out(
    tmp_path, tiny_config, tiny_dataset
):
    from partdiscovery.data import open_dataset

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    shutil.rmtree(data / "masks")
    for spec, run in ((str(data), "run"), (f"folder:{data}", "run_folder_spec")):  # both say a part folder
        dataset, cfg, info = training_dataset(
            tiny_config(), spec, tmp_path / run, device="cpu", quiet=True, split="train_minus_val"
        )
        assert info["masks"]["source"] == "automatic" and cfg.model.learned_background
        made = sorted(p.stem for p in (tmp_path / run / "masks").glob("*.png"))
        assert made == sorted(dataset.ids) == sorted(open_dataset(tiny_dataset, "train_minus_val").ids)
        assert not set(made) & set(open_dataset(tiny_dataset, "val").ids)


def test_reused_masks_are_recorded_as_they_were_made(tmp_path, tiny_config, tiny_dataset):
    """A resume with another ``foreground`` section reuses the masks; the record names how they were made."""
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    shutil.rmtree(data / "masks")
    run_training(tiny_config("train.steps=1"), str(data), tmp_path / "run", "cpu", quiet=True)
    made = json.loads((tmp_path / "run" / "run_info.json").read_text())["masks"]["approach"]
    _, _, info = training_dataset(
        tiny_config("train.steps=1", "foreground.refine=none"), str(data), tmp_path / "run", device="cpu", quiet=True,
        resume=True,
    )  # fmt: skip
    assert info["masks"]["reused"] and info["masks"]["approach"] == made != "border_contrast+none"


def test_a_train_refused_for_a_corrupt_image_leaves_no_run_folder(tmp_path, tiny_config, tiny_dataset):
    images = tmp_path / "photos"
    shutil.copytree(tiny_dataset / "images", images)
    (images / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(PartDiscoveryError, match="broken.jpg"):
        run_training(
            tiny_config(), None, tmp_path / "new" / "runs" / "run", "cpu", quiet=True, images=str(images)
        )
    assert not (tmp_path / "new").exists()  # nor the parents the call made for it
    (tmp_path / "mine").mkdir()  # a folder the user made is theirs: left as it was
    with pytest.raises(PartDiscoveryError, match="broken.jpg"):
        run_training(tiny_config(), None, tmp_path / "mine", "cpu", quiet=True, images=str(images))
    assert (tmp_path / "mine").is_dir()


def test_a_train_refused_by_another_trainings_lock_leaves_that_folder(
    tmp_path, tiny_config, tiny_dataset, monkeypatch
):
    """The folder did not exist at this call's check; another training made it and holds its lock (only its lock and
    marker written yet): this call's refusal must not remove them."""
    from filelock import FileLock

    from partdiscovery.errors import RunLockedError
    from partdiscovery.utils.outputs import LOCK, MARKER
    from partdiscovery.workflows import train

    out = tmp_path / "run"

    def another_training_began(*args):
        out.mkdir()
        (out / MARKER).write_text("{}")
        holder.acquire()
        raise RunLockedError(f"{out}: another partdiscovery process is training into this run folder")

    holder = FileLock(out / LOCK, timeout=0)
    monkeypatch.setattr(train, "_train", another_training_began)
    with pytest.raises(RunLockedError):
        run_training(tiny_config(), str(tiny_dataset), out, "cpu", quiet=True)
    assert (out / MARKER).is_file() and (out / LOCK).is_file()
    train._remove_unwritten_run(out, out)  # nor a cleanup that finds the lock held
    assert (out / MARKER).is_file()
    holder.release()
    train._remove_unwritten_run(out, out)  # free, and nothing written: removed
    assert not out.exists()
