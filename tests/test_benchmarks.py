"""The benchmark scripts' helpers (the benchmarks themselves are run by hand, never timed in tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """``benchmarks/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quality():
    return load_script("quality")


def test_replace_section_keeps_the_prose_around_the_table(quality, tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# B\nbefore\n{quality.BEGIN}\nold table\n{quality.END}\nafter\n")
    quality.replace_section(doc, "| new |")
    assert doc.read_text() == f"# B\nbefore\n{quality.BEGIN}\n| new |\n{quality.END}\nafter\n"


def test_replace_section_refuses_a_file_without_markers(quality, tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("no markers\n")
    with pytest.raises(SystemExit, match="BENCHMARKS.md: needs the markers"):
        quality.replace_section(doc, "| new |")
    assert doc.read_text() == "no markers\n"


def test_dataset_paths_accepts_any_part_folder(quality, tiny_dataset, tmp_path):
    paths = quality.dataset_paths([str(tiny_dataset), "no_such_dataset_here"], tmp_path, quick=True)
    assert paths == {Path(tiny_dataset).name: Path(tiny_dataset)}


def test_subset_folder_links_a_seeded_subset(quality, tiny_dataset, tmp_path):
    train = (Path(tiny_dataset) / "train.txt").read_text().split()
    test = (Path(tiny_dataset) / "test.txt").read_text().split()
    subset = quality.subset_folder(Path(tiny_dataset), tmp_path / "sub", len(train) - 1, len(test))
    kept = (subset / "train.txt").read_text().split()
    assert len(kept) == len(train) - 1 and set(kept) <= set(train) and kept == sorted(kept, key=train.index)
    assert (subset / "test.txt").read_text().split() == test
    assert (subset / "images").resolve() == (Path(tiny_dataset) / "images").resolve()
    assert quality.subset_folder(Path(tiny_dataset), tmp_path / "same", 10**6, 10**6) == Path(tiny_dataset)


@pytest.fixture(scope="module")
def speed():
    return load_script("speed")


def _spread(x: float) -> dict:
    return {"median": x, "min": 0.9 * x, "max": 1.1 * x, "n": 3}


def _speed_results(load: float, onnx_matches: bool) -> dict:
    """A results dict of the shape ``speed.py`` writes, with made-up figures."""

    def train(ips):
        return {
            **{"backbone": "f", "feature_extractor": "phi", "input_size": 128, "batch_size": 8},
            **{"loss_stride": 2, "optimizer": "adam", "warmup": 1, "peak_rss_mib": 1400.0},
            **{"step_s": _spread(8 / ips), "images_per_s": _spread(ips)},
        }

    def evaluated(scale, increment):
        return {
            **{"pixels": 28.4e6 * scale, "images": 433, "wall_s": 0.1 / scale, "peak_rss_mib": 600.0},
            **{"increment_mib": increment, "baseline_rss_mib": 590.0, "nmi": 0.29, "ari": 0.27},
        }

    backend = {"max_abs_diff_vs_eager": 0.0, "images_per_s": _spread(16.0), "latency_ms": _spread(48.0)}
    return {
        "command": "python benchmarks/speed.py --quick",
        "quick": True,
        "total_wall_s": 153.0,
        "machine": {
            **{"cpu_model": "CPU", "logical_cpus": 2, "usable_cpus": 2, "memory_gib": 24, "torch": "2"},
            **{"torch_threads": 2, "onnxruntime": "1", "sklearn": "1", "numpy": "2", "python": "3.11"},
            "load_average_start": [load, 0.0, 0.0],
        },
        "load_average_end": [1.0, 0.0, 0.0],
        "train": {"cpu": train(8.4), "paper": train(0.2)},
        "step": {
            "input_size": 128,
            "batch_size": 8,
            "images_per_s": {
                k: _spread(v) for k, v in [("reference", 5), ("library_stride1", 9), ("library_stride2", 10)]
            },
            "step_s": {
                k: _spread(v)
                for k, v in [("reference", 1.6), ("library_stride1", 0.9), ("library_stride2", 0.8)]
            },
            "ratio_vs_stride2": _spread(1.2),
            "ratio_vs_stride1": _spread(1.1),
            "checks": [{"dtype": "float32", "max_loss_rel_diff": 2.8e-7, "grad_rel_l2_diff": 3.7e-6}],
            "profile_library_stride2": [
                {"op": "aten::convolution", "self_ms": 360.0, "share": 0.41, "calls": 54}
            ],
        },
        "infer": {
            **{"backbone": "lite0", "num_parts": 4, "input_size": 256},
            "backends": {
                "pytorch eager": {**backend, "matches_1e-4": True},
                "onnxruntime": {**backend, "matches_1e-4": onnx_matches, "max_abs_diff_vs_eager": 1e-3},
            },
        },
        "eval": {
            "streaming": {"0.0625": evaluated(0.0625, 2.0)},
            "concatenating": {"0.0625": evaluated(0.0625, 1424.0)},
            "concatenating_full_extrapolated": {
                **evaluated(1.0, 22751.0),
                **{"from_scales": [0.015625, 0.0625], "reason": "quick mode"},
            },
            "agreement": {"0.0625": {"nmi_abs_diff": 1e-12, "ari_abs_diff": 2e-12}},
        },
    }


def test_speed_markdown_states_each_bar_as_measured(speed):
    text = speed.build_markdown(_speed_results(load=0.3, onnx_matches=False))
    bars = text.split("Bars:")[1].split("Top operators")[0]
    assert "per image: **42.0x** faster (bar >= 3x: PASS)" in bars
    assert "**1.20x** at the cpu preset (bar >= 1.5x: FAIL)" in bars
    assert "exported models match eager within 1e-4: FAIL" in bars
    assert "**0.14%** of concatenating's 1,424 MiB (bar < 1%: PASS)" in bars
    assert "| onnxruntime" not in text and "(MISMATCH)" in text
    assert "Busy machine" not in text


def test_speed_markdown_labels_extrapolated_rows_and_a_busy_machine(speed):
    text = speed.build_markdown(_speed_results(load=1.9, onnx_matches=True))
    extrapolated = [line for line in text.splitlines() if "EXTRAPOLATED" in line]
    assert len(extrapolated) == 3 and all("scale 1)" in line for line in extrapolated)
    assert "**Busy machine**: the load average was 1.9 on 2 CPUs" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and " | " in line]
    # header, train, step, infer (eager, onnx), eval (3 streaming, 3 concatenating, 3 extrapolated), profile (2)
    assert len(table) == 1 + 5 + 5 + 4 + 9 + 2


def test_masks_cam_maps_are_at_stride_32_for_any_aspect():
    import timm
    from PIL import Image

    cam = load_script("masks_cam")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    image = Image.new("RGB", (100, 60), (120, 80, 40))
    maps = cam.activation_maps(model, image, size=128)
    assert set(maps) == {"cam5", "cam1", "norm", "meanact"}
    assert all(m.shape == (2, 4) for m in maps.values())  # 128 x 77 -> 128 x 64 -> 4 x 2 cells


def test_masks_sweep_makes_one_config_per_value():
    from partdiscovery.config import ConfigError, ForegroundConfig

    masks = load_script("masks")
    base = ForegroundConfig(input_size=128)
    assert masks.sweep_configs(base, None) == {"": base}
    swept = masks.sweep_configs(base, "foreground.certain_fraction=0,0.05")
    assert list(swept) == ["certain_fraction=0", "certain_fraction=0.05"]
    assert [c.certain_fraction for c in swept.values()] == [0.0, 0.05]
    assert all(c.input_size == 128 for c in swept.values())
    with pytest.raises(ConfigError, match="certain_fraction"):
        masks.sweep_configs(base, "certain_fraction=2")


def test_reference_partitions_bands_span_the_foreground_rows():
    ref = load_script("reference_partitions")
    fg = np.zeros((10, 3), bool)
    fg[2:10, 1] = True  # rows 2-9: 8 rows, two bands of 4
    b = ref.bands(fg, 2)
    assert b[2:6, 1].tolist() == [1] * 4 and b[6:10, 1].tolist() == [2] * 4
    assert (b[~fg] == 0).all()
    assert (ref.bands(np.zeros((4, 4), bool), 3) == 0).all()


def test_reference_partitions_groups_labels_by_name():
    ref = load_script("reference_partitions")
    names = {1: "hair", 2: "skin", 3: "jeans", 4: "bag"}
    lookup = ref.group_lookup(names, {"head": ["hair", "skin"], "lower": ["jeans"]})
    assert lookup.tolist() == [0, 1, 1, 2, 3]  # bag: in no group -> the rest
    with pytest.raises(SystemExit, match="wings"):
        ref.group_lookup(names, {"x": ["wings"]})


def test_masks_precision_and_recall_say_which_way_a_mask_errs():
    masks = load_script("masks")
    gt = np.zeros((4, 4), bool)
    gt[:2] = True  # 8 pixels
    spill = np.ones((4, 4), bool)  # all of the object and as much background
    assert masks.precision_recall(spill, gt) == (0.5, 1.0)
    assert masks.precision_recall(gt, gt) == (1.0, 1.0)
    assert masks.precision_recall(np.zeros((4, 4), bool), gt) == (1.0, 0.0)
    assert masks.mask_scores(spill, gt) == (0.5, 0.5, 1.0)  # IoU, precision, recall


def test_masks_connectivity_keeps_an_object_that_touches_the_border():
    conn = load_script("masks_connectivity")
    features = np.zeros((12, 12, 2), np.float32)
    features[..., 0] = 1  # background
    obj = np.zeros((12, 12), bool)
    obj[3:8, 4:8] = True
    obj[8:, 5:7] = True  # legs down to the bottom border, two cells wide
    features[obj] = (0, 1)
    # Flat regions put most geodesic distances at 0: sigma must reach past them (quantile 0.3 here).
    probability = conn.connectivity_object(features, quantile=0.3, power=2)
    assert probability[obj].min() > 0.9 > 0.2 > probability[~obj].max()
    distances = conn.geodesic_distances(features, power=2)
    assert np.allclose(distances, distances.T) and np.allclose(np.diag(distances), 0)
    assert conn.refine(
        "none", np.zeros((24, 24, 3), np.uint8), probability.astype(np.float32), None
    ).shape == (24, 24)


def test_restart_criteria_find_the_runs_and_keep_one_per_subset(tmp_path):
    import json

    criteria = load_script("restart_criteria")
    rows = [
        {"dataset": "d", "K": 4, "method": f"method (seed {s})", "fg_nmi": 10.0 + s, "fg_ari": 5.0}
        for s in (3, 4)
    ]
    rows.append({"dataset": "d", "K": 8, "method": "method (seed 3)", "fg_nmi": 0.0, "fg_ari": 0.0})
    (tmp_path / "quality.json").write_text(
        json.dumps({"command": "python benchmarks/quality.py --seeds 3 4 --split val", "rows": rows})
    )
    runs = criteria.validation_runs([tmp_path], parts=4)
    assert runs == {
        3: (tmp_path / "d" / "K4" / "method" / "run", 13.0, 5.0),
        4: (tmp_path / "d" / "K4" / "method_seed4" / "run", 14.0, 5.0),
    }
    scores = np.array([[20.0, 1.0], [10.0, 2.0], [30.0, 3.0]])
    agreement = np.array([[1, 0.9, 0.1], [0.9, 1, 0.2], [0.1, 0.2, 1]])
    kept = criteria.simulate(np.array([0.3, 0.2, 0.1]), agreement, scores, choose=2)
    # Subsets {0, 1}, {0, 2}, {1, 2}: R² keeps runs 0, 0, 1.
    assert kept["R² (train)"] == [round((20 + 20 + 10) / 3, 2), 1.33]
    assert kept["oracle"] == [round((20 + 30 + 30) / 3, 2), round((1 + 3 + 3) / 3, 2)]
    assert kept["one run (mean)"][0] == round((15 + 25 + 20) / 3, 2)
    medoid = np.array([[1, 0.2, 0.5], [0.2, 1, 0.6], [0.5, 0.6, 1]])  # run 2 agrees most with the others
    assert criteria.simulate(np.array([0.3, 0.2, 0.1]), medoid, scores, choose=3)["consensus"] == [30.0, 3.0]


def test_restart_criteria_read_only_the_plain_method_of_one_dataset(tmp_path):
    import json

    criteria = load_script("restart_criteria")
    row = {"K": 4, "fg_ari": 1.0}
    rows = [
        {**row, "dataset": "d", "method": "method", "fg_nmi": 30.0},
        # Rows quality.py writes beside the method's, with no seed in their names: never a run.
        {**row, "dataset": "d", "method": "method without feature", "fg_nmi": 7.0},
        {**row, "dataset": "d", "method": "method + learned bg, given masks", "fg_nmi": 8.0},
    ]
    (tmp_path / "quality.json").write_text(json.dumps({"command": "quality.py --split val", "rows": rows}))
    # No --seeds in the command: quality.py's default seed 0.
    assert criteria.validation_runs([tmp_path], parts=4) == {
        0: (tmp_path / "d" / "K4" / "method" / "run", 30.0, 1.0)
    }
    other = tmp_path / "other"
    other.mkdir()
    recorded = {"seed": 2, "run": "e/val/K4/method_seed2/run"}  # relative to its quality.json's folder
    (other / "quality.json").write_text(
        json.dumps(
            {
                "command": "quality.py",
                "rows": [{**row, "dataset": "e", "method": "method", "fg_nmi": 5.0, **recorded}],
            }
        )
    )
    with pytest.raises(ValueError, match=r"\['d', 'e'\]: name one"):
        criteria.validation_runs([tmp_path, other], parts=4)
    # Rows of 0.27 on say their seed and run folder.
    assert criteria.validation_runs([tmp_path, other], parts=4, dataset="e") == {
        2: (other / "e" / "val" / "K4" / "method_seed2" / "run", 5.0, 1.0)
    }
    with pytest.raises(ValueError, match="no run of 'f'"):
        criteria.validation_runs([tmp_path, other], parts=4, dataset="f")
    # Runs of a --split test call trained on the validation images: never chosen among on them.
    tested = tmp_path / "tested"
    tested.mkdir()
    scored_on_test = {**row, **recorded, "dataset": "e", "method": "method", "fg_nmi": 5.0, "split": "test"}
    (tested / "quality.json").write_text(json.dumps({"command": "quality.py", "rows": [scored_on_test]}))
    with pytest.raises(ValueError, match="scored on the test split, not val"):
        criteria.validation_runs([tested], parts=4)


def test_quality_keeps_each_seed_and_split_apart_and_passes_them_on(
    quality, tiny_dataset, tmp_path, monkeypatch
):
    """Every trained run (the method, its ablation, the learned background) gets its seed, split and device, and
    a folder of its own; baselines fit on the split's training images on the same device."""
    import json
    import sys

    trained, fitted = [], []
    scores = {"fg_nmi": 1.0, "fg_ari": 2.0, "nmi": 3.0, "ari": 4.0}

    def fake_train(data, out, preset, overrides, split="test", curve=None, device="cpu"):
        trained.append(
            (out, split, device, [o for o in overrides if o.startswith(("train.seed", "loss.", "model."))])
        )
        return dict(scores), 0.0

    def fake_background(data, out, preset, overrides, split="test", device="cpu"):
        fake_train(data, out, preset, overrides + ["model.learned_background=true"], split, device=device)
        return [{"method": "method + learned bg, given masks", **scores, "wall_s": 0.0}]

    def fake_baseline(name, data, folder, k, cfg, **kw):
        fitted.append((name, kw["split"], kw["fit_split"], kw["device"]))

    monkeypatch.setattr(quality, "train_and_predict", fake_train)
    monkeypatch.setattr(quality, "learned_background_rows", fake_background)
    monkeypatch.setattr(quality, "run_baseline", fake_baseline)
    monkeypatch.setattr(quality, "score_dir", lambda *a, **k: dict(scores))
    argv = [
        "quality.py",
        "--datasets",
        str(tiny_dataset),
        "--parts",
        "4",
        "--seeds",
        "3",
        "5",
        "--split",
        "val",
    ]
    argv += ["--methods", "method", "kmeans", "--ablation", "--learned-background", "--device", "meta"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path)])
    quality.main()
    where = tmp_path / "synth" / "val" / "K4"
    method = [t for t in trained if "loss." not in " ".join(t[3]) and "model.learned" not in " ".join(t[3])]
    assert [(t[0], t[3][-1]) for t in method] == [
        (where / "method_seed3", "train.seed=3"),
        (where / "method_seed5", "train.seed=5"),
    ]
    ablated = [t for t in trained if any(o.startswith("loss.") and o.endswith("=0") for o in t[3])]
    assert len(ablated) == 2 * len(quality.LOSSES)
    assert {(t[0].name, next(o for o in t[3] if o.startswith("train.seed"))) for t in ablated} >= {
        ("no_feature_seed3", "train.seed=3"),
        ("no_feature_seed5", "train.seed=5"),
    }
    background = [t for t in trained if "model.learned_background=true" in t[3]]
    assert [(t[0], "train.seed=3" in t[3]) for t in background] == [(where / "learned_bg_seed3", True)]
    assert {(split, device) for _, split, device, _ in trained} == {("val", "meta")}
    assert fitted == [("kmeans", "val", quality.HOLDOUT_SPLIT, "meta")]
    rows = json.loads((tmp_path / "quality.json").read_text())["rows"]
    assert [(r["method"], r["seed"]) for r in rows if r["method"].startswith("method (")] == [
        ("method (seed 3)", 3),
        ("method (seed 5)", 5),
    ]
    assert {r["split"] for r in rows} == {"val"}
    # Every trained row names its run folder relative to OUT, so that a moved OUT still finds it.
    runs = {r["run"] for r in rows if r["seed"] is not None}
    assert {"synth/val/K4/method_seed3/run", "synth/val/K4/no_feature_seed5/run"} <= runs
    assert "synth/val/K4/learned_bg_seed3/run" in runs and not any(Path(r).is_absolute() for r in runs)


