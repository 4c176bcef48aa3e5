"""Tests for partdiscovery.evaluation.metrics: streaming NMI / ARI must equal scikit-learn's."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, mutual_info_score, normalized_mutual_info_score

from partdiscovery.evaluation.metrics import (
    ContingencyTable,
    PartMetrics,
    ari_from_contingency,
    nmi_from_contingency,
)

TOL = 1e-9


def sk_nmi(target, pred) -> float:
    return normalized_mutual_info_score(np.ravel(target), np.ravel(pred))


def sk_ari(target, pred) -> float:
    return adjusted_rand_score(np.ravel(target), np.ravel(pred))


def one_shot(pred, target, valid=None) -> ContingencyTable:
    ct = ContingencyTable()
    ct.update(pred, target, valid)
    return ct


def random_labels(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    k_pred, k_true = rng.integers(1, 9, size=2)
    target = rng.integers(0, k_true, size=n)
    # Mix of noise and signal so scores span the whole range (including negative ARI).
    pred = np.where(rng.random(n) < rng.random(), (target * 3 + 1) % k_pred, rng.integers(0, k_pred, size=n))
    return pred, target


# --------------------------------------------------------------------------------------------------
# Agreement with sklearn
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_matches_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    pred, target = random_labels(rng, n)
    ct = one_shot(pred, target)
    assert ct.total == n
    assert ct.table.dtype == np.int64
    assert ct.nmi() == pytest.approx(sk_nmi(target, pred), abs=TOL)
    assert ct.ari() == pytest.approx(sk_ari(target, pred), abs=TOL)
    assert 0.0 <= ct.nmi() <= 1.0
    assert -1.0 <= ct.ari() <= 1.0


@pytest.mark.parametrize("seed", range(5))
def test_streaming_over_chunks_equals_one_shot(seed):
    rng = np.random.default_rng(100 + seed)
    pred, target = random_labels(rng, 2000)
    pred, target = pred.reshape(20, 10, 10), target.reshape(20, 10, 10)
    streamed = ContingencyTable()
    for i in range(pred.shape[0]):  # images of 10x10, label ranges growing at different times
        streamed.update(pred[i], target[i])
    full = one_shot(pred, target)
    assert streamed.total == full.total == 2000
    np.testing.assert_array_equal(streamed.table, full.table)
    assert streamed.nmi() == full.nmi()
    assert streamed.ari() == full.ari()
    assert streamed.nmi() == pytest.approx(sk_nmi(target, pred), abs=TOL)
    assert streamed.ari() == pytest.approx(sk_ari(target, pred), abs=TOL)


def test_table_layout_and_growth():
    ct = ContingencyTable()
    assert ct.table.shape == (0, 0) and ct.total == 0
    ct.update(np.array([0, 1, 1]), np.array([0, 0, 2]))
    np.testing.assert_array_equal(ct.table, [[1, 0, 0], [1, 0, 1]])
    ct.update(np.array([[3]]), np.array([[1]]))
    np.testing.assert_array_equal(ct.table, [[1, 0, 0], [1, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert ct.total == 4
    # the property is a copy
    ct.table[0, 0] = 99
    assert ct.table[0, 0] == 1


@pytest.mark.parametrize("seed", range(5))
def test_valid_mask(seed):
    rng = np.random.default_rng(200 + seed)
    pred, target = random_labels(rng, 300)
    pred, target = pred.reshape(15, 20), target.reshape(15, 20)
    valid = rng.random((15, 20)) < 0.6
    ct = one_shot(pred, target, valid)
    assert ct.total == int(valid.sum())
    np.testing.assert_array_equal(ct.table[: pred.max() + 1], one_shot(pred[valid], target[valid]).table)
    assert ct.nmi() == pytest.approx(sk_nmi(target[valid], pred[valid]), abs=TOL)
    assert ct.ari() == pytest.approx(sk_ari(target[valid], pred[valid]), abs=TOL)


def test_all_false_mask_counts_nothing():
    ct = one_shot(np.ones((3, 3), dtype=np.int64), np.ones((3, 3), dtype=np.int64), np.zeros((3, 3), bool))
    assert ct.total == 0
    with pytest.raises(ValueError, match="no pixels were counted"):
        ct.nmi()


def test_label_gaps_do_not_change_scores():
    rng = np.random.default_rng(7)
    target = rng.choice([0, 5, 9], size=500)
    pred = rng.choice([2, 11, 30], size=500)
    pred[:200] = target[:200] + 1
    ct = one_shot(pred, target)
    assert ct.table.shape == (31, 10)
    assert ct.nmi() == pytest.approx(sk_nmi(target, pred), abs=TOL)
    assert ct.ari() == pytest.approx(sk_ari(target, pred), abs=TOL)
    # same partition with compact ids gives the same numbers
    compact = one_shot(np.unique(pred, return_inverse=True)[1], np.unique(target, return_inverse=True)[1])
    assert compact.nmi() == pytest.approx(ct.nmi(), abs=1e-12)
    assert compact.ari() == pytest.approx(ct.ari(), abs=1e-12)


def test_empty_rows_and_columns_are_ignored():
    table = np.array([[5, 0, 3], [0, 0, 0], [1, 0, 7]])
    padded = np.zeros((6, 5), dtype=np.int64)
    padded[np.ix_([0, 2, 5], [0, 2, 4])] = table
    for f in (nmi_from_contingency, ari_from_contingency):
        assert f(padded) == pytest.approx(f(table), abs=1e-15)
        assert f(table.T) == pytest.approx(f(table), abs=1e-12)  # symmetric in the two labelings


@pytest.mark.parametrize("seed", range(5))
def test_permutation_invariance(seed):
    rng = np.random.default_rng(300 + seed)
    pred, target = random_labels(rng, 500)
    base = one_shot(pred, target)
    perm_p = rng.permutation(pred.max() + 1)
    perm_t = rng.permutation(target.max() + 1)
    permuted = one_shot(perm_p[pred], perm_t[target])
    assert permuted.nmi() == pytest.approx(base.nmi(), abs=1e-12)
    assert permuted.ari() == pytest.approx(base.ari(), abs=1e-12)
    # pixel order is irrelevant too
    order = rng.permutation(pred.size)
    np.testing.assert_array_equal(one_shot(pred[order], target[order]).table, base.table)


# --------------------------------------------------------------------------------------------------
# Degenerate cases: exactly sklearn's conventions
# --------------------------------------------------------------------------------------------------

DEGENERATE = {
    "single_sample": ([0], [0]),
    "both_single_cluster": ([3, 3, 3, 3], [1, 1, 1, 1]),
    "pred_single_cluster": ([0, 0, 0, 0], [0, 1, 2, 3]),
    "target_single_cluster": ([0, 1, 1, 2], [4, 4, 4, 4]),
    "all_singletons_both": ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0]),
    "singletons_vs_all_in_one": ([0, 1, 2, 3], [0, 0, 0, 0]),
    "identical": ([0, 0, 1, 1, 2], [0, 0, 1, 1, 2]),
    "identical_relabelled": ([7, 7, 2, 2, 0], [0, 0, 1, 1, 2]),
    "anti_correlated": ([0, 1, 0, 1], [0, 0, 1, 1]),
    "two_samples_split": ([0, 1], [0, 0]),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_cases_match_sklearn_exactly(name):
    pred, target = (np.array(x) for x in DEGENERATE[name])
    ct = one_shot(pred, target)
    assert ct.nmi() == pytest.approx(sk_nmi(target, pred), abs=1e-12)
    assert ct.ari() == pytest.approx(sk_ari(target, pred), abs=1e-12)


def test_degenerate_values():
    assert one_shot(np.array([3, 3, 3]), np.array([1, 1, 1])).nmi() == 1.0
    assert one_shot(np.array([3, 3, 3]), np.array([1, 1, 1])).ari() == 1.0
    assert one_shot(np.array([0]), np.array([0])).ari() == 1.0
    assert one_shot(np.array([0, 1, 2, 3]), np.array([0, 0, 0, 0])).ari() == 0.0
    assert one_shot(np.array([0, 1, 2, 3]), np.array([0, 0, 0, 0])).nmi() == 0.0
    assert one_shot(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])).ari() == pytest.approx(-0.5)


def test_empty_table_raises():
    ct = ContingencyTable()
    for f in (ct.nmi, ct.ari):
        with pytest.raises(ValueError, match="no pixels were counted"):
            f()
    for table in (np.zeros((0, 0), dtype=np.int64), np.zeros((3, 4), dtype=np.int64)):
        for f in (nmi_from_contingency, ari_from_contingency):
            with pytest.raises(ValueError, match="no pixels were counted"):
                f(table)
    ct.update(np.zeros((0, 5), dtype=np.int64), np.zeros((0, 5), dtype=np.int64))
    assert ct.total == 0


def test_invalid_inputs():
    ct = ContingencyTable()
    with pytest.raises(ValueError, match="non-negative"):
        ct.update(np.array([0, -1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="non-negative"):
        ct.update(torch.tensor([0, 1]), torch.tensor([-2, 1]))
    with pytest.raises(ValueError, match="shape"):
        ct.update(np.zeros((2, 3), dtype=int), np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match="shape"):
        ct.update(np.zeros((2, 3), dtype=int), np.zeros((2, 3), dtype=int), np.ones((3, 2), bool))
    with pytest.raises(TypeError, match="integer"):
        ct.update(np.zeros(3), np.zeros(3, dtype=int))
    with pytest.raises(TypeError, match="bool"):
        ct.update(np.zeros(3, dtype=int), np.zeros(3, dtype=int), np.ones(3, dtype=int))
    with pytest.raises(ValueError, match="too large"):
        ct.update(np.array([0, 100_000]), np.array([0, 100_000]))
    assert ct.total == 0  # failed updates leave the table untouched
    with pytest.raises(ValueError, match="negative"):
        ari_from_contingency(np.array([[1, -1], [0, 2]]))
    with pytest.raises(ValueError, match="2-D"):
        nmi_from_contingency(np.array([1, 2, 3]))


# --------------------------------------------------------------------------------------------------
# Merge, serialisation, torch
# --------------------------------------------------------------------------------------------------


def test_merge_of_two_tables():
    rng = np.random.default_rng(11)
    pred, target = random_labels(rng, 600)
    a = one_shot(pred[:250] % 3, target[:250])  # smaller label range than b
    b = one_shot(pred[250:], target[250:])
    merged_pred = np.concatenate([pred[:250] % 3, pred[250:]])
    result = a.merge(b)
    assert result is a
    np.testing.assert_array_equal(a.table, one_shot(merged_pred, target).table)
    assert a.total == 600 and b.total == 350  # other is unchanged
    assert a.nmi() == pytest.approx(sk_nmi(target, merged_pred), abs=TOL)
    assert a.ari() == pytest.approx(sk_ari(target, merged_pred), abs=TOL)
    # merging into an empty table copies; merging an empty table is a no-op
    c = ContingencyTable().merge(b)
    np.testing.assert_array_equal(c.table, b.table)
    np.testing.assert_array_equal(c.merge(ContingencyTable()).table, b.table)
    with pytest.raises(TypeError):
        a.merge(b.table)  # type: ignore[arg-type]


def test_state_dict_round_trip():
    rng = np.random.default_rng(12)
    pred, target = random_labels(rng, 300)
    ct = one_shot(pred, target)
    state = ct.state_dict()
    restored = ContingencyTable.from_state_dict(json.loads(json.dumps(state)))  # JSON-safe
    np.testing.assert_array_equal(restored.table, ct.table)
    assert restored.table.dtype == np.int64
    assert restored.nmi() == ct.nmi() and restored.ari() == ct.ari()
    # independent copies
    restored.update(np.array([0]), np.array([0]))
    assert restored.total == ct.total + 1
    # arrays / tensors are accepted as the table
    np.testing.assert_array_equal(ContingencyTable.from_state_dict({"table": ct.table}).table, ct.table)
    np.testing.assert_array_equal(
        ContingencyTable.from_state_dict({"table": torch.from_numpy(ct.table)}).table, ct.table
    )
    # empty and degenerate shapes survive the round trip
    for shape in [(0, 0), (0, 3), (2, 0)]:
        empty = ContingencyTable()
        empty._grow(*shape)
        back = ContingencyTable.from_state_dict(json.loads(json.dumps(empty.state_dict())))
        assert back.table.shape == shape
    with pytest.raises(ValueError):
        ContingencyTable.from_state_dict({"table": [[1, -1]]})


def test_state_dict_loads_with_torch_weights_only(tmp_path):
    ct = one_shot(np.array([0, 1, 1]), np.array([1, 1, 0]))
    torch.save({"metrics": ct.state_dict()}, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=True)
    np.testing.assert_array_equal(ContingencyTable.from_state_dict(loaded["metrics"]).table, ct.table)


def test_torch_inputs_on_cpu():
    rng = np.random.default_rng(13)
    pred, target = random_labels(rng, 400)
    pred, target = pred.reshape(20, 20), target.reshape(20, 20)
    valid = rng.random((20, 20)) < 0.7
    expected = one_shot(pred, target, valid)
    t_pred, t_target, t_valid = torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(valid)
    np.testing.assert_array_equal(one_shot(t_pred, t_target, t_valid).table, expected.table)
    # other integer dtypes and mixed numpy / torch arguments
    np.testing.assert_array_equal(
        one_shot(t_pred.to(torch.uint8), t_target.int(), valid).table, expected.table
    )
    np.testing.assert_array_equal(one_shot(pred, t_target.short(), t_valid).table, expected.table)
    with pytest.raises(TypeError, match="integer"):
        one_shot(t_pred.float(), t_target)
    with pytest.raises(TypeError, match="bool"):
        one_shot(t_pred, t_target, t_valid.long())


# --------------------------------------------------------------------------------------------------
# Large counts (no overflow)
# --------------------------------------------------------------------------------------------------


def _comb2(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x * (x - 1.0) / 2.0


def ari_reference_float(table: np.ndarray) -> float:
    """Hubert & Arabie's ARI with pair counts in float64."""
    n = float(table.sum())
    sum_ij = _comb2(table).sum()
    sum_a = _comb2(table.sum(axis=1)).sum()
    sum_b = _comb2(table.sum(axis=0)).sum()
    expected = sum_a * sum_b / (n * (n - 1.0) / 2.0)
    return float((sum_ij - expected) / ((sum_a + sum_b) / 2.0 - expected))


