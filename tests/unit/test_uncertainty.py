"""Conformal intervals / sets and the applicability domain, on synthetic data with known answers."""
import math

import numpy as np
import pytest

from uniqsar.uncertainty import conformal as cp
from uniqsar.uncertainty.calibration import apply, calibrate
from uniqsar.uncertainty.domain import domain_threshold, fingerprints, neighbours


def nn_similarity(query, train):
    return neighbours(query, train)[0][:, 0]


def oof_nn_similarity(train, folds):
    return neighbours(train, train, 1, folds, folds)[0][:, 0]

SMILES = ["CCO", "CCCO", "c1ccccc1", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "O=C(O)c1ccccc1",
          "CCOC(=O)C", "c1ccncc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1"]


def test_conformal_quantile_rank():
    s = np.arange(1, 10, dtype=float)  # n = 9
    assert cp.conformal_quantile(s, 0.9) == 9.0  # ceil(10 * 0.9) = 9th smallest
    assert cp.conformal_quantile(s, 0.5) == 5.0
    assert math.isinf(cp.conformal_quantile(s, 0.95))  # rank 10 > n


def test_tanimoto_matches_rdkit():
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator as G

    gen = G.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in SMILES]
    query = ["CCCCO", "c1ccccc1N"]
    expect = [max(DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(Chem.MolFromSmiles(q)), fps)) for q in query]
    got = nn_similarity(fingerprints(query), fingerprints(SMILES))
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    assert nn_similarity(fingerprints(["CCO"]), fingerprints(SMILES))[0] == 1.0


def test_oof_similarity_excludes_own_fold():
    smiles = ["c1ccccc1O", "c1ccccc1O", "CCO", "CCO"]  # duplicates, each pair in one fold
    T = fingerprints(smiles)
    np.testing.assert_array_less(oof_nn_similarity(T, np.array([0, 0, 1, 1])), 1.0)
    np.testing.assert_array_equal(oof_nn_similarity(T, np.array([0, 1, 0, 1])), 1.0)


def test_domain_threshold_finds_where_errors_rise():
    rng = np.random.default_rng(0)
    sim = rng.uniform(0.1, 0.9, 2000)
    err = np.abs(rng.normal(0, np.where(sim < 0.3, 1.5, 0.5)))
    d = domain_threshold(sim, err)
    assert 0.26 <= d["threshold"] <= 0.34 and d["welch_t"] > 2
    flat = domain_threshold(sim, np.abs(rng.normal(0, 1, 2000)))  # errors do not rise: 5th percentile
    assert flat["oof_share_flagged"] == pytest.approx(0.05, abs=0.01)


def _synthetic(n, rng):
    """Heteroscedastic regression: noise scale = spread of 8 members; 5 folds. With the exact scale the
    90% interval would be 0.866x the constant width (computed on 200k draws)."""
    scale = rng.uniform(0.1, 2.0, n)
    pred = rng.normal(0, 1, n)
    y = pred + rng.normal(0, scale)
    members = pred[:, None] + scale[:, None] * rng.normal(0, 1, (n, 8))
    members -= members.mean(1, keepdims=True) - pred[:, None]  # weighted mean = pred
    return y, pred, members, rng.uniform(0.2, 0.9, n), rng.integers(0, 5, n)


def test_regression_intervals_cover_and_beat_constant_width():
    rng = np.random.default_rng(1)
    y, pred, M, sim, folds = _synthetic(3000, rng)
    cal, rows = calibrate("regression", y, pred, M, [1] * 8, folds, sim)
    assert cal["oof_coverage"]["0.9"]["coverage"] == pytest.approx(0.9, abs=0.02)
    yt, pt, Mt, st, _ = _synthetic(5000, rng)
    res = apply(cal, pt, Mt, st, 0.9)
    cover = np.mean((yt >= res["lower"]) & (yt <= res["upper"]))
    assert cover == pytest.approx(0.9, abs=0.02)
    err = np.abs(yt - pt)
    const = 2 * np.quantile(err, cover)
    assert np.mean(res["upper"] - res["lower"]) < 0.9 * const  # adaptive: narrower on average (oracle 0.866)
    wide = apply(cal, pt, Mt, st, 0.95)
    assert np.all(wide["upper"] - wide["lower"] >= res["upper"] - res["lower"])