def test_restart_mix_keeps_the_run_of_highest_r2_across_kinds():
    mix = load_script("restart_mix")
    assert mix.parse_make_up("D=3,T=1") == {"D": 3, "T": 1}
    runs = {
        "D": {"seeds": [0, 1], "r2": [0.1, 0.3], "fg_nmi_fg_ari": [[10.0, 1.0], [20.0, 2.0]]},
        "T": {"seeds": [0, 1], "r2": [0.2, 0.05], "fg_nmi_fg_ari": [[30.0, 3.0], [40.0, 4.0]]},
    }
    # One of each kind: (D0, T0) keeps T0, (D0, T1) D0, (D1, T0) D1, (D1, T1) D1.
    both = mix.simulate(runs, {"D": 1, "T": 1})
    assert both["choices"] == 4 and both["kept"] == [(30 + 10 + 20 + 20) / 4, (3 + 1 + 2 + 2) / 4]
    assert both["kinds_kept"] == {"D": 3, "T": 1}
    # Distinct seeds: only (D0, T1) and (D1, T0).
    distinct = mix.simulate(runs, {"D": 1, "T": 1}, distinct_seeds=True)
    assert distinct["choices"] == 2 and distinct["kept"] == [15.0, 1.5]
    with pytest.raises(SystemExit, match="no choice"):
        mix.simulate(runs, {"D": 2, "T": 1}, distinct_seeds=True)


