"""A folder of photos is enough: masks -> train (no masks: made first) -> predict, on the command line."""

from __future__ import annotations

import contextlib
import json
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from partdiscovery.cli.main import main

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")

TINY = ["data.input_size=48", "model.decoder_channels=16", "train.batch_size=2"]
FAST_FG = ["foreground.input_size=96", "foreground.fit_pixels=2000"]


def cli(command: str, *extra: str) -> int:
    return main(command.split() + list(extra))


@pytest.fixture(scope="module")
def part_folder_without_masks(tmp_path_factory):
    root = tmp_path_factory.mktemp("nomasks")
    data = root / "data"
    assert cli(f"synth --out {data} --n 8 --parts 3 --size 64 --seed 2") == 0
    shutil.rmtree(data / "masks")
    return data


def test_masks_train_predict_end_to_end(part_folder_without_masks, tmp_path, capsys):
    data = part_folder_without_masks
    masks = tmp_path / "masks"
    assert cli(f"masks --images {data / 'images'} --out {masks} --device cpu --quiet", *FAST_FG) == 0
    assert "wrote 8 foreground masks" in capsys.readouterr().out
    assert len(list(masks.glob("*.png"))) == 8

    run = tmp_path / "run"
    train = f"train --data {data} --out {run} --steps 2 --parts 3 --no-pretrained --device cpu"
    assert cli(train, *TINY, *FAST_FG) == 0
    err = capsys.readouterr().err
    assert "no foreground masks" in err and str(run / "masks") in err
    info = json.loads((run / "run_info.json").read_text())
    assert info["masks"]["source"] == "automatic" and info["masks"]["approach"] == "border_contrast+grabcut"
    assert "learned_background: true" in (run / "config.yaml").read_text()
    assert len(list((run / "masks").glob("*.png"))) == len((data / "train.txt").read_text().split())

    # --resume reuses the masks instead of recomputing them.
    stamp = (run / "masks" / "foreground.json").stat().st_mtime_ns
    assert cli(train, "--resume", *TINY, *FAST_FG) == 0
    assert "reusing the masks" in capsys.readouterr().err
    assert (run / "masks" / "foreground.json").stat().st_mtime_ns == stamp
    # ... also when they were made by an older version, whose foreground config lacks a later key.
    manifest = json.loads((run / "masks" / "foreground.json").read_text())
    del manifest["config"]["certain_fraction"]
    (run / "masks" / "foreground.json").write_text(json.dumps(manifest))
    stamp = (run / "masks" / "foreground.json").stat().st_mtime_ns
    assert cli(train, "--resume", *TINY, *FAST_FG) == 0
    assert "they were made with another foreground config" in capsys.readouterr().err
    assert (run / "masks" / "foreground.json").stat().st_mtime_ns == stamp

    seg = tmp_path / "seg"
    assert cli(f"predict --run {run} --images {data / 'images'} --out {seg} --device cpu --quiet") == 0
    labels = np.asarray(Image.open(seg / "labels" / "00000.png"))
    overlay = Image.open(seg / "overlays" / "00000.png")
    assert labels.shape == (64, 64) and labels.max() <= 3
    assert overlay.width == 64 and overlay.height > 64  # the photo, then the legend below it


class Killed(BaseException):
    """Stands for the process being killed (not an error the CLI would turn into a message)."""


@contextlib.contextmanager
def killed_after(monkeypatch, masks: int):
    """Within it the process dies as it is about to write mask number ``masks + 1``."""
    from partdiscovery.foreground import folder

    save, saved = folder.atomic_save_image, []

    def save_then_die(path, image):
        if len(saved) == masks:
            raise Killed
        saved.append(save(path, image))

    with monkeypatch.context() as patch, pytest.raises(Killed):
        patch.setattr(folder, "atomic_save_image", save_then_die)
        yield


def test_killed_while_making_masks_goes_on_where_it_stopped(
    part_folder_without_masks, tmp_path, capsys, monkeypatch
):
    """A call killed while it made masks left them without a manifest; the next ``masks`` call and ``train
    --resume`` keep them and make the rest (they used to refuse the folder as "not written by partdiscovery")."""
    images = part_folder_without_masks / "images"
    masks = tmp_path / "masks"
    with killed_after(monkeypatch, 3):
        cli(f"masks --images {images} --out {masks} --device cpu --quiet", *FAST_FG)
    assert cli(f"masks --images {images} --out {masks} --device cpu --quiet", *FAST_FG) == 0
    out = capsys.readouterr().out
    assert "wrote 8 foreground masks" in out and "3 of them kept from an interrupted call" in out
    assert json.loads((masks / "foreground.json").read_text())["kept_from_interrupted_call"] == 3

    run = tmp_path / "run"
    train = f"train --images {images} --out {run} --steps 1 --parts 3 --no-pretrained --device cpu"
    with killed_after(monkeypatch, 3):
        cli(train, *TINY, *FAST_FG)
    assert len(list((run / "masks").glob("*.png"))) == 3 and not (run / "masks" / "foreground.json").exists()
    capsys.readouterr()
    assert cli(train, "--resume", *TINY, *FAST_FG) == 0
    assert "kept the 3 masks an interrupted call wrote" in capsys.readouterr().err
    manifest = json.loads((run / "masks" / "foreground.json").read_text())
    assert manifest["kept_from_interrupted_call"] == 3 and len(list((run / "masks").glob("*.png"))) == 8
    assert (run / "train_summary.json").is_file()