def ari_reference_exact(table: np.ndarray) -> Fraction:
    c2 = lambda v: Fraction(v * (v - 1), 2)  # noqa: E731
    t = [[int(v) for v in row] for row in table.tolist()]
    n = sum(map(sum, t))
    sum_ij = sum(c2(v) for row in t for v in row)
    sum_a = sum(c2(sum(row)) for row in t)
    sum_b = sum(c2(sum(col)) for col in zip(*t, strict=True))
    expected = sum_a * sum_b / c2(n)
    return (sum_ij - expected) / ((sum_a + sum_b) / 2 - expected)


def test_large_counts_do_not_overflow():
    rng = np.random.default_rng(14)
    table = rng.integers(50_000_000, 150_000_000, size=(4, 6), dtype=np.int64)
    table[np.arange(4), np.arange(4)] *= 10  # some structure, ~6e9 pixels in total
    assert table.sum() > 3_000_000_000  # n**2 > 2**63: naive int64 pair products overflow

    ari = ari_from_contingency(table)
    assert math.isfinite(ari) and -1.0 <= ari <= 1.0
    assert ari == pytest.approx(ari_reference_float(table), rel=1e-9, abs=1e-12)
    assert ari == pytest.approx(float(ari_reference_exact(table)), rel=1e-12, abs=1e-15)

    nmi = nmi_from_contingency(table)
    assert math.isfinite(nmi) and 0.0 <= nmi <= 1.0
    # float64 reference: MI from sklearn's contingency path, entropies from the marginals
    p = table / table.sum()
    h = [float(-(m * np.log(m)).sum()) for m in (p.sum(axis=0), p.sum(axis=1))]
    mi = mutual_info_score(None, None, contingency=table)
    assert nmi == pytest.approx(mi / np.mean(h), rel=1e-9)

    # the table methods give the same numbers
    ct = ContingencyTable.from_state_dict({"table": table})
    assert ct.total == int(table.sum())
    assert ct.ari() == ari and ct.nmi() == nmi