def test_refine_parts_rows_and_the_plain_blur_control():
    import torch

    refine = load_script("refine_parts")
    rows = refine.settings([0.08, 0.16], eps=1e-3)
    assert list(rows) == ["none", "guided 0.08", "guided 0.16"]
    assert rows["none"].refine == "none" and rows["guided 0.16"].refine_radius == 0.16
    assert rows["guided 0.08"].refine_eps == 1e-3
    probs = torch.zeros(1, 3, 20, 40)
    probs[:, 0, :5] = 1  # background rows
    probs[:, 1, 5:, :20] = 1
    probs[:, 2, 5:, 20:] = 1
    blurred = refine.plain_blur(probs, 0.16)
    assert torch.equal(blurred[:, 0], probs[:, 0])
    assert 0 < float(blurred[0, 1, 10, 20]) < 1  # smoothed across the boundary, no edge to keep it


def test_ensemble_restarts_matches_relabelled_parts_and_averages_them_back():
    ensemble = load_script("ensemble_restarts")
    rng = np.random.default_rng(0)
    parts = rng.dirichlet(np.ones(3), size=50).T  # [K=3, N=50] soft parts
    perm, agreement = ensemble.align(parts, parts[[2, 0, 1]])
    assert agreement == pytest.approx(ensemble.align(parts, parts)[1])
    assert np.array_equal(
        parts[[2, 0, 1]][perm], parts
    )  # the relabelled run's parts in the reference's order
    maps = np.concatenate([rng.random((1, 4, 4)), parts[:, :16].reshape(3, 4, 4)])
    relabelled = np.concatenate([maps[:1], maps[1:][[2, 0, 1]]])
    assert np.allclose(ensemble.average([maps, relabelled], [np.arange(3), perm]), maps)