def test_train_on_a_plain_image_folder(part_folder_without_masks, tmp_path, capsys):
    run = tmp_path / "run"
    train = f"train --images {part_folder_without_masks / 'images'} --out {run} --steps 1 --parts 3"
    assert cli(train, "--no-pretrained", "--device", "cpu", "--quiet", *TINY, *FAST_FG) == 0
    info = json.loads((run / "run_info.json").read_text())
    assert info["masks"]["source"] == "automatic" and len(list((run / "masks").glob("*.png"))) == 8


def test_restarts_on_automatic_masks_alternate_the_parts_mask_erosion(part_folder_without_masks, tmp_path):
    run = tmp_path / "run"
    train = f"train --images {part_folder_without_masks / 'images'} --out {run} --steps 1 --parts 3"
    # The temperature's variant is for given masks only: every candidate trains at loss.temperature here.
    extra = ["train.restarts=3", "train.restarts_mask_erosion=0.02", "train.restarts_temperature=0.5"]
    assert cli(train, "--no-pretrained", "--device", "cpu", "--quiet", *TINY, *FAST_FG, *extra) == 0
    selection = json.loads((run / "run_info.json").read_text())["restarts"]
    assert selection["variants"] == {"1": ["loss.mask_erosion=0.02"]}
    assert "mask_erosion: 0.0\n" in (run / "restarts" / "seed_0" / "config.yaml").read_text()
    assert "mask_erosion: 0.02\n" in (run / "restarts" / "seed_1" / "config.yaml").read_text()
    plain, trained = (
        yaml.safe_load((run / "restarts" / f"seed_{s}" / "config.yaml").read_text()) for s in (0, 2)
    )
    assert trained["loss"]["temperature"] == plain["loss"]["temperature"] != 0.5
    assert trained["train"]["restarts_temperature"] == 0.5
    kept = (run / "restarts" / f"seed_{selection['chosen_seed']}" / "config.yaml").read_text()
    assert (run / "config.yaml").read_text() == kept  # the run records how the kept candidate trained


def test_a_second_round_of_masks_from_a_run_trained_without_masks(
    part_folder_without_masks, tmp_path, capsys
):
    data = part_folder_without_masks
    run = tmp_path / "run"
    train = f"train --data {data} --out {run} --steps 1 --parts 3 --no-pretrained --device cpu --quiet"
    assert cli(train, *TINY, *FAST_FG) == 0
    masks = tmp_path / "round2"
    assert cli(f"masks --images {data / 'images'} --out {masks} --from-run {run} --device cpu --quiet") == 0
    assert f"the learned background of {run}" in capsys.readouterr().out
    manifest = json.loads((masks / "foreground.json").read_text())
    assert manifest["from_run"] == str(run) and manifest["fitted_on"] == 0
    assert sorted(p.stem for p in masks.glob("*.png")) == sorted(p.stem for p in (data / "images").iterdir())
    for path in masks.glob("*.png"):
        assert set(np.unique(np.asarray(Image.open(path)))) <= {0, 255}
    # The same call again reuses them (that another source's are not: tests/foreground/test_folder.py).
    assert cli(f"masks --images {data / 'images'} --out {masks} --from-run {run} --device cpu --quiet") == 0
    assert capsys.readouterr().out.startswith("reused the 8 foreground masks")

    # Masks that partdiscovery made are automatic masks: trained with a learned background, recorded so.
    second = tmp_path / "run2"
    assert cli(train.replace(str(run), str(second)), "--masks", str(masks), *TINY) == 0
    info = json.loads((second / "run_info.json").read_text())
    assert info["masks"] == {
        "source": "automatic",
        "folder": str(masks),
        "manifest": str(masks / "foreground.json"),
    }
    assert "learned_background: true" in (second / "config.yaml").read_text()


