"""A training process killed with SIGKILL resumes and ends with the same weights as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from partdiscovery.runs.checkpoint import list_checkpoints, load_latest

ARGS = [
    "--steps",
    "8",
    "--parts",
    "3",
    "--no-pretrained",
    "--quiet",
    "--device",
    "cpu",
    "data.input_size=48",
    "model.decoder_channels=16",
    "train.batch_size=2",
    "train.checkpoint_every=2",
    "train.threads=1",
]


def _train(data, out, *extra) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [
        sys.executable,
        "-m",
        "partdiscovery",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        *ARGS,
        *extra,
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_then_resume_matches_uninterrupted(tiny_dataset, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert _train(tiny_dataset, straight).wait(timeout=300) == 0

    proc = _train(tiny_dataset, killed)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list_checkpoints(killed)) >= 1 and list_checkpoints(killed)[0].name >= "step_00000004.pt":
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail("training ended before it could be killed; make the run longer")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "train_summary.json").exists()

    resumed = _train(tiny_dataset, killed, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()

    _, a = load_latest(straight)
    _, b = load_latest(killed)
    assert a["step"] == b["step"] == 8
    for key, value in a["model"].items():
        assert torch.allclose(value.float(), b["model"][key].float(), atol=1e-6, rtol=0), key
