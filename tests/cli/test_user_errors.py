"""Every command, walked with invalid values of each of its arguments, as a new user would type them.

Each case must end in exactly one line on standard error (``partdiscovery COMMAND: error: ...``), exit
status 2, and leave every file of the workspace (the user's own files, a dataset, a finished run, an
earlier synthetic set and export) byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from partdiscovery.cli.main import main
from partdiscovery.data.synth import generate_synthetic_dataset

pytestmark = pytest.mark.filterwarnings("ignore:.*uses random weights:UserWarning")

TINY = ["data.input_size=48", "model.decoder_channels=16", "train.batch_size=2"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_dataset, tiny_run) -> Path:
    """A folder holding everything a user might point a command at by mistake."""
    w = tmp_path_factory.mktemp("workspace")
    shutil.copytree(tiny_dataset, w / "data")
    shutil.copytree(tiny_run, w / "run")
    user = w / "user"  # a folder of the user's own that looks like a run
    user.mkdir()
    (user / "config.yaml").write_text("my: settings\n", encoding="utf-8")
    (user / "run_info.json").write_text('{"mine": true}\n', encoding="utf-8")
    (user / "metrics.csv").write_text("step,loss\n1,0.5\n", encoding="utf-8")
    (user / "notes.html").write_text("<html>my notes</html>\n", encoding="utf-8")
    (w / "a_file.txt").write_text("not a folder\n", encoding="utf-8")
    (w / "bad_method.yaml").write_text("method: nope\n", encoding="utf-8")
    (w / "a_folder").mkdir()
    (w / "a_folder" / "keep.txt").write_text("keep\n", encoding="utf-8")
    (w / "empty").mkdir()
    (w / "model.safetensors").write_bytes(b"the user's own weights")
    (w / "metrics.json").write_text('{"mine": 1}\n', encoding="utf-8")
    generate_synthetic_dataset(w / "prev_synth", n=2, num_parts=3, size=32)
    dup = w / "dup_images"  # one image id, two files
    dup.mkdir()
    Image.new("RGB", (40, 40), "red").save(dup / "a.jpg")
    Image.new("RGB", (40, 40), "blue").save(dup / "a.png")
    dup_data = w / "dup_data"  # a dataset whose first training id has two image files
    shutil.copytree(tiny_dataset, dup_data)
    first = (dup_data / "train.txt").read_text().split()[0]
    Image.open(dup_data / "images" / f"{first}.jpg").save(dup_data / "images" / f"{first}.png")
    return w


def checksums(*roots: Path) -> dict[str, str]:
    """sha256 of every file and a marker for every folder under ``roots``."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            key = str(path)
            found[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _cases() -> list[tuple[str, str]]:
    """(command line with W for the workspace, text the error line must contain)."""
    train = "train --data W/data --no-pretrained --quiet --device cpu --out"
    ev = "evaluate --run W/run --data W/data --device cpu --quiet"
    km = "baseline kmeans --data W/data --no-pretrained --quiet --device cpu"
    pr = "predict --run W/run --images W/data/images --device cpu --quiet"
    cases = [
        # train: where the data comes from
        ("train --images W/nowhere --no-pretrained --quiet --device cpu --out W/t", "nowhere"),
        ("train --data W/data --images W/data/images --quiet --device cpu --out W/t", "exactly one of"),
        ("train --data W/data --masks W/nowhere --quiet --device cpu --out W/t", "nowhere"),
        ("train --images W/data/images --holdout-val --quiet --device cpu --out W/t", "--holdout-val"),
        # masks
        ("masks --images W/nowhere --out W/m --quiet", "nowhere"),
        ("masks --images W/data/images --out W/m --threads -1 --quiet", "--threads"),
        ("masks --images W/data/images --out W/m --device banana --quiet", "banana"),
        ("masks --images W/data/images --out W/m --quiet model.num_parts=3", "foreground.key=value"),
        ("masks --images W/data/images --out W/m --from-run W/run --quiet", "no learned background"),
        ("masks --images W/data/images --out W/m --from-run W/nowhere --quiet", "nowhere"),
        # synth
        ("synth --out W/s --n 1", "--n"),
        ("synth --out W/s --n many", "--n"),
        ("synth --out W/s --parts 0", "--parts"),
        ("synth --out W/s --parts 13", "--parts"),
        ("synth --out W/s --size 8", "--size"),
        ("synth --out W/s --seed -1", "--seed"),
        ("synth --out W/prev_synth --n 2 --size 32", "--overwrite"),
        ("synth --out W/user --n 2 --size 32", "not written by partdiscovery"),
        ("synth --out W/user --n 2 --size 32 --overwrite", "not written by partdiscovery"),
        ("synth --out W/run --n 2 --size 32 --overwrite", "holds a partdiscovery run"),
        ("synth --out W/a_file.txt --n 2 --size 32", "not a folder"),
        ("synth --out W/a_file.txt/sub --n 2 --size 32", "is a file"),
        # train: numbers and config values
        (f"{train} W/r --parts 0", "--parts"),
        (f"{train} W/r --parts -3", "--parts"),
        (f"{train} W/r --parts 1", "at least 2"),
        (f"{train} W/r --parts 10000", "--parts"),
        (f"{train} W/r --parts three", "--parts"),
        (f"{train} W/r --steps 0", "--steps"),
        (f"{train} W/r --steps -1", "--steps"),
        (f"{train} W/r --seed -5", "--seed"),
        (f"{train} W/r train.batch_size=0", "train.batch_size"),
        (f"{train} W/r train.batch_size=1", "at least 2 images"),
        (f"{train} W/r model.num_parts=1", "model.num_parts"),
        (f"{train} W/r optim.lr=-1", "optim.lr"),
        (f"{train} W/r optim.lr=.nan", "optim.lr"),
        (f"{train} W/r optim.optimizer=adamw", "optim.optimizer"),
        (f"{train} W/r data.input_size=8", "data.input_size"),
        (f"{train} W/r data.crop_scale=[0.9,0.2]", "data.crop_scale"),
        (f"{train} W/r model.backbone=resnet9000", "resnet9000"),
        (f"{train} W/r method=magic", "magic"),
        (f"{train} W/r train.steps", "section.key=value"),
        (f"{train} W/r optim.lr=abc optim.lr=1e-3", "optim.lr is set twice"),
        (f"{train} W/r --steps 2 train.steps=abc", "--steps and 'train.steps=abc' both set train.steps"),
        (f"{train} W/r --parts 3 model.num_parts=5", "--parts and 'model.num_parts=5' both set"),
        (
            "baseline scops --data W/data --out W/k --quiet --steps 2 --set train.steps=3",
            "--steps and 'train.steps=3'",
        ),
        (
            "masks --images W/data/images --out W/m --quiet foreground.clusters=3 foreground.clusters=4",
            "set twice",
        ),
        (f"{train} W/r model.no_such_key=1", "model.no_such_key"),
        (f"{train} W/r --config W/missing.yaml", "missing.yaml"),
        (f"{train} W/r --config W/a_file.txt", "mapping of sections"),
        (f"{train} W/r --config W/bad_method.yaml", "bad_method.yaml: unknown method 'nope'"),
        (f"{train} W/r --config W/a_folder", "cannot read config"),
        (f"{train} W/r --config W/data/images", "cannot read config"),
        (f"{train} W/r --preset huge", "--preset"),
        (f"{train} W/r --device banana", "banana"),
        (f"{train} W/r --device cuda:7", "cuda:7"),
        # train: data and output paths
        ("train --data W/nothing --no-pretrained --out W/r", "W/nothing"),
        ("train --data W/dup_data --no-pretrained --device cpu --out W/r", "ambiguous"),
        (f"{train} W/user", "not written by partdiscovery"),
        (f"{train} W/user --overwrite", "not written by partdiscovery"),
        (f"{train} W/a_folder --resume", "not written by partdiscovery"),
        (f"{train} W/a_file.txt", "not a folder"),
        (f"{train} W/a_file.txt/run", "is a file"),
        (f"{train} W/data", "inside the dataset folder"),
        (f"{train} W/data/runs/r", "inside the dataset folder"),
        (f"{train} W/run", "--overwrite"),
        (f"{train} W/run --resume --overwrite", "not both"),
        (f"{train} W/prev_synth --overwrite", "holds a partdiscovery synthetic dataset"),
        # evaluate
        (f"{ev} --json W/a_folder", "is a folder"),
        (f"{ev} --json W/metrics.json", "--overwrite"),
        (f"{ev} --json W/metrics.json --overwrite", "not a partdiscovery metrics JSON"),
        (f"{ev} --json W/user/config.yaml --overwrite", "not a partdiscovery metrics JSON"),
        (f"{ev} --json W/data/metrics.json", "inside the dataset folder"),
        (f"{ev} --json W/a_file.txt/m.json", "is a file"),
        (f"{ev} --protocol best", "--protocol"),
        (f"{ev} --split nosuchsplit", "nosuchsplit"),
        ("evaluate --data W/data", "--predictions"),
        ("evaluate --run W/user --data W/data --device cpu", "is not a run folder"),
        ("evaluate --run W/run/checkpoints --data W/data --device cpu", "give the run folder"),
        ("evaluate --predictions W/empty --data W/data", "no prediction"),
        ("evaluate --run W/run --data foo:bar --device cpu", "unknown dataset kind"),
        ("evaluate --run W/run --data W/data --device banana", "banana"),
        (f"{ev} --refine crf", "--refine"),
        # baseline
        (f"{km} --out W/k --parts 0", "--parts"),
        (f"{km} --out W/k --parts 1", "at least 2"),
        (f"{km} --out W/k --parts 65", "--parts"),
        (f"{km} --out W/k --input-size 0", "--input-size"),
        (f"{km} --out W/k --seed -1", "--seed"),
        (f"{km} --out W/k --steps 5", "apply to scops only"),
        (f"{km} --out W/user", "not written by partdiscovery"),
        (f"{km} --out W/user --overwrite", "not written by partdiscovery"),
        (f"{km} --out W/a_file.txt", "not a folder"),
        (f"{km} --out W/data", "inside the dataset folder"),
        (f"{km} --out W/data/km", "inside the dataset folder"),
        (f"{km} --out W/run --overwrite", "holds a partdiscovery run"),
        (f"{km} --out W/k --split nosuchsplit", "nosuchsplit"),
        ("baseline kmeans --data W/data --out W/k --device banana", "banana"),
        ("baseline best --data W/data --out W/k", "invalid choice"),
        ("baseline scops --data W/data --out W/k --parts 1 --no-pretrained", "at least 2"),
        ("baseline scops --data W/data --out W/k --set model.num_parts=6", "give --parts instead"),
        (
            "baseline kmeans --data W/data --out W/k --input-size 64 --set data.input_size=64",
            "give --input-size",
        ),
        ("baseline scops --data W/data --out W/k --steps 0 --no-pretrained", "--steps"),
        ("baseline scops --data W/data --out W/user --no-pretrained", "not written by partdiscovery"),
        ("baseline scops --data W/data --out W/k --preset huge", "--preset"),
        (f"{km} --out W/k --masks W/no_masks_here", "no_masks_here: mask folder does not exist"),
        (
            "baseline scops --data W/data --out W/k --no-pretrained --set train.batch_size=0",
            "train.batch_size",
        ),
        ("baseline scops --data W/data --out W/k --no-pretrained --set loss.nope=1", "loss.nope"),
        (f"{km} --out W/k --set model.nope=3", "model.nope"),
        (f"{km} --out W/k --config W/missing.yaml", "missing.yaml"),
        (f"{km} --out W/k --config W/a_file.txt", "mapping of sections"),
        (
            "baseline --data W/data --out W/k --set data.input_size=64 kmeans",
            "give positional arguments before --set",
        ),
        (f"{km} --out W/k --set model.feature_layers=[1]", "feature_layers"),
        # predict
        (f"{pr} --out W/a_file.txt", "not a folder"),
        (f"{pr} --out W/user", "not written by partdiscovery"),
        (f"{pr} --out W/a_folder --overwrite", "not written by partdiscovery"),
        (f"{pr} --out W/data/images/seg", "inside the image folder"),
        (f"{pr} --out W/p --masks W/data/masks/x", "W/data/masks/x"),
        (f"{pr} --out W/p --batch-size 0", "--batch-size"),
        (f"{pr} --out W/p --device banana", "banana"),
        ("predict --run W/run --images W/dup_images --out W/p --device cpu", "ambiguous"),
        ("predict --run W/nope --images W/data/images --out W/p --device cpu", "W/nope"),
        ("predict --run W/run --images W/nope --out W/p --device cpu", "W/nope"),
        (f"{pr} --out W/p --refine crf", "--refine"),
        (f"{pr} --out W/p --max-side -5", "--max-side"),
        (f"{pr} --out W/p --part-names head tail", "--part-names): the model has 3 parts"),
        # export
        ("export W/run --format safetensors --out W/a_folder", "is a folder"),
        ("export W/run --format safetensors --out W/model.safetensors", "--overwrite"),
        ("export W/run --format safetensors --out W/model.safetensors --overwrite", "not a partdiscovery"),
        ("export W/run --format onnx --out W/model.safetensors", "extension"),
        ("export W/run --format torchscript --out W/m.onnx", "extension"),
        ("export W/run --format pickle --out W/m.pkl", "--format"),
        ("export W/nope --format safetensors --out W/m.safetensors", "W/nope"),
        ("export W/run --format safetensors --out W/a_file.txt/m.safetensors", "is a file"),
        # report
        ("report W/empty", "not a run folder"),
        ("report W/a_folder", "not a run folder"),
        ("report W/user", "not a run folder written by partdiscovery"),
        ("report W/nope", "W/nope"),
        ("report W/run --out W/a_folder", "is a folder"),
        ("report W/run --out W/user/notes.html", "--overwrite"),
        ("report W/run --out W/user/notes.html --overwrite", "not a partdiscovery report"),
        ("report W/run --out W/data/report.html --data W/data --device cpu", "inside the dataset folder"),
        ("report W/run --max-images -1", "--max-images"),
        ("report W/run --out W/r.html --part-names a b c", "need a dataset (--data)"),
        ("report W/run --out W/r.html --data W/data --device cpu --part-names a b", "the model has 3 parts"),
        ("report W/run --data W/data --split nosuchsplit --device cpu --out W/r.html", "nosuchsplit"),
        ("report W/run --data W/nothing --device cpu --out W/r.html", "W/nothing"),
        ("report W/run --device banana", "banana"),
        # demo
        ("demo --out W/user", "not written by partdiscovery"),
        ("demo --out W/a_file.txt", "not a folder"),
        ("demo --out W/run", "holds a partdiscovery run"),
        ("demo --out W/d --steps 0", "--steps"),
        ("demo --out W/d --n 1", "--n"),
    ]
    if not torch.cuda.is_available():
        cases.append((f"{train} W/r --device cuda", "CUDA is not available"))
    if Path("/proc/self").is_dir():
        cases.append((f"{train} /proc/partdiscovery-run", "cannot create"))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("command", "expected"), CASES, ids=[c for c, _ in CASES])
