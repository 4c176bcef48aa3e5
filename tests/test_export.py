"""Export: safetensors / ONNX / TorchScript round trips of a tiny random model, and bad files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from partdiscovery import PartSegmenter
from partdiscovery.config import Config, DataConfig, ModelConfig
from partdiscovery.errors import CheckpointError, InvalidArgumentError, PartDiscoveryError
from partdiscovery.export import ExportWrapper, export_model, list_export_formats
from partdiscovery.models import PartSegmentationNet
from partdiscovery.runs.checkpoint import checkpoint_path, save_checkpoint
from partdiscovery.runs.exported import exported_config, load_safetensors

K = 3
SIZE = 64


@pytest.fixture(scope="module")
def tiny_cfg() -> Config:
    # A learned background exercises the (K+1)-channel output of the exported function.
    model = ModelConfig(num_parts=K, pretrained=False, decoder_channels=16, learned_background=True)
    return Config(data=DataConfig(input_size=SIZE), model=model)


@pytest.fixture(scope="module")
def fake_run(tiny_cfg, tmp_path_factory) -> Path:
    """A run folder holding one checkpoint of a random f with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = PartSegmentationNet(tiny_cfg.model)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    run = tmp_path_factory.mktemp("export") / "run"
    payload = {
        "model": {"net." + k: v for k, v in net.state_dict().items()},
        "config": tiny_cfg.to_dict(),
        "step": 1,
        "optimizer": {},
        "schedule": {},
    }
    save_checkpoint(checkpoint_path(run, 1), payload)
    return run


