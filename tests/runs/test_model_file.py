"""One loader for every model source: run folder, checkpoint, .safetensors, .onnx."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import pytest
import torch

from partdiscovery.config import Config, DataConfig, ModelConfig
from partdiscovery.errors import CheckpointError, PartDiscoveryError
from partdiscovery.export import export_model
from partdiscovery.models import PartSegmentationNet
from partdiscovery.runs.checkpoint import checkpoint_path, save_checkpoint
from partdiscovery.runs.model_file import build_net, config_text, model_config, read_model_file, resolve_run


@pytest.fixture(scope="module")
def cfg() -> Config:
    model = ModelConfig(num_parts=3, pretrained=False, decoder_channels=16, learned_background=True)
    return Config(data=DataConfig(input_size=32), model=model)


@pytest.fixture(scope="module")
def run(cfg, tmp_path_factory):
    """A run folder with checkpoints at steps 1 and 2 of a random f (step 2's weights differ)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = PartSegmentationNet(cfg.model)
    folder = tmp_path_factory.mktemp("model_file") / "run"
    for step in (1, 2):
        with torch.no_grad():
            net.classifier.weight.fill_(step)
        state = {"net." + k: v.clone() for k, v in net.state_dict().items()}
        save_checkpoint(
            checkpoint_path(folder, step), {"model": state, "config": cfg.to_dict(), "step": step}
        )
    return folder, net


def test_a_run_folder_is_its_newest_checkpoint(run, cfg):
    folder, net = run
    model = read_model_file(folder)
    assert (model.kind, model.source, model.cfg, model.runtime) == (
        "checkpoint",
        checkpoint_path(folder, 2),
        cfg,
        None,
    )
    assert model.state.keys() == net.state_dict().keys()  # f's own keys: no "net." prefix
    assert float(model.state["classifier.weight"].flatten()[0]) == 2.0
    older = read_model_file(checkpoint_path(folder, 1))
    assert (
        older.source == checkpoint_path(folder, 1)
        and float(older.state["classifier.weight"].flatten()[0]) == 1.0
    )
    assert model_config(folder) == model_config(checkpoint_path(folder, 1)) == cfg


def test_exports_read_as_the_run(run, cfg, tmp_path):
    folder, _ = run
    from_run = read_model_file(folder)
    exported = read_model_file(export_model(folder, "safetensors", tmp_path / "m.safetensors"))
    assert (exported.kind, exported.cfg) == ("safetensors", cfg)
    assert exported.state.keys() == from_run.state.keys()
    assert all(torch.equal(v, from_run.state[k]) for k, v in exported.state.items())
    assert model_config(tmp_path / "m.safetensors") == cfg


def test_an_export_without_its_suffix_is_read_by_its_content_and_torchscript_is_refused_clearly(
    run, cfg, tmp_path
):
    folder, _ = run
    export_model(folder, "safetensors", tmp_path / "m.safetensors").rename(tmp_path / "m_noext")
    assert (read_model_file(tmp_path / "m_noext").kind, model_config(tmp_path / "m_noext")) == (
        "safetensors",
        cfg,
    )
    export_model(folder, "torchscript", tmp_path / "m.pt")
    for read in (read_model_file, model_config):
        with pytest.raises(CheckpointError, match=r"m\.pt: is a TorchScript export, for your own code"):
            read(tmp_path / "m.pt")


def test_onnx_reads_as_a_runtime(run, cfg, tmp_path):
    pytest.importorskip("onnxruntime")
    path = export_model(run[0], "onnx", tmp_path / "m.onnx")
    model = read_model_file(path)
    assert (model.kind, model.cfg, model.state) == ("onnx", cfg, None) and model.runtime is not None
    assert model_config(path) == cfg


def test_missing_and_mismatched_sources(run, cfg, tmp_path):
    with pytest.raises(CheckpointError, match="no such run folder"):
        read_model_file(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="exported model does not exist"):
        read_model_file(tmp_path / "nothing.safetensors")
    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_parts=5))
    with pytest.raises(
        CheckpointError, match=r"x.pt: weights do not match the model in its config \(size mismatch for"
    ):
        build_net(other, read_model_file(run[0]).state, "x.pt")
    # Loaded strictly: a tensor missing from the file would otherwise stay at its random init, silently.
    state = {k: v for k, v in read_model_file(run[0]).state.items() if k != "classifier.weight"}
    with pytest.raises(
        CheckpointError, match=r"x.pt: weights do not match .*Missing key.*classifier\.weight"
    ):
        build_net(cfg, state, "x.pt")


def test_resolve_run(run, tmp_path):
    folder, _ = run
    assert resolve_run(folder) == (folder, folder)
    assert resolve_run(checkpoint_path(folder, 1)) == (folder, checkpoint_path(folder, 1))
    export = export_model(folder, "safetensors", tmp_path / "m.safetensors")
    assert resolve_run(export) == (tmp_path, export)
    (tmp_path / "photos").mkdir()
    with pytest.raises(PartDiscoveryError, match="not a run folder"):
        resolve_run(tmp_path / "photos")
    with pytest.raises(PartDiscoveryError, match="no such run folder"):
        resolve_run(tmp_path / "nothing")


def test_config_text(run, cfg, tmp_path):
    folder, _ = run
    assert config_text(folder, folder) == cfg.to_yaml()  # no config.yaml: the checkpoint's
    (tmp_path / "config.yaml").write_text("the run's own: yes\n")
    assert config_text(tmp_path, checkpoint_path(folder, 1)) == "the run's own: yes\n"
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert config_text(tmp_path / "empty", tmp_path / "junk.pt") is None


def test_runs_does_not_import_training():
    code = (
        "import sys, partdiscovery.runs, partdiscovery.segmenter; "
        "print(sorted(m for m in sys.modules if m.startswith(('partdiscovery.training', 'partdiscovery.export'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