def test_one_line_exit_2_and_nothing_written(workspace, capsys, command, expected):
    argv = [part.replace("W/", f"{workspace}/") for part in command.split()]
    expected = expected.replace("W/", f"{workspace}/")
    before = checksums(workspace)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"partdiscovery {argv[0]}: error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err
    assert checksums(workspace) == before


def test_every_command_and_every_option_is_walked():
    """Each subcommand's options appear in at least one case above, so a new option needs a case."""
    from partdiscovery.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    walked = " ".join(c for c, _ in CASES)
    exempt = {"--help", "--quiet", "--no-pretrained", "--amp", "--no-masks", "--resume", "--overwrite"}
    for name, subparser in sub.choices.items():
        commands = [c for c, _ in CASES if c.split()[0] == name]
        assert commands, f"no case for {name}"
        options = {o for a in subparser._actions for o in a.option_strings if o.startswith("--")}
        missing = [o for o in sorted(options - exempt) if not any(f" {o} " in f" {c} " for c in commands)]
        assert not missing, f"{name}: no invalid-value case for {missing}"
    assert walked


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only user errors become one line: an unexpected ValueError inside a command propagates."""
    import partdiscovery.cli.main as cli

    def broken(args):
        raise ValueError("a bug")

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "export", broken))
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["export", "x", "--format", "onnx", "--out", "y.onnx"])


def _with_func(parser, command, func):
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices[command].set_defaults(func=func)
    return parser