@pytest.fixture(scope="module")
def reference(fake_run):
    """The run loaded as PyTorch, a fixed batch and its logits from the export wrapper."""
    seg = PartSegmenter.load(fake_run, device="cpu")
    images = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = ExportWrapper(seg.net).eval()(images)
    assert logits.shape == (3, K + 1, SIZE, SIZE)
    return seg, images, logits


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_safetensors_round_trip(fake_run, tiny_cfg, reference, tmp_path):
    seg, images, _ = reference
    out = export_model(fake_run, "safetensors", tmp_path / "model.safetensors")
    assert out == tmp_path / "model.safetensors" and _no_temp_files(tmp_path)
    cfg, state = load_safetensors(out)
    assert cfg == tiny_cfg and exported_config(out) == tiny_cfg
    assert not any(k.startswith("net.") for k in state)
    for name, value in seg.net.state_dict().items():
        assert torch.equal(state[name], value), name

    loaded = PartSegmenter.load(out, device="cpu")
    assert loaded.cfg == tiny_cfg
    assert torch.equal(loaded.predict_proba(images), seg.predict_proba(images))
    image = (images[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert np.array_equal(loaded.predict(image), seg.predict(image))
    # Exporting an export gives the same weights and config.
    again = export_model(out, "safetensors", tmp_path / "again.safetensors")
    again_cfg, again_state = load_safetensors(again)
    assert again_cfg == tiny_cfg and again_state.keys() == state.keys()
    assert all(torch.equal(again_state[k], v) for k, v in state.items())


def test_onnx_matches_pytorch(fake_run, tiny_cfg, reference, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    _, images, logits = reference
    out = export_model(fake_run, "onnx", tmp_path / "model.onnx")
    assert _no_temp_files(tmp_path)
    model = onnx.load(str(out))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["format"] == "partdiscovery" and json.loads(props["config"]) == tiny_cfg.to_dict()
    assert exported_config(out) == tiny_cfg

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for batch in (images, images[:1]):  # the batch axis is dynamic
        (got,) = session.run(["logits"], {"images": batch.numpy()})
        assert got.shape == (batch.shape[0], K + 1, SIZE, SIZE)
        np.testing.assert_allclose(got, logits[: batch.shape[0]].numpy(), atol=1e-4, rtol=0)


def test_torchscript_matches_pytorch(fake_run, tiny_cfg, reference, tmp_path):
    _, images, logits = reference
    out = export_model(fake_run, "torchscript", tmp_path / "model.pt")
    assert _no_temp_files(tmp_path)
    extra = {"config.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in recent PyTorch
        module = torch.jit.load(str(out), map_location="cpu", _extra_files=extra)
    assert json.loads(extra["config.json"]) == tiny_cfg.to_dict()
    with torch.no_grad():
        got = module(images)
    torch.testing.assert_close(got, logits, atol=1e-5, rtol=0)
    assert exported_config(out) == tiny_cfg


def test_truncated_export_and_wrong_weights(fake_run, tmp_path):
    out = export_model(fake_run, "safetensors", tmp_path / "model.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        PartSegmenter.load(truncated, device="cpu")


def test_formats_are_registered_and_an_unknown_one_lists_them(fake_run, tmp_path):
    assert list_export_formats() == ["onnx", "safetensors", "torchscript"]
    with pytest.raises(
        PartDiscoveryError, match="unknown export format 'tflite'; choose one of: onnx, safetensors"
    ):
        export_model(fake_run, "tflite", tmp_path / "model.tflite")
    assert not (tmp_path / "model.tflite").exists()


def test_an_onnx_model_is_not_exported_again(fake_run, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx_file = export_model(fake_run, "onnx", tmp_path / "model.onnx")
    with pytest.raises(PartDiscoveryError, match="ONNX model cannot be exported again"):
        export_model(onnx_file, "safetensors", tmp_path / "model.safetensors")


def test_segmenter_runs_the_onnx_export_with_onnxruntime(fake_run, tmp_path):
    pytest.importorskip("onnxruntime")
    out = export_model(fake_run, "onnx", tmp_path / "model.ONNX")  # the extension in any case
    eager, fast = PartSegmenter.load(fake_run, device="cpu"), PartSegmenter.load(out)
    images = torch.rand(2, 3, 50, 70)
    torch.testing.assert_close(fast.predict_proba(images), eager.predict_proba(images), atol=1e-4, rtol=0)
    assert fast.has_learned_background and fast.num_parts == eager.num_parts
    # The device is checked as for any model file (it was ignored); a GPU that exists is warned about, not used.
    if not torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="CUDA is not available"):
            PartSegmenter.load(out, device="cuda")
    else:
        with pytest.warns(UserWarning, match="runs on the CPU"):
            assert PartSegmenter.load(out, device="cuda").device.type == "cpu"


def test_an_existing_file_is_replaced_only_with_overwrite_and_only_when_it_is_an_export(fake_run, tmp_path):
    from partdiscovery.errors import OutputPathError

    out = export_model(fake_run, "safetensors", tmp_path / "model.safetensors")
    first_cfg, first_state = load_safetensors(out)
    with pytest.raises(OutputPathError, match="--overwrite"):
        export_model(fake_run, "safetensors", out)
    # An older export of ours with other weights: had the overwrite left the file alone, its zeros would show.
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(out), "pt") as handle:
        metadata = handle.metadata()
    save_file({k: torch.zeros_like(v) for k, v in first_state.items()}, str(out), metadata=metadata)
    assert export_model(fake_run, "safetensors", out, overwrite=True) == out
    cfg, state = load_safetensors(out)  # the model, exported again over the older export
    assert cfg == first_cfg and all(torch.equal(state[k], v) for k, v in first_state.items())
    theirs = tmp_path / "theirs.safetensors"
    theirs.write_bytes(b"someone's weights")
    with pytest.raises(OutputPathError, match="not a partdiscovery exported model"):
        export_model(fake_run, "safetensors", theirs, overwrite=True)
    assert theirs.read_bytes() == b"someone's weights"
    with pytest.raises(OutputPathError, match="is a folder"):
        export_model(fake_run, "safetensors", tmp_path)


@pytest.mark.parametrize(
    ("fmt", "name"), [("onnx", "m.safetensors"), ("safetensors", "m.onnx"), ("onnx", "m.txt"), ("onnx", "m")]
)
def test_an_extension_of_another_format_is_refused(fake_run, tmp_path, fmt, name):
    with pytest.raises(PartDiscoveryError, match="extension"):
        export_model(fake_run, fmt, tmp_path / name)
    assert not (tmp_path / name).exists()


def _readme_onnx_recipe():
    """The README's function for an ONNX export without partdiscovery (the code block after its marker)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- onnx-recipe -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README.md (onnx recipe)", "exec"), namespace)
    return namespace["onnx_parts"]


@pytest.fixture(scope="module")
def onnx_session(fake_run, tmp_path_factory):
    """The tiny run exported to ONNX once, opened as a user opens it."""
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(
        str(export_model(fake_run, "onnx", tmp_path_factory.mktemp("onnx") / "model.onnx"))
    )


@pytest.mark.parametrize("height, width", [(61, 96), (96, 61), (64, 64), (203, 150)])
def test_the_readmes_onnx_recipe_gives_predicts_labels(fake_run, onnx_session, height, width):
    """A user's own code, from the README alone: the same labels as ``predict`` (refine none), with and without a
    mask, on images that are letterboxed with an odd padding, square, and shrunk (every pixel agreed when this was
    written; the bound leaves room for ties between logits across onnxruntime versions)."""
    onnx_parts = _readme_onnx_recipe()
    seg = PartSegmenter.load(fake_run, device="cpu", refine="none")
    rng = np.random.default_rng(height + width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=bool)
    mask[height // 4 : 3 * height // 4, width // 5 :] = True
    for given in (None, mask):
        ours, theirs = seg.predict(image, given), onnx_parts(onnx_session, image, given)
        assert theirs.shape == (height, width) and (ours == theirs).mean() > 0.999, (ours == theirs).mean()
