"""Evaluation protocols (partdiscovery.evaluation.protocols) against scikit-learn on hand-made cases."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from partdiscovery.data.cub import CUBDataset, eval_box_fg
from partdiscovery.data.part_folder import PartFolderDataset
from partdiscovery.data.prediction import Prediction
from partdiscovery.errors import DatasetError, PartDiscoveryError
from partdiscovery.evaluation.evaluate import score_pixels
from partdiscovery.evaluation.protocols import (
    PROTOCOLS,
    EvalSource,
    cub_keypoints_protocol,
    cub_regression_protocol,
    default_protocol,
    evaluate_cub_keypoints,
    evaluate_cub_regression,
    evaluate_pascal_classes,
    evaluate_protocol,
    keypoint_regression,
    part_centres,
    pixel_protocol,
)
from partdiscovery.utils.registry import UnknownNameError
from partdiscovery.viz import label_image


def pct(fn, target, pred) -> float:
    return 100.0 * fn(np.asarray(target), np.asarray(pred))


def random_prediction(
    rng, image_id: str, h: int = 20, w: int = 24, k: int = 4, probs: bool = True, n_kp: int = 15
) -> Prediction:
    fg = rng.random((h, w)) < 0.7
    parts = np.where(fg, rng.integers(1, k + 1, size=(h, w)), 0)
    soft = None
    if probs:
        soft = rng.random((k + 1, h, w)).astype(np.float32)
        soft /= soft.sum(0, keepdims=True)
    kp = np.zeros((n_kp, 3), dtype=np.float32)
    kp[:, 0] = rng.uniform(0, w, n_kp)
    kp[:, 1] = rng.uniform(0, h, n_kp)
    kp[:, 2] = rng.random(n_kp) < 0.7
    kp[0] = (w, h, 1)  # on the far border: clipped to the last pixel
    gt = np.where(fg, rng.integers(1, 5, size=(h, w)), 0)
    return Prediction(
        id=image_id, parts=parts.astype(np.int64), probs=soft, fg_mask=fg, part_labels=gt, keypoints=kp
    )


def expected_keypoint_scores(preds: list[Prediction], fg_preds: list[Prediction] | None = None) -> dict:
    """Independent computation: list every visible keypoint, read the labels by hand, ask sklearn."""
    gts, fg_labels, full_labels = [], [], []
    for i, p in enumerate(preds):
        f = (fg_preds or preds)[i]
        h, w = p.parts.shape
        for j, (x, y, v) in enumerate(p.keypoints):
            if v < 0.5:
                continue
            col, row = min(int(x), w - 1), min(int(y), h - 1)
            gts.append(j)
            full_labels.append(p.parts[row, col] if p.fg_mask[row, col] else 0)
            if f.probs is not None:
                fg_labels.append(1 + int(np.argmax(f.probs[1:, row, col])))
            else:
                fg_labels.append(f.parts[row, col])
    return {
        "fg_nmi": pct(normalized_mutual_info_score, gts, fg_labels),
        "fg_ari": pct(adjusted_rand_score, gts, fg_labels),
        "nmi": pct(normalized_mutual_info_score, gts, full_labels),
        "ari": pct(adjusted_rand_score, gts, full_labels),
        "n_keypoints": len(gts),
    }


# --------------------------------------------------------------------------------------------- pixel
def test_pixel_protocol_matches_sklearn():
    rng = np.random.default_rng(0)
    preds = [random_prediction(rng, str(i)) for i in range(4)]
    result = pixel_protocol(preds)
    fg_pred = np.concatenate([p.parts[p.fg_mask] for p in preds])
    fg_gt = np.concatenate([p.part_labels[p.fg_mask] for p in preds])
    full_pred = np.concatenate([np.where(p.fg_mask, p.parts, 0).ravel() for p in preds])
    full_gt = np.concatenate([p.part_labels.ravel() for p in preds])
    assert result["protocol"] == "pixel" and result["n_images"] == 4
    assert result["fg_nmi"] == pytest.approx(pct(normalized_mutual_info_score, fg_gt, fg_pred), abs=1e-9)
    assert result["fg_ari"] == pytest.approx(pct(adjusted_rand_score, fg_gt, fg_pred), abs=1e-9)
    assert result["nmi"] == pytest.approx(pct(normalized_mutual_info_score, full_gt, full_pred), abs=1e-9)
    assert result["ari"] == pytest.approx(pct(adjusted_rand_score, full_gt, full_pred), abs=1e-9)


# ------------------------------------------------------------------------------------- cub keypoints
@pytest.mark.parametrize("probs", [True, False])
def test_cub_keypoints_match_sklearn(probs):
    rng = np.random.default_rng(1)
    preds = [random_prediction(rng, str(i), probs=probs) for i in range(6)]
    result = cub_keypoints_protocol(preds)
    expected = expected_keypoint_scores(preds)
    assert result["n_images"] == 6 and result["n_keypoints"] == expected["n_keypoints"]
    assert result["protocol"] == "cub-keypoints"
    for key in ("fg_nmi", "fg_ari", "nmi", "ari"):
        assert result[key] == pytest.approx(expected[key], abs=1e-9), key


def test_cub_keypoints_separate_fg_predictions():
    rng = np.random.default_rng(2)
    full = [random_prediction(rng, str(i), probs=False) for i in range(5)]
    fg = [
        Prediction(
            id=p.id,
            parts=p.parts,
            probs=random_prediction(rng, p.id).probs,
            fg_mask=p.fg_mask,
            keypoints=p.keypoints,
        )
        for p in full
    ]
    result = cub_keypoints_protocol(iter(full), fg_predictions=iter(fg))
    expected = expected_keypoint_scores(full, fg)
    for key in ("fg_nmi", "fg_ari", "nmi", "ari"):
        assert result[key] == pytest.approx(expected[key], abs=1e-9), key
    with pytest.raises(DatasetError, match="same split|one split"):
        cub_keypoints_protocol(full, fg_predictions=fg[:3])


def test_cub_keypoints_errors():
    rng = np.random.default_rng(3)
    p = random_prediction(rng, "a")
    with pytest.raises(DatasetError, match="no visible keypoint"):
        cub_keypoints_protocol([Prediction(id="a", parts=p.parts, keypoints=np.zeros((15, 3)))])
    with pytest.raises(DatasetError, match="has no keypoints"):
        cub_keypoints_protocol([Prediction(id="a", parts=p.parts)])


# -------------------------------------------------------------------------------------- CUB fixture
CUB_IMAGES = {  # id: (class, train, (w, h), box x y w h)
    1: (1, 1, (40, 32), (6, 4, 24, 20)),
    2: (1, 1, (36, 40), (4, 8, 26, 24)),
    3: (2, 1, (44, 36), (10, 6, 28, 22)),
    4: (1, 0, (40, 40), (8, 8, 24, 24)),
    5: (2, 0, (48, 32), (12, 4, 26, 22)),
    6: (2, 0, (40, 36), (6, 6, 26, 24)),
}


def make_cub(base: Path) -> Path:
    root = base / "CUB_200_2011"
    rng = np.random.default_rng(0)
    rows = {k: [] for k in ("images", "split", "boxes", "labels", "parts")}
    for i, (cls, train, (w, h), (x, y, bw, bh)) in CUB_IMAGES.items():
        rel = f"{cls:03d}.Bird/Bird_{i}.jpg"
        for folder, ext, pixels in (
            ("images", ".jpg", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)),
            ("segmentations", ".png", None),
        ):
            path = root / folder / Path(rel).with_suffix(ext)
            path.parent.mkdir(parents=True, exist_ok=True)
            if pixels is None:
                pixels = np.zeros((h, w), dtype=np.uint8)
                pixels[y : y + bh, x : x + bw] = 255
            Image.fromarray(pixels).save(path)
        rows["images"].append(f"{i} {rel}")
        rows["split"].append(f"{i} {train}")
        rows["boxes"].append(f"{i} {x} {y} {bw} {bh}")
        rows["labels"].append(f"{i} {cls}")
        for p in range(15):
            visible = (p + i) % 3 != 0
            kx, ky = (x + (2 * p + i) % bw, y + (3 * p + i) % bh) if visible else (0, 0)
            rows["parts"].append(f"{i} {p + 1} {float(kx)} {float(ky)} {int(visible)}")
    (root / "parts").mkdir()
    files = (
        ("images", "images.txt"),
        ("split", "train_test_split.txt"),
        ("boxes", "bounding_boxes.txt"),
        ("labels", "image_class_labels.txt"),
        ("parts", "parts/part_locs.txt"),
    )
    for key, name in files:
        (root / name).write_text("\n".join(rows[key]) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def cub(tmp_path_factory) -> Path:
    return make_cub(tmp_path_factory.mktemp("cub"))


@pytest.fixture(scope="module")
def cub_predictions(cub, tmp_path_factory) -> Path:
    """Label PNGs for every image of both splits: vertical stripes of parts 0..3 (0 = background)."""
    out = tmp_path_factory.mktemp("cub_pred")
    for i, (_, _, (w, h), _) in CUB_IMAGES.items():
        labels = np.tile((np.arange(w) // 6 + i) % 4, (h, 1))
        label_image(labels).save(out / f"{i}.png")
    return out


def test_evaluate_cub_keypoints_from_a_predictions_folder(cub, cub_predictions):
    ds = CUBDataset(cub, "test")
    result = evaluate_cub_keypoints(cub_predictions, ds)
    gts, fg_labels, full_labels = [], [], []
    for index in range(len(ds)):
        raw = ds.load(index)
        labels = np.asarray(Image.open(cub_predictions / f"{raw.id}.png"))
        for j, (x, y, v) in enumerate(raw.keypoints):
            if v:
                gts.append(j)
                fg_labels.append(labels[int(y), int(x)])  # a predicted 0 is one more cluster
                full_labels.append(labels[int(y), int(x)] if raw.fg_mask[int(y), int(x)] else 0)
    assert result["n_keypoints"] == len(gts) and result["n_images"] == 3
    assert result["fg_nmi"] == pytest.approx(pct(normalized_mutual_info_score, gts, fg_labels), abs=1e-9)
    assert result["fg_ari"] == pytest.approx(pct(adjusted_rand_score, gts, fg_labels), abs=1e-9)
    assert result["nmi"] == pytest.approx(pct(normalized_mutual_info_score, gts, full_labels), abs=1e-9)
    assert result["ari"] == pytest.approx(pct(adjusted_rand_score, gts, full_labels), abs=1e-9)
    same = evaluate_protocol(
        "cub-keypoints", f"cub:{cub}", "test", predictions=str(cub_predictions), progress=False
    )
    assert same["fg_nmi"] == result["fg_nmi"] and same["split"] == "test"
    assert same["protocol"] == "cub-keypoints"
    pair = evaluate_cub_keypoints((cub_predictions, cub_predictions), ds)  # (fg_dir, full_dir)
    assert pair["nmi"] == pytest.approx(result["nmi"]) and pair["fg_ari"] == pytest.approx(result["fg_ari"])


class RecordingSegmenter:
    """Stands in for a PartSegmenter: records the calls, answers with fixed soft predictions."""

    def __init__(self):
        self.calls = []

    def predict_dataset(
        self, dataset, batch_size=8, use_masks=True, keep_probs=False, progress=True, box_fn=None
    ):
        self.calls.append({"use_masks": use_masks, "keep_probs": keep_probs, "box_fn": box_fn})
        rng = np.random.default_rng(int(use_masks))
        for index in range(len(dataset)):
            raw = dataset.load(index)
            h, w = raw.fg_mask.shape
            probs = rng.random((4, h, w)).astype(np.float32)
            parts = probs[1:].argmax(0) + 1
            if use_masks:
                probs[0] = ~raw.fg_mask
                parts = np.where(raw.fg_mask, parts, 0)
            yield Prediction(
                id=raw.id,
                parts=parts,
                probs=probs if keep_probs else None,
                fg_mask=raw.fg_mask,
                part_labels=raw.part_labels,
                keypoints=raw.keypoints,
            )


def test_evaluate_cub_keypoints_from_a_model_uses_both_crops(cub):
    ds = CUBDataset(cub, "test")
    model = RecordingSegmenter()
    result = evaluate_cub_keypoints(model, ds)
    calls = sorted(model.calls, key=lambda c: c["use_masks"])  # generators: called when first iterated
    assert calls[0] == {"use_masks": False, "keep_probs": True, "box_fn": eval_box_fg}  # FG: bird crop
    assert calls[1]["use_masks"] is True and calls[1]["box_fn"] is None  # full: whole image, with the mask
    replay = RecordingSegmenter()
    fg = list(replay.predict_dataset(ds, use_masks=False, keep_probs=True))
    full = list(replay.predict_dataset(ds, use_masks=True))
    expected = expected_keypoint_scores(full, fg)
    for key in ("fg_nmi", "fg_ari", "nmi", "ari"):
        assert result[key] == pytest.approx(expected[key], abs=1e-9), key


def test_evaluate_cub_keypoints_with_a_real_tiny_network(cub, tiny_config):
    from partdiscovery.models import PartSegmentationNet
    from partdiscovery.segmenter import PartSegmenter

    cfg = tiny_config()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segmenter = PartSegmenter(PartSegmentationNet(cfg.model), cfg, device="cpu")
    result = evaluate_cub_keypoints(segmenter, CUBDataset(cub, "test"), batch_size=4)
    assert result["n_images"] == 3 and 0 <= result["fg_nmi"] <= 100 and 0 <= result["nmi"] <= 100


def test_evaluate_cub_regression_from_a_model(cub):
    train, test = CUBDataset(cub, "train"), CUBDataset(cub, "test")
    model = RecordingSegmenter()
    result = evaluate_cub_regression(model, train, test)
    assert all(c == {"use_masks": True, "keep_probs": True, "box_fn": eval_box_fg} for c in model.calls)
    replay = RecordingSegmenter()
    boxes = {i: d.object_box(i) for d in (train, test) for i in d.ids}  # normalised by the bird box
    expected = keypoint_regression(
        replay.predict_dataset(train, keep_probs=True),
        replay.predict_dataset(test, keep_probs=True),
        boxes=boxes,
    )
    assert result["error"] == pytest.approx(expected["error"], rel=1e-12) and result["n_train_images"] == 3


# ------------------------------------------------------------------------------------ cub regression
def test_part_centres_by_hand():
    parts = np.zeros((10, 20), dtype=np.int64)
    parts[2:4, 4:8] = 1  # centre x 5.5, y 2.5
    parts[6:10, 10:12] = 3  # part 2 absent
    fg = np.ones((10, 20), dtype=bool)
    fg[9] = False  # drops row 9 of part 3: centre y 7.0
    c = part_centres(Prediction(id="a", parts=parts, fg_mask=fg))
    np.testing.assert_allclose(c, [[5.5 / 20, 2.5 / 10], [0.5, 0.5], [10.5 / 20, 7.0 / 10]])
    boxed = part_centres(Prediction(id="a", parts=parts, fg_mask=fg), box=(4, 2, 12, 10))
    np.testing.assert_allclose(boxed[0], [(5.5 - 4) / 8, (2.5 - 2) / 8])
    probs = np.zeros((3, 10, 20), dtype=np.float32)
    probs[1, 0, 0], probs[1, 0, 19] = 1.0, 3.0  # soft: weighted mean x = (0 + 3 * 19) / 4
    probs[2, 5, 5] = 1.0
    soft = part_centres(Prediction(id="b", parts=parts, probs=probs, fg_mask=None))
    np.testing.assert_allclose(soft, [[57 / 4 / 20, 0.0], [5 / 20, 5 / 10]])


def square_prediction(rng, image_id: str, centres_out: list, keypoints_fn, size: int = 40, k: int = 3):
    """Hard labels: part i a 4x4 square at a random place; keypoints = keypoints_fn(true centres)."""
    parts = np.zeros((size, size), dtype=np.int64)
    centres = []
    for part in range(1, k + 1):
        while True:
            x, y = rng.integers(0, size - 4, size=2)
            if not parts[y : y + 4, x : x + 4].any():
                break
        parts[y : y + 4, x : x + 4] = part
        centres.append((x + 1.5, y + 1.5))
    centres = np.asarray(centres) / size
    centres_out.append(centres)
    kp = np.zeros((15, 3), dtype=np.float32)
    kp[:, :2] = keypoints_fn(centres) * size
    kp[:, 2] = 1
    return Prediction(id=image_id, parts=parts, fg_mask=np.ones_like(parts, dtype=bool), keypoints=kp)


def linear_keypoints(centres: np.ndarray) -> np.ndarray:
    """Each keypoint an affine function of the part centres (so a linear regressor is exact)."""
    flat = centres.reshape(-1)
    a = np.random.default_rng(42).normal(size=(15, 2, flat.size)) * 0.3
    return a @ flat + np.linspace(0.2, 0.6, 30).reshape(15, 2)


def test_keypoint_regression_exact_and_shuffled():
    rng = np.random.default_rng(5)
    train_c, test_c = [], []
    train = [square_prediction(rng, f"t{i}", train_c, linear_keypoints) for i in range(16)]
    test = [square_prediction(rng, f"e{i}", test_c, linear_keypoints) for i in range(8)]
    test[0].keypoints[3, 2] = 0  # an invisible test keypoint is not scored
    result = keypoint_regression(train, test)
    assert result["error"] < 1e-4  # % of the box; only float32 rounding of the keypoints remains
    assert result["n_keypoints"] == 8 * 15 - 1 and result["protocol"] == "cub-regression"
    assert result["n_train_images"] == 16 and result["n_test_images"] == 8 and result["num_parts"] == 3
    shuffled_kp = [t.keypoints for t in test][::-1]  # keypoints of another image: no longer predictable
    shuffled = [
        Prediction(id=t.id, parts=t.parts, fg_mask=t.fg_mask, keypoints=kp)
        for t, kp in zip(test, shuffled_kp, strict=True)
    ]
    assert keypoint_regression(train, shuffled)["error"] > 5.0


def test_keypoint_regression_matches_an_independent_least_squares():
    rng = np.random.default_rng(6)
    preds = [random_prediction(rng, str(i), h=16, w=18, k=3) for i in range(30)]
    for p in preds:
        p.keypoints[0, :2] = rng.uniform(0, 16, 2)  # no constant keypoint (its scale would be 0)
    boxes = {p.id: (2.0, 1.0, 16.0, 13.0) for p in preds}  # 14 wide, 12 high: x and y scale differently
    train, test = preds[:22], preds[22:]
    result = keypoint_regression(train, test, boxes=boxes)

    def centres(p):  # soft centre of mass of parts 1..K inside the foreground and the box, box units
        w = p.probs[1:].astype(np.float64) * p.fg_mask
        w[:, :, :2], w[:, :, 16:], w[:, :1], w[:, 13:] = 0, 0, 0, 0
        ys, xs = np.mgrid[0:16, 0:18]
        cx, cy = (w * xs).sum((1, 2)) / w.sum((1, 2)), (w * ys).sum((1, 2)) / w.sum((1, 2))
        return np.stack([(cx - 2) / 14, (cy - 1) / 12], 1).ravel()

    x_tr, x_te = np.stack([centres(p) for p in train]), np.stack([centres(p) for p in test])
    errors = []
    for j in range(15):
        fit = np.array([p.keypoints[j, 2] > 0 for p in train])
        ev = np.array([p.keypoints[j, 2] > 0 for p in test])
        if not ev.any():
            continue
        y_tr = np.stack([(p.keypoints[j, :2] - (2, 1)) / (14, 12) for p in train])[fit]
        y_te = np.stack([(p.keypoints[j, :2] - (2, 1)) / (14, 12) for p in test])[ev]
        mx, sx, my, sy = x_tr[fit].mean(0), x_tr[fit].std(0), y_tr.mean(0), y_tr.std(0)
        coef = np.linalg.lstsq((x_tr[fit] - mx) / sx, (y_tr - my) / sy, rcond=None)[0]
        errors += list(np.linalg.norm(((x_te[ev] - mx) / sx) @ coef * sy + my - y_te, axis=1))
        assert fit.sum() > x_tr.shape[1]  # a determined fit: least-squares solvers agree (not only min-norm)
    assert result["n_keypoints"] == len(errors)
    assert result["error"] == pytest.approx(100 * np.mean(errors), rel=1e-9)


def test_cub_regression_protocol_and_folder(cub, cub_predictions):
    with pytest.raises(PartDiscoveryError, match="train_predictions"):
        cub_regression_protocol([])
    result = evaluate_protocol(
        "cub-regression", f"cub:{cub}", "test", predictions=str(cub_predictions), progress=False
    )
    assert result["n_train_images"] == 3 and result["n_test_images"] == 3 and np.isfinite(result["error"])


# ------------------------------------------------------------------------------- pascal and dispatch
def test_evaluate_pascal_classes_mean():
    per_class = {
        "cat": {"fg_nmi": 40.0, "fg_ari": 30.0, "nmi": 50.0, "ari": 70.0, "n_images": 3},
        "dog": {"fg_nmi": 20.0, "fg_ari": 10.0, "nmi": 30.0, "ari": 60.0, "n_images": 5},
    }
    out = evaluate_pascal_classes(per_class)
    assert out["mean"] == {"fg_nmi": 30.0, "fg_ari": 20.0, "nmi": 40.0, "ari": 65.0}
    assert out["n_classes"] == 2 and out["per_class"]["cat"]["nmi"] == 50.0
    assert "sheep" in out["missing_paper_classes"] and "cat" not in out["missing_paper_classes"]
    with pytest.raises(ValueError):
        evaluate_pascal_classes({})


def test_default_protocol_and_registry(cub, tiny_dataset):
    assert PROTOCOLS.names() == ["cub-keypoints", "cub-regression", "pixel"]
    assert default_protocol(CUBDataset(cub, "test")) == "cub-keypoints"
    assert default_protocol(f"cub:{cub}") == "cub-keypoints"
    assert default_protocol("deepfashion:/x") == "pixel"
    assert default_protocol(PartFolderDataset(tiny_dataset, "test")) == "pixel"


def test_evaluate_protocol_pixel_on_a_predictions_folder(tiny_dataset, tmp_path):
    ds = PartFolderDataset(tiny_dataset, "test")
    rng = np.random.default_rng(7)
    preds = []
    for index in range(len(ds)):
        raw = ds.load(index)
        parts = rng.integers(0, 4, size=raw.fg_mask.shape)
        label_image(parts).save(tmp_path / f"{raw.id}.png")
        preds.append(Prediction(id=raw.id, parts=parts, fg_mask=raw.fg_mask, part_labels=raw.part_labels))
    result = evaluate_protocol("pixel", str(tiny_dataset), "test", predictions=str(tmp_path), progress=False)
    expected = score_pixels(preds)
    assert result["protocol"] == "pixel" and result["source"] == str(tmp_path)
    for key in ("fg_nmi", "fg_ari", "nmi", "ari"):
        assert result[key] == pytest.approx(expected[key], abs=1e-12)
    with pytest.raises(PartDiscoveryError, match="exactly one"):
        evaluate_protocol("pixel", str(tiny_dataset), "test", run="x", predictions=str(tmp_path))
    with pytest.raises(UnknownNameError, match="cub-keypoints"):
        evaluate_protocol("nope", str(tiny_dataset), "test", predictions=str(tmp_path))


def test_a_registered_runner_is_all_a_new_protocol_needs(tiny_dataset, tmp_path, monkeypatch):
    ds = PartFolderDataset(tiny_dataset, "test")
    for index in range(len(ds)):
        raw = ds.load(index)
        label_image(np.ones(raw.fg_mask.shape, dtype=np.int64)).save(tmp_path / f"{raw.id}.png")
    seen = {}

    def count_images(source, data, split):
        seen["source"] = source
        from partdiscovery.data import open_dataset

        return {"n_images": sum(1 for _ in source.predict(open_dataset(data, split)))}

    monkeypatch.setitem(PROTOCOLS._entries, "count", count_images)
    result = evaluate_protocol("count", str(tiny_dataset), "test", predictions=str(tmp_path), progress=False)
    assert result["n_images"] == len(ds) and result["split"] == "test"
    assert isinstance(seen["source"], EvalSource) and seen["source"].model is None


def test_eval_source_needs_exactly_one_of_model_or_folder(tmp_path):
    with pytest.raises(PartDiscoveryError, match="exactly one"):
        EvalSource()
    with pytest.raises(PartDiscoveryError, match="exactly one"):
        EvalSource(model=object(), folder=tmp_path)
    assert EvalSource(folder=tmp_path).target == tmp_path