def test_scaled_table_matches_sklearn_on_expanded_labels():
    """A moderately large exact check: the table expanded to per-pixel labels, fed to sklearn."""
    table = np.array([[30_000, 2_000, 0], [1_500, 40_000, 700], [0, 900, 25_000]], dtype=np.int64)
    rows, cols = np.nonzero(table)
    pred = np.repeat(rows, table[rows, cols])
    target = np.repeat(cols, table[rows, cols])
    assert ari_from_contingency(table) == pytest.approx(sk_ari(target, pred), abs=TOL)
    assert nmi_from_contingency(table) == pytest.approx(sk_nmi(target, pred), abs=TOL)


# --------------------------------------------------------------------------------------------------
# PartMetrics
# --------------------------------------------------------------------------------------------------


def test_part_metrics_hand_made_4x4():
    gt = np.array(
        [
            [0, 0, 0, 0],
            [0, 1, 1, 0],
            [0, 2, 2, 3],
            [0, 2, 3, 3],
        ]
    )
    pred = np.array(
        [
            [0, 0, 0, 0],
            [0, 2, 2, 2],  # one background pixel predicted as part 2
            [0, 1, 1, 1],
            [0, 0, 1, 1],  # one foreground pixel predicted as background
        ]
    )
    pm = PartMetrics()
    pm.update(pred, gt)
    fg = gt > 0
    s = pm.summary()
    assert s["fg_nmi"] == pytest.approx(100 * sk_nmi(gt[fg], pred[fg]), abs=1e-7)
    assert s["fg_ari"] == pytest.approx(100 * sk_ari(gt[fg], pred[fg]), abs=1e-7)
    assert s["nmi"] == pytest.approx(100 * sk_nmi(gt, pred), abs=1e-7)
    assert s["ari"] == pytest.approx(100 * sk_ari(gt, pred), abs=1e-7)
    assert s["n_images"] == 1 and s["n_pixels_fg"] == 8 and s["n_pixels"] == 16
    assert set(s) == {"fg_nmi", "fg_ari", "nmi", "ari", "n_images", "n_pixels_fg", "n_pixels"}
    assert 0 < s["fg_nmi"] < 100 and s["fg_ari"] < 100  # percentages, not perfect

    # a perfect prediction scores 100 everywhere
    perfect = PartMetrics()
    perfect.update(gt + 10 * (gt > 0), gt)
    assert all(perfect.summary()[k] == pytest.approx(100.0) for k in ("fg_nmi", "fg_ari", "nmi", "ari"))


