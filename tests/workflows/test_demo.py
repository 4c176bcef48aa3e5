"""End to end: synth -> train (cpu preset, pretrained weights) -> evaluate; the method beats k-means.

This is the demo with a shorter schedule; it takes a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from partdiscovery.workflows import run_demo


@pytest.mark.slow
def test_method_beats_kmeans_on_synthetic_parts(tmp_path):
    threads = torch.get_num_threads()
    # The training run is the point here: two threads when this test has the machine to itself, one beside
    # pytest-xdist's other workers (one worker per CPU), where more threads than cores make PyTorch's OpenMP
    # workers spin against each other (the demo took 454 s at two threads beside another worker, 162 s alone).
    alone = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) <= 1
    torch.set_num_threads(2 if alone else 1)
    try:
        # 120 steps, not the demo's 400: the suite's longest test (200 steps took 300 s of its 367 s beside the
        # other worker), and the lead is already clear there (below).
        result = run_demo(tmp_path / "demo", steps=120, n=400, quiet=True)
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert saved["method"] == pytest.approx(result["method"])
    assert (tmp_path / "demo" / "overlays.png").stat().st_size > 0
    marker = json.loads((tmp_path / "demo" / ".partdiscovery.json").read_text())
    assert marker["complete"] and marker["files"] == ["metrics.json", "overlays.png"]
    method, kmeans = result["method"], result["kmeans"]
    assert method["n_images"] == kmeans["n_images"] == 80
    # A clear margin, not a tie: at 120 steps the method led by 14.2 FG-NMI / 15.9 FG-ARI (44.6 / 35.7 against
    # 30.3 / 19.8; 200 steps: 48.1 / 39.7) on the development machine, 2026-12-07.
    assert method["fg_nmi"] >= kmeans["fg_nmi"] + 5, (method, kmeans)
    assert method["fg_ari"] > kmeans["fg_ari"], (method, kmeans)
