"""The command line end to end on a tiny synthetic dataset, and its one-line errors."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from partdiscovery.cli.main import main

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")

COMMANDS = ["synth", "train", "evaluate", "baseline", "masks", "predict", "demo"]
METRIC_KEYS = {"fg_nmi", "fg_ari", "nmi", "ari", "n_images", "split"}
TINY = ["data.input_size=48", "model.decoder_channels=16", "train.batch_size=2"]


def cli(command: str, *extra: str) -> int:
    """``main`` on a command line split at spaces (the tests' paths have none), plus ``extra`` arguments."""
    return main(command.split() + list(extra))


@pytest.mark.parametrize("argv", [["--help"]] + [[c, "--help"] for c in COMMANDS])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: partdiscovery")
    if argv[0] == "--help":
        assert all(c in out for c in COMMANDS)


def test_python_dash_m_help():
    result = subprocess.run(
        [sys.executable, "-m", "partdiscovery", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "usage: partdiscovery" in result.stdout and "train" in result.stdout


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """synth -> train via the CLI; returns the folders."""
    root = tmp_path_factory.mktemp("cli")
    data, run = root / "data", root / "run"
    assert cli(f"synth --out {data} --n 12 --parts 3 --size 48 --seed 1") == 0
    train = f"train --data {data} --out {run} --steps 3 --parts 3 --no-pretrained --device cpu --quiet"
    assert cli(train, *TINY, "train.checkpoint_every=2") == 0
    return {"root": root, "data": data, "run": run}


def test_train_says_what_it_trained_and_which_restart_it_kept(flow, tmp_path, capsys):
    data = flow["data"]
    base = f"--data {data} --parts 3 --no-pretrained --device cpu --quiet"
    capsys.readouterr()
    assert cli(f"train {base} --out {tmp_path / 'one'} --steps 2", *TINY) == 0
    assert capsys.readouterr().out.startswith("trained 2 steps in ")
    assert cli(f"train {base} --out {tmp_path / 'one'} --steps 2 --resume", *TINY) == 0
    assert capsys.readouterr().out.startswith(
        "the run had already finished (2 steps): nothing to train; run: "
    )
    restarts = ("train.restarts=2", "train.restarts_choice_step=1")
    assert cli(f"train {base} --out {tmp_path / 'two'} --steps 2", *TINY, *restarts) == 0
    line = capsys.readouterr().out
    chosen = json.loads((tmp_path / "two" / "train_summary.json").read_text())["restarts"]["chosen_seed"]
    assert line.startswith(f"kept seed {chosen} of 2 runs (compared at step 1); ") and " s in all" in line


def test_synth_and_train_outputs(flow, capsys):
    data, run = flow["data"], flow["run"]
    assert len(list((data / "images").glob("*.jpg"))) == 12
    summary = json.loads((run / "train_summary.json").read_text())
    assert (summary["steps"], summary["batch_size"], summary["input_size"]) == (3, 2, 48)
    config = (run / "config.yaml").read_text()
    assert "pretrained: false" in config and "num_parts: 3" in config and "decoder_channels: 16" in config
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002.pt", "step_00000003.pt"]
    # Training again into the finished run is refused with one line, not a traceback.
    capsys.readouterr()
    assert cli(f"train --data {data} --out {run} --steps 3 --no-pretrained --quiet", *TINY) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def evaluated_run(flow):
    out = flow["root"] / "eval_run.json"
    assert cli(f"evaluate --run {flow['run']} --data {flow['data']} --json {out} --device cpu --quiet") == 0
    return json.loads(out.read_text())


def test_evaluate_run(evaluated_run, flow):
    result = evaluated_run
    assert METRIC_KEYS <= set(result)
    test_ids = (flow["data"] / "test.txt").read_text().split()
    assert result["split"] == "test" and result["n_images"] == len(test_ids)
    for key in ("fg_nmi", "fg_ari", "nmi", "ari"):
        assert -100.0 <= result[key] <= 100.0
    assert result["nmi"] > result["fg_nmi"]  # the given masks separate background and foreground perfectly


def test_baseline_then_evaluate_predictions(flow, capsys):
    data, km = flow["data"], flow["root"] / "kmeans"
    baseline = f"baseline kmeans --data {data} --out {km} --parts 3 --no-pretrained --input-size 48 --quiet"
    assert cli(baseline) == 0
    test_ids = (data / "test.txt").read_text().split()
    assert sorted(p.stem for p in km.glob("*.png")) == sorted(test_ids)
    labels = np.asarray(Image.open(km / f"{test_ids[0]}.png"))
    mask = np.asarray(Image.open(data / "masks" / f"{test_ids[0]}.png")) > 0
    assert labels.shape == mask.shape and (labels[~mask] == 0).all()
    assert set(np.unique(labels[mask])) <= {1, 2, 3}
    info = json.loads((km / "baseline_info.json").read_text())
    assert info["baseline"] == "kmeans" and info["parts"] == 3 and info["pretrained"] is False
    out = flow["root"] / "eval_km.json"
    capsys.readouterr()
    assert cli(f"evaluate --predictions {km} --data {data} --json {out} --quiet") == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert METRIC_KEYS <= set(result) and result["n_images"] == len(test_ids)
    assert f"fg_nmi={result['fg_nmi']:.2f}" in printed


def test_predict_with_and_without_masks(flow, evaluated_run, capsys):
    data, run = flow["data"], flow["run"]
    with_masks, without = flow["root"] / "pred_masks", flow["root"] / "pred_nomasks"
    predict = f"predict --run {run} --images {data / 'images'} --device cpu --quiet"
    assert cli(predict, "--masks", str(data / "masks"), "--out", str(with_masks), "--batch-size", "4") == 0
    capsys.readouterr()
    assert cli(predict, "--out", str(without)) == 0
    warned = (
        capsys.readouterr().err
    )  # one line like the errors, not Python's FILE:LINE: UserWarning and source
    assert (
        "partdiscovery predict: warning: no --masks given and the model has no learned background" in warned
    )
    assert "UserWarning" not in warned and "predict_folder(" not in warned
    assert f"partdiscovery masks --images {data / 'images'} --out MASKS) and pass --masks MASKS" in warned
    ids = sorted(p.stem for p in (data / "images").glob("*.jpg"))
    for out in (with_masks, without):
        assert sorted(p.stem for p in (out / "labels").glob("*.png")) == ids
        assert sorted(p.stem for p in (out / "overlays").glob("*.png")) == ids
    for image_id in ids:
        mask = np.asarray(Image.open(data / "masks" / f"{image_id}.png")) > 0
        masked = np.asarray(Image.open(with_masks / "labels" / f"{image_id}.png"))
        unmasked = np.asarray(Image.open(without / "labels" / f"{image_id}.png"))
        assert masked.shape == mask.shape == unmasked.shape
        assert (masked[~mask] == 0).all() and (masked[mask] > 0).all()
        assert (unmasked > 0).all()
        assert np.array_equal(masked[mask], unmasked[mask])  # the mask only removes the background
        with Image.open(with_masks / "overlays" / f"{image_id}.png") as im:
            # The photo with its parts drawn, then the legend (part -> colour) below it.
            assert im.mode == "RGB" and im.width == mask.shape[1] and im.height > mask.shape[0]
    # --max-side: labels at the photo's size, overlays at the smaller size.
    small = flow["root"] / "pred_small"
    assert cli(predict, "--masks", str(data / "masks"), "--out", str(small), "--max-side", "16") == 0
    mask = np.asarray(Image.open(data / "masks" / f"{ids[0]}.png")) > 0
    labels = np.asarray(Image.open(small / "labels" / f"{ids[0]}.png"))
    assert labels.shape == mask.shape and np.array_equal(labels > 0, mask)
    with Image.open(small / "overlays" / f"{ids[0]}.png") as im:
        assert im.width == 16 < im.height  # the (square) photo at 16 px, the legend below it
    with pytest.raises(SystemExit):
        cli(predict, "--out", str(small), "--max-side", "-1")
    assert "--max-side: must be in 0..1000000, got -1" in capsys.readouterr().err
    # --part-names: the legend and OUT/parts.json name the parts; a wrong count is one line, nothing written.
    named = flow["root"] / "pred_named"
    assert (
        cli(
            predict,
            "--masks",
            str(data / "masks"),
            "--out",
            str(named),
            "--part-names",
            "head",
            "body",
            "tail",
        )
        == 0
    )
    assert json.loads((named / "parts.json").read_text()) == {
        "names": {"1": "head", "2": "body", "3": "tail"}
    }
    assert json.loads((with_masks / "parts.json").read_text())["names"]["3"] == "part 3"
    line = one_line_error(
        capsys, predict, "--out", str(flow["root"] / "pred_two"), "--part-names", "head", "tail"
    )
    assert "the model has 3 parts" in line and not (flow["root"] / "pred_two").exists()
    # The saved labels score exactly as evaluating the run directly.
    out = flow["root"] / "eval_pred.json"
    assert cli(f"evaluate --predictions {with_masks / 'labels'} --data {data} --json {out} --quiet") == 0
    result = json.loads(out.read_text())
    for key in ("fg_nmi", "fg_ari", "nmi", "ari", "n_images"):
        assert result[key] == pytest.approx(evaluated_run[key], abs=1e-9)


def one_line_error(capsys, command: str, *extra: str) -> str:
    capsys.readouterr()
    code = cli(command, *extra)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"partdiscovery {command.split()[0]}: error: ")
    return lines[0]


def test_bad_inputs_exit_2_with_one_line_naming_the_problem(tmp_path, capsys, flow):
    data, run = flow["data"], flow["run"]
    missing = tmp_path / "no_such_data"
    line = one_line_error(capsys, f"train --data {missing} --out {tmp_path / 'r'} --no-pretrained", *TINY)
    assert str(missing) in line
    assert not (tmp_path / "r").exists()

    line = one_line_error(capsys, f"evaluate --run {run} --data foo:bar --device cpu")
    assert "foo:bar" in line and "unknown dataset kind" in line

    line = one_line_error(capsys, f"train --data {data} --out {tmp_path / 'r2'} model.no_such_key=1")
    assert "model.no_such_key" in line

    line = one_line_error(capsys, f"train --data {data} --out {tmp_path / 'r3'} train.steps=many")
    assert "train.steps" in line

    line = one_line_error(capsys, f"evaluate --data {data}")
    assert "--run" in line and "--predictions" in line

    line = one_line_error(capsys, f"evaluate --predictions {tmp_path / 'nopred'} --data {data}")
    assert str(tmp_path / "nopred") in line

    line = one_line_error(
        capsys, f"predict --run {tmp_path / 'norun'} --images {data / 'images'} --out {tmp_path / 'p'}"
    )
    assert str(tmp_path / "norun") in line

    line = one_line_error(capsys, f"synth --out {data / 'images'} --n 2")
    assert str(data / "images") in line


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", "x"])  # --out is required
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["nonsense"])
    assert info.value.code == 2


def test_console_script_is_declared():
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'partdiscovery = "partdiscovery.cli.main:main"' in text


def test_baseline_uses_the_presets_phi_and_input_size(flow):
    """k-means compared with a method must see the method's φ: --preset and --set choose it."""
    data, out = flow["data"], flow["root"] / "kmeans_lite1"
    config = flow["root"] / "phi.yaml"  # the YAML file a run was trained with: the same φ for its baseline
    config.write_text("model:\n  feature_extractor: efficientnet_lite1\ndata:\n  input_size: 96\n")
    command = (
        f"baseline kmeans --data {data} --out {out} --parts 3 --no-pretrained --quiet --preset photos "
        f"--config {config} --set model.feature_layers=[0,1,1,0] --set data.input_size=64"
    )
    assert cli(command) == 0
    info = json.loads((out / "baseline_info.json").read_text())
    # φ from the file, the input size from --set (which comes after it).
    assert info["feature_extractor"] == "efficientnet_lite1" and info["input_size"] == 64
    assert info["feature_layers"] == [1.0, 1.0]


def test_baseline_scops_trains_then_writes_predictions(flow, capsys):
    data, out = flow["data"], flow["root"] / "scops"
    command = (
        f"baseline scops --data {data} --out {out} --parts 3 --steps 2 --no-pretrained --device cpu --quiet"
    )
    # A config that self-trains longer than --steps (as the photos preset would): --steps are SCOPS's own.
    assert cli(command, "--set", *TINY, "train.self_train_steps=5") == 0
    test_ids = (data / "test.txt").read_text().split()
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(test_ids)
    config = (out / "run" / "config.yaml").read_text()
    assert "method: scops" in config and "num_parts: 3" in config and "input_size: 48" in config
    assert "  steps: 2\n" in config and "self_train_steps: 0" in config
    assert cli(f"evaluate --predictions {out} --data {data} --quiet") == 0
    # The run is not silently replaced; k-means refuses the training-only flags.
    capsys.readouterr()
    assert cli(command, "--set", *TINY) == 2 and "--overwrite" in capsys.readouterr().err
    assert cli(f"baseline kmeans --data {data} --out {out}/km --steps 5 --quiet") == 2
    assert "apply to scops only" in capsys.readouterr().err


def test_rerunning_a_writing_command_needs_overwrite_and_keeps_the_users_files(flow, capsys):
    """predict / baseline / evaluate --json / export / report into their own earlier output."""
    data, run, root = flow["data"], flow["run"], flow["root"]
    pred = root / "rerun_pred"
    predict = f"predict --run {run} --images {data / 'images'} --masks {data / 'masks'} --out {pred} --quiet"
    assert cli(predict) == 0
    (pred / "labels" / "mine.txt").write_text("the user's note")
    first_id = sorted((data / "images").glob("*.jpg"))[0].stem
    line = one_line_error(capsys, predict)
    assert "--overwrite" in line
    assert cli(predict, "--overwrite") == 0
    assert (pred / "labels" / "mine.txt").read_text() == "the user's note"
    # A user's file at one of the names predict writes is never replaced, even with --overwrite.
    manifest = json.loads((pred / ".partdiscovery.json").read_text())
    manifest["files"].remove(f"labels/{first_id}.png")
    (pred / ".partdiscovery.json").write_text(json.dumps(manifest))
    line = one_line_error(capsys, predict, "--overwrite")
    assert f"{first_id}.png" in line and "not written by partdiscovery" in line

    km = root / "rerun_km"
    baseline = f"baseline kmeans --data {data} --out {km} --parts 3 --no-pretrained --input-size 48 --quiet"
    assert cli(baseline) == 0
    assert "--overwrite" in one_line_error(capsys, baseline)
    assert cli(baseline, "--overwrite") == 0

    metrics = root / "rerun_metrics.json"
    evaluate = f"evaluate --predictions {km} --data {data} --json {metrics} --quiet"
    assert cli(evaluate) == 0
    assert "--overwrite" in one_line_error(capsys, evaluate)
    assert cli(evaluate, "--overwrite") == 0

    exported = root / "rerun.safetensors"
    assert cli(f"export {run} --format safetensors --out {exported}") == 0
    assert "--overwrite" in one_line_error(capsys, f"export {run} --format safetensors --out {exported}")
    assert cli(f"export {run} --format safetensors --out {exported} --overwrite") == 0


def test_a_run_folder_in_use_is_refused(flow, tmp_path, capsys):
    from filelock import FileLock

    from partdiscovery.utils.outputs import LOCK

    out = tmp_path / "busy"
    out.mkdir()
    train = (
        f"train --data {flow['data']} --out {out} --steps 1 --parts 3 --no-pretrained --device cpu --quiet"
    )
    with FileLock(out / LOCK, timeout=0, thread_local=False):
        line = one_line_error(capsys, train, *TINY)
    assert "another partdiscovery process" in line
    assert sorted(p.name for p in out.iterdir()) == [LOCK]


def test_training_refuses_a_users_folder_and_leaves_it_as_it_was(flow, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    files = {"config.yaml": "lr: 1\n", "run_info.json": "{}\n", "metrics.csv": "step\n1\n"}
    for name, text in files.items():
        (mine / name).write_text(text)
    for extra in ([], ["--overwrite"], ["--resume"]):
        train = f"train --data {flow['data']} --out {mine} --steps 1 --no-pretrained --device cpu --quiet"
        assert "not written by partdiscovery" in one_line_error(capsys, train, *TINY, *extra)
    assert {p.name: p.read_text() for p in mine.iterdir()} == files


def test_version(capsys):
    from partdiscovery import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"partdiscovery {__version__}"


def test_evaluate_prints_fg_iou_when_it_scored_a_learned_background(capsys):
    from partdiscovery.cli.main import _print_metrics

    _print_metrics(
        {"fg_nmi": 20.0, "fg_ari": 10.0, "nmi": 50.0, "ari": 60.0, "fg_iou": 71.25, "split": "test"}
    )
    assert "fg_iou=71.25" in capsys.readouterr().out


def test_an_interrupted_train_says_how_to_go_on(monkeypatch, capsys):
    import partdiscovery.cli.main as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_train", interrupted)
    assert cli.main(["train", "--data", "D", "--out", "R"]) == 130
    assert "train: interrupted (the same command with --resume goes on" in capsys.readouterr().err


# Every option of a command with a value that is not its default, and what the workflow must receive for it
# (positional arguments by position: None is not checked, a function checks the config).
FLAG_CASES = {
    "predict": (
        "partdiscovery.workflows:predict_folder",
        "--run R --images I --out O --masks M --batch-size 3 --overwrite --amp --refine guided --max-side 50 "
        "--part-names a b --device cpu --quiet",
        ("R", "I", "O", "M"),
        {
            "batch_size": 3,
            "device": "cpu",
            "amp": True,
            "overwrite": True,
            "progress": False,
            "refine": "guided",
        }
        | {"max_side": 50, "part_names": ["a", "b"]},
        {"count": 1, "num_parts": 2, "labels": "L", "overlays": "V"},
    ),
    "evaluate": (
        "partdiscovery.workflows.evaluate:evaluate",
        "--data D --split val --run R --protocol pixel --no-masks --refine guided --device cpu --quiet",
        ("D", "val", "R", None, "cpu", False, "pixel"),
        {"use_masks": False, "refine": "guided"},
        {},
    ),
    "masks": (
        "partdiscovery.workflows:make_masks",
        "--images I --out O --from-run R --threads 3 --device cpu --quiet",
        ("I", "O", None, "cpu", 3),
        {"progress": False, "from_run": "R"},
        {"reused": False, "count": 1, "ms_per_image": 1.0, "fitted_on": 1},
    ),
    "report": (
        "partdiscovery.workflows:write_report",
        "R --data D --out O --split val --max-images 3 --part-names a --overwrite --device cpu --quiet",
        ("R",),
        {"data": "D", "out": "O", "split": "val", "max_images": 3, "part_names": ["a"], "device": "cpu"}
        | {"progress": False, "overwrite": True},
        "O",
    ),
    "demo": (
        "partdiscovery.workflows:run_demo",
        "--out O --steps 3 --n 5 --overwrite --quiet",
        ("O",),
        {"steps": 3, "n": 5, "overwrite": True, "quiet": True},
        {},
    ),
    "train": (
        "partdiscovery.workflows:run_training",
        "--data D --out O --masks M --resume --overwrite --holdout-val --parts 3 --steps 7 --seed 5 --no-pretrained "
        "--device cpu --quiet",
        (
            lambda cfg: (
                (cfg.model.num_parts, cfg.train.steps, cfg.train.seed, cfg.model.pretrained)
                == (3, 7, 5, False)
            ),
            "D",
            "O",
            "cpu",
            True,
            True,
            True,
        ),
        {"split": "train_minus_val", "images": None, "masks": "M"},
        {"steps_this_session": 0, "steps": 1},
    ),
    "baseline": (
        "partdiscovery.workflows.baseline:run_baseline",
        "kmeans --data D --out O --parts 3 --input-size 64 --split val --seed 2 --masks M --overwrite --no-pretrained "
        "--preset paper --device cpu --quiet",
        ("kmeans", "D", "O", 3, lambda cfg: cfg.model.pretrained is False and cfg.optim.optimizer == "sgd"),
        {"input_size": 64, "split": "val", "seed": 2, "device": "cpu", "progress": False, "overwrite": True}
        | {"masks": "M"},
        "O",
    ),
}


@pytest.mark.parametrize("command", sorted(FLAG_CASES))
def test_every_option_reaches_the_workflow(command, monkeypatch, capsys):
    """The workflow itself is replaced by a recorder: an option that is parsed but not passed on (or passed as its
    default) fails here, where the end-to-end tests above, which use few options, would not notice."""
    target, line, positional, keywords, returned = FLAG_CASES[command]
    module, name = target.split(":")
    calls = []
    monkeypatch.setattr(
        importlib.import_module(module), name, lambda *a, **k: calls.append((a, k)) or returned
    )
    assert main([command, *line.split()]) == 0, capsys.readouterr().err
    [(args, kwargs)] = calls
    assert len(args) == len(positional)
    for value, expected in zip(args, positional):
        assert expected is None or (expected(value) if callable(expected) else value == expected), (
            value,
            expected,
        )
    assert {k: kwargs[k] for k in keywords} == keywords