def test_masks_from_run_candidates_are_masks_and_the_scores_say_which_way_they_err():
    from partdiscovery.config import ForegroundConfig

    script = load_script("masks_from_run")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    p = np.zeros((24, 24), np.float32)
    p[6:18, 6:18] = 0.8
    first = p > 0
    rows = script.candidates(ForegroundConfig(refine_size=24))
    assert "f + grabcut, fixed p >= 0.75" in rows and "first round (the run's masks)" in rows
    for make in rows.values():
        mask = make(image, p, first)
        assert mask.shape == (24, 24) and mask.dtype == bool
    assert rows["f >= 0.5"](image, p, first).sum() == 144
    half = np.zeros((24, 24), bool)
    half[6:18, 6:12] = True
    assert script.mask_scores(half, first) == (0.5, 1.0, 0.5)


def test_part_usage_counts_each_parts_pixels_and_finds_the_empty_ones(tmp_path):
    usage = load_script("part_usage")
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[:5] = 1  # part 1: 49 pixels (one is background), part 2: 49, part 3: 1 (1.01 %), part 4: none
    labels[5:] = 2
    labels[9, 9] = 3
    labels[0, 0] = 0
    Image.fromarray(labels).save(tmp_path / "a.png")
    counts, n = usage.count_folder(tmp_path, parts=4)
    assert n == 1 and counts.tolist() == [49, 49, 1, 0]
    row = usage.shares(counts)
    assert row["share_pct"] == [49.49, 49.49, 1.01, 0.0]
    assert row["empty"] == 1 and row["below_1pct"] == 1


def test_predict_large_measures_one_photo_at_a_max_side():
    cell = load_script("predict_large").one_cell(300, 200, 100, "cpu", "guided")
    assert set(cell) == {"seconds", "peak_rss_mib"} and cell["seconds"] > 0 and cell["peak_rss_mib"] > 100