def test_two_rounds_of_masks_in_one_train_call(part_folder_without_masks, tmp_path, capsys):
    data = part_folder_without_masks
    run = tmp_path / "run"
    train = f"train --images {data / 'images'} --out {run} --steps 1 --parts 3 --no-pretrained --device cpu"
    assert cli(train, "foreground.rounds=2", *TINY, *FAST_FG) == 0
    err = capsys.readouterr().err
    assert f"round 1 of 2: training on the first masks into {run / 'round_1'}" in err
    assert f"round 2 of 2: training on the second masks into {run / 'round_2'}" in err
    # The first run trained on the first masks as on automatic masks; the second masks come from its background.
    first = json.loads((run / "round_1" / "run_info.json").read_text())
    assert first["masks"]["folder"] == str(run / "masks") and first["masks"]["source"] == "automatic"
    assert "learned_background: true" in (run / "round_1" / "config.yaml").read_text()
    manifest = json.loads((run / "masks_round_2" / "foreground.json").read_text())
    assert manifest["from_run"] == str(run / "round_1") and manifest["count"] == 8
    second = json.loads((run / "round_2" / "run_info.json").read_text())["masks"]
    assert second["folder"] == str(run / "masks_round_2") and second["first_round"] == str(run / "masks")
    # The kept round is the run: its files at the top, the choice recorded.
    record = json.loads((run / "rounds.json").read_text())
    kept = run / f"round_{record['kept']}"
    assert f"keeping round {record['kept']}" in err and set(record["scores"]) == {"1", "2"}
    info = json.loads((run / "run_info.json").read_text())
    assert (
        info["rounds"] == record
        and info["masks"] == json.loads((kept / "run_info.json").read_text())["masks"]
    )
    assert (run / "checkpoints").is_dir() and (run / "config.yaml").read_text() == (
        kept / "config.yaml"
    ).read_text()

    # --resume after an interrupted second round: round 1 and the second masks are reused, round 2 trains again.
    stamps = [
        (run / p).stat().st_mtime_ns for p in ("round_1/train_summary.json", "masks_round_2/foreground.json")
    ]
    shutil.rmtree(run / "round_2")
    assert cli(train, "--resume", "foreground.rounds=2", *TINY, *FAST_FG) == 0
    err = capsys.readouterr().err
    assert "round 1 of 2: training" not in err and "round 2 of 2: training on the second masks" in err
    assert [
        (run / p).stat().st_mtime_ns for p in ("round_1/train_summary.json", "masks_round_2/foreground.json")
    ] == stamps
    assert (run / "round_2" / "train_summary.json").is_file()

    seg = tmp_path / "seg"
    assert cli(f"predict --run {run} --images {data / 'images'} --out {seg} --device cpu --quiet") == 0
    assert len(list((seg / "labels").glob("*.png"))) == 8


def test_masks_from_a_run_without_a_learned_background_is_one_line(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        cli(
            f"train --data {tiny_dataset} --out {run} --steps 1 --parts 3 --no-pretrained --device cpu --quiet",
            *TINY,
        )
        == 0
    )
    capsys.readouterr()
    out = tmp_path / "m"
    assert (
        cli(f"masks --images {tiny_dataset / 'images'} --out {out} --from-run {run} --device cpu --quiet")
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(run) in err[0] and "no learned background" in err[0]
    assert not out.exists()


def test_given_masks_take_precedence(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    train = (
        f"train --data {tiny_dataset} --out {run} --steps 1 --parts 3 --no-pretrained --device cpu --quiet"
    )
    assert cli(train, *TINY) == 0
    info = json.loads((run / "run_info.json").read_text())
    assert info["masks"] == {"source": "given", "folder": str(tiny_dataset / "masks")}
    assert not (run / "masks").exists()
    assert "learned_background: false" in (run / "config.yaml").read_text()


@pytest.mark.parametrize("case", ["empty", "unreadable", "single", "both", "rounds without a background"])
def test_bad_input_is_one_line(case, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    if case == "unreadable":
        (folder / "a.jpg").write_bytes(b"garbage")
    if case == "single":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "one.png")
    if case == "both":
        code = cli(f"train --data {folder} --images {folder} --out {tmp_path / 'run'}")
    elif case == "rounds without a background":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "one.png")
        train = f"train --images {folder} --out {tmp_path / 'run'} foreground.rounds=2 model.learned_background=false"
        code = cli(train)
    else:
        code = cli(f"masks --images {folder} --out {tmp_path / 'out'} --quiet")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    expected = {
        "empty": str(folder),
        "unreadable": str(folder / "a.jpg"),
        "single": "only image",
        "both": "exactly one",
        "rounds without a background": "foreground.rounds=2 makes the second masks from the first run's learned",
    }
    assert expected[case] in err


def test_train_on_a_single_image_refuses_before_it_makes_a_run_folder(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "one.png")
    assert cli(f"train --images {folder} --out {tmp_path / 'run'}") == 2
    assert "is the only image" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