def test_part_metrics_custom_fg_mask_streaming_and_torch():
    rng = np.random.default_rng(15)
    gts = rng.integers(0, 4, size=(5, 8, 8))
    preds = np.where(rng.random((5, 8, 8)) < 0.7, gts, rng.integers(0, 5, size=(5, 8, 8)))
    masks = preds > 0  # e.g. the predicted foreground
    pm = PartMetrics()
    for i in range(5):
        pm.update(torch.from_numpy(preds[i]), torch.from_numpy(gts[i]), torch.from_numpy(masks[i]))
    s = pm.summary()
    assert s["n_images"] == 5 and s["n_pixels"] == 5 * 64 and s["n_pixels_fg"] == int(masks.sum())
    assert s["fg_nmi"] == pytest.approx(100 * sk_nmi(gts[masks], preds[masks]), abs=1e-7)
    assert s["fg_ari"] == pytest.approx(100 * sk_ari(gts[masks], preds[masks]), abs=1e-7)
    assert s["nmi"] == pytest.approx(100 * sk_nmi(gts, preds), abs=1e-7)
    assert s["ari"] == pytest.approx(100 * sk_ari(gts, preds), abs=1e-7)

    # merging two halves equals the whole
    a, b = PartMetrics(), PartMetrics()
    for i in range(5):
        (a if i < 2 else b).update(preds[i], gts[i], masks[i])
    assert a.merge(b).summary() == s

    with pytest.raises(ValueError, match="HxW"):
        pm.update(preds, gts)
    with pytest.raises(ValueError, match="no pixels were counted"):
        PartMetrics().summary()