def test_log_transform_intervals_are_asymmetric_and_positive():
    rng = np.random.default_rng(2)
    z = rng.normal(1.0, 0.5, 1500)
    zhat = z + rng.normal(0, 0.3, 1500)
    y, pred = 10 ** z - 1, 10 ** zhat - 1
    cal, _ = calibrate("regression", y, pred, pred[:, None], [1.0], rng.integers(0, 5, 1500),
                       np.full(1500, 0.5), "log10p1")
    res = apply(cal, pred, pred[:, None], np.full(1500, 0.5), 0.9)
    assert np.all(res["lower"] > -1) and np.all(res["upper"] - pred > pred - res["lower"])
    assert np.mean((y >= res["lower"]) & (y <= res["upper"])) == pytest.approx(0.9, abs=0.03)


def test_binary_sets_class_conditional_and_never_empty():
    rng = np.random.default_rng(3)
    n = 4000
    y = (rng.uniform(size=n) < 0.3).astype(int)
    prob = np.clip(0.3 + 0.35 * (y - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999)
    cal, _ = calibrate("binary", y, prob, None, [], rng.integers(0, 5, n), np.full(n, 0.5))
    yt = (rng.uniform(size=n) < 0.3).astype(int)
    pt = np.clip(0.3 + 0.35 * (yt - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999)
    res = apply(cal, pt, None, np.full(n, 0.5), 0.9)
    assert np.all(res["in0"] | res["in1"])
    for k, inside in ((0, res["in0"]), (1, res["in1"])):
        assert inside[yt == k].mean() >= 0.88  # each class covered on its own
    labels = cp.set_labels(res["in0"], res["in1"], np.ones(n, bool))
    assert set(labels) <= {"0", "1", "0|1"} and "0|1" in labels


def test_bad_confidence_is_a_clear_error():
    with pytest.raises(ValueError, match="confidence"):
        apply({"available": False}, np.zeros(1), None, np.zeros(1), 1.5)


def test_neighbours_top_k_sorted_and_group_exclusion():
    T = fingerprints(SMILES)
    sims, idx = neighbours(T[:3], T, 3)
    assert list(idx[:, 0]) == [0, 1, 2] and np.all(sims[:, 0] == 1.0)
    assert np.all(np.diff(sims, axis=1) <= 0)
    groups = np.arange(len(SMILES))  # every molecule its own group: itself is never its neighbour
    sims, idx = neighbours(T, T, 2, groups, groups)
    assert np.all(idx[:, 0] != np.arange(len(SMILES))) and np.all(sims < 1.0)
    sims, idx = neighbours(T[:1], T[:2], 5)  # fewer training rows than k
    assert list(idx[0]) == [0, 1, -1, -1, -1] and np.isnan(sims[0, 2:]).all()


def test_neighbour_error_feature_widens_intervals_near_bad_neighbours():
    """Errors that depend only on where a molecule sits (its neighbours' errors) are learned from the OOF
    neighbours: intervals come out wider where the training neighbours were badly predicted."""
    rng = np.random.default_rng(4)
    n = 2000
    region = rng.integers(0, 2, n)  # region 1: noise 5x larger
    y_pred = rng.normal(0, 1, n)
    y = y_pred + rng.normal(0, np.where(region == 1, 1.0, 0.2))
    folds = rng.integers(0, 5, n)
    # 5 neighbours per row, from other folds, in the same region
    idx = np.array([rng.choice(np.flatnonzero((region == region[i]) & (folds != folds[i])), 5) for i in range(n)])
    sims = np.full((n, 5), 0.5)
    cal, rows = calibrate("regression", y, y_pred, y_pred[:, None], [1.0], folds, np.full(n, 0.5), knn=(sims, idx))
    nb = cp.neighbour_error(sims, idx, rows["abs_error"].to_numpy())
    res = apply(cal, y_pred, y_pred[:, None], np.full(n, 0.5), 0.9, nb)
    width = res["upper"] - res["lower"]
    assert width[region == 1].mean() > 3 * width[region == 0].mean()
