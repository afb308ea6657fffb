"""Multiclass targets (issue 20 item 2): the auto rule, labels, duplicate merging, class counts, stratified folds,
prediction columns, conformal sets, and the torch learners on a tiny set (K-logit heads, save/load)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from uniqsar.data.classes import class_labels
from uniqsar.data.dataset import prepare
from uniqsar.data.targets import DataError, detect_task


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ---- the auto rule ----

@pytest.mark.parametrize("values", [["red", "green", "blue", "red"], [0, 1, 2, 0, 1, 2], [1.0, 3.0, 3.0, 2.0, 1.0, 2.0],
                                    ["a", "B", "c", "A ", None, "NA"], list(range(20)) * 2])
def test_auto_picks_multiclass(values, capsys):
    assert detect_task(pd.Series(values), name="T") == "multiclass"
    assert "-> multiclass (auto" in capsys.readouterr().err


@pytest.mark.parametrize("values", [[0.5, 1.5, 2.5, 0.5], [0, 1, 2, 3, 9, 0, 1, 2, 3], list(range(21)) * 2,
                                    [1, 2, 3, 4], ["1.0", "high", "low", "2", "3.5", "4.5"]])
def test_auto_keeps_regression(values):
    # fractional values; a value seen once (a count's tail); more than 20 values; a mostly numeric column
    assert detect_task(pd.Series(values)) == "regression"


def test_auto_logs_why_integer_values_stay_regression(capsys):
    assert detect_task(pd.Series([0, 1, 2, 3, 9, 0, 1, 2, 3]), name="rings") == "regression"
    err = capsys.readouterr().err
    assert "9 occurs only once -> regression" in err and "--task multiclass" in err


def test_forced_tasks():
    assert detect_task(pd.Series([0, 1, 2, 3, 9]), task="multiclass") == "multiclass"
    assert detect_task(pd.Series([0, 1, 2, 0, 1, 2]), task="regression") == "regression"  # the override
    assert detect_task(pd.Series(["x", "y"]), task="multiclass") == "multiclass"
    with pytest.raises(DataError, match="single class"):
        detect_task(pd.Series(["x", "x"]), task="multiclass")
    with pytest.raises(DataError, match="binary needs exactly two.*--task multiclass"):
        detect_task(pd.Series(["x", "y", "z"]), task="binary")
    with pytest.raises(DataError, match="auto picks multiclass only for 3-20 distinct labels.*--task multiclass"):
        detect_task(pd.Series([f"c{i}" for i in range(25)]))


# ---- labels, duplicates, class counts ----

def test_class_labels_order_and_spelling():
    y, classes = class_labels(pd.Series(["Red ", "green", "blue", "red", None, "GREEN"]))
    assert classes == ["blue", "green", "Red"]  # alphabetical by the compared form, first spelling kept
    np.testing.assert_array_equal(y, [2, 1, 0, 2, np.nan, 1])
    y, classes = class_labels(pd.Series([3.0, 1.0, np.nan, 2.0]))
    assert classes == [1, 2, 3] and all(type(c) is int for c in classes)  # integral floats name int classes


def test_duplicates_merged_by_majority():
    df = pd.DataFrame({"smiles": ["CCO", "OCC", "CCO", "CCN", "CCC", "CCCl"],
                       "T": ["b", "a", "a", "c", "b", "c"]})
    t = prepare(df, ["T"]).targets["T"]
    assert t.task == "multiclass" and t.classes == ["a", "b", "c"]
    merged = dict(zip(t.smiles, t.y))
    assert merged["CCO"] == 0  # b, a, a -> a
    assert t.conflicts == ["CCO"] and t.conflict_details[0]["values"] == ["b", "a", "a"]
    rep = prepare(df, ["T"]).report["targets"]["T"]
    assert rep["classes"] == ["a", "b", "c"] and rep["class_counts"] == [1, 1, 2]


def test_class_counts_checked_before_fitting():
    from uniqsar.pipeline.options import check_class_counts

    df = pd.DataFrame({"smiles": [f"C{'C' * i}O" for i in range(12)], "T": [0, 1, 2] * 3 + [0, 1, 1]})
    ds = prepare(df, ["T"])
    check_class_counts(ds.targets, 3)
    with pytest.raises(DataError, match=r"class\(es\) 0 \(4\), 2 \(3\).*5-fold.*--task regression"):
        check_class_counts(ds.targets, 5)


def test_scaffold_folds_stratified_by_class():
    from uniqsar.data.split import make_folds

    df = pd.read_csv("tests/data/caco2_wang_200.csv")
    y = np.digitize(df["Y"], np.quantile(df["Y"], [0.2, 0.5, 0.9])).astype(float)
    folds = make_folds(df["Drug"].tolist(), 5, 1, "scaffold", y)
    table = pd.crosstab(folds, y).to_numpy()
    expected = np.bincount(y.astype(int)) / 5
    assert (np.abs(table - expected) <= 2).all(), table
    folds_r = make_folds(df["Drug"].tolist(), 5, 1, "random", y)
    assert (np.abs(pd.crosstab(folds_r, y).to_numpy() - expected) <= 1).all()


# ---- prediction columns and conformal sets ----

def test_class_columns_use_the_input_labels():
    from uniqsar.pipeline.predict import class_columns

    valid = np.array([True, False, True])
    P = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    cols = class_columns("T", "multiclass", ["blue", "green", "red"], valid, P)
    assert list(cols) == ["T_pred", "T_prob_blue", "T_prob_green", "T_prob_red"]
    assert list(cols["T_pred"]) == ["green", None, "blue"]
    assert np.isnan(cols["T_prob_red"][1]) and cols["T_prob_red"][2] == 0.3
    ints = class_columns("C", "multiclass", [1, 2, 5], valid, P)
    assert str(ints["C_pred"].dtype) == "Int64" and list(ints["C_pred"].astype(object))[::2] == [2, 1]
    binary = class_columns("B", "binary", ["no", "yes"], valid, np.array([0.8, 0.3]))
    assert list(binary["B_pred"]) == ["yes", None, "no"] and binary["B_prob"][0] == 0.8
    zero_one = class_columns("B", "binary", [0, 1], valid, np.array([0.8, 0.3]))
    assert str(zero_one["B_pred"].dtype) == "Int64"


def test_multiclass_conformal_sets_cover_each_class():
    from uniqsar.uncertainty import conformal as cp
    from uniqsar.uncertainty.calibration import calibrate

    rng = np.random.default_rng(0)
    n, k = 600, 4
    y = rng.integers(0, k, n).astype(float)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y.astype(int)]
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    folds = np.arange(n) % 5
    cal, rows = calibrate("multiclass", y, P, None, [1.0], folds, rng.random(n))
    assert abs(cal["oof_coverage"]["0.9"]["coverage"] - 0.9) < 0.03
    assert 1 <= cal["oof_coverage"]["0.9"]["mean_set_size"] < k
    assert set(rows["set_90"].str.split("|").explode()) <= {"0", "1", "2", "3"}
    inside = cp.multiclass_sets(cal["class_scores"], P, 0.9)
    assert inside.any(axis=1).all()
    assert cp.multiclass_set_labels(inside[:1] | np.array([[True, False, True, False]]), ["a", "b", "c", "d"])[0] \
        .startswith("a|")


# ---- torch learners: K-logit heads ----

SMILES = np.array(["CCO", "CCCO", "CCCCO", "CC(C)O", "CC(=O)O", "CCC(=O)O", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1",
                   "Nc1ccccc1", "Clc1ccccc1", "c1ccc2ccccc2c1", "C1CCCCC1", "C1CCNCC1", "C1CCOC1", "CCN(CC)CC",
                   "CCOC(=O)C", "C=CC=C", "FC(F)(F)c1ccccc1", "Brc1ccccc1", "CCS", "CSC", "c1ccncc1", "c1ccoc1"],
                  dtype=object)
Y3 = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 1, 0, 2, 2, 0, 0, 2, 2], float)
TORCH = {
    "dmpnn": {"hidden_size": 32, "ffn_hidden_size": 32, "depth": 2, "lr": 5e-3, "batch_size": 64, "epochs": 40,
              "aggregation": "mean"},
    "smiles_transformer": {"weights": "random", "arch": {"d_model": 32, "n_layers": 1, "n_heads": 2, "ffn_dim": 32},
                           "lr": 2e-3, "batch_size": 16, "dropout": 0.0, "epochs": 2, "n_tta": 2},
    "unimol2": {"weights": "random", "arch": {"layers": 1, "embed_dim": 16, "heads": 2, "pair_dim": 8,
                                              "pair_hidden": 4}, "epochs": 1, "n_conformers": 1, "batch_size": 16},
}


@pytest.mark.parametrize("key", sorted(TORCH))
def test_torch_learner_multiclass(key, tmp_path):
    from uniqsar.registry import get_learner_class

    cls = get_learner_class(key)
    m = cls("multiclass", seed=0, n_classes=4, **TORCH[key]).fit(SMILES, Y3)  # class 3 never seen
    p = m.predict(SMILES)
    assert p.shape == (len(SMILES), 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    m.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m")
    assert loaded.n_classes == 4
    np.testing.assert_allclose(loaded.predict(SMILES), p, rtol=1e-6, atol=1e-7)
    if key == "dmpnn":  # the full-batch D-MPNN learns the tiny set
        assert (p.argmax(axis=1) == Y3).mean() > 0.9
    # a SMILES the network cannot read: the class frequencies of the rows it trained on (class 3 never seen;
    # learners with an inner validation split count only their training part)
    prior = np.bincount(np.asarray(Y3, int), minlength=4) / len(Y3)
    np.testing.assert_allclose(m.predict(np.array(["not a smiles"], dtype=object))[0], prior, atol=0.03)


# ---- joint targets: one network, a loss masked where a label is missing ----

def test_masked_multitask_loss_ignores_missing_labels():
    from uniqsar.models.torch_trainer import masked_multitask_loss

    loss = masked_multitask_loss(["regression", "binary"])
    out = torch.tensor([[1.0, 0.0], [2.0, 3.0]])
    y = torch.tensor([[0.0, float("nan")], [float("nan"), 1.0]])
    expected = (1.0 + torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(3.0), torch.tensor(1.0))) / 2
    assert float(loss(out, y)) == pytest.approx(float(expected))
    out.requires_grad_(True)
    loss(out, y).backward()  # no NaN reaches the gradient
    assert torch.isfinite(out.grad).all() and out.grad[0, 1] == 0 and out.grad[1, 0] == 0


@pytest.mark.parametrize("key", sorted(TORCH))
def test_torch_learner_joint_targets(key, tmp_path):
    from uniqsar.registry import get_learner_class

    cls = get_learner_class(key)
    Y = np.column_stack([np.arange(len(SMILES), dtype=float), (Y3 > 0).astype(float)])
    Y[::3, 0] = np.nan
    Y[1::3, 1] = np.nan
    m = cls("multitask", seed=0, target_tasks=["regression", "binary"], **TORCH[key]).fit(SMILES, Y)
    p = m.predict(SMILES)
    assert p.shape == (len(SMILES), 2) and np.isfinite(p).all()
    assert ((p[:, 1] >= 0) & (p[:, 1] <= 1)).all()
    m.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m")
    assert loaded.target_tasks == ["regression", "binary"]
    np.testing.assert_allclose(loaded.predict(SMILES), p, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="target_tasks"):
        cls("multitask", seed=0, target_tasks=["multiclass"])


def test_recipe_joint_targets_switch(tmp_path):
    from uniqsar.config import ConfigError, load_recipe
    from uniqsar.pipeline.options import resolve_recipe

    assert resolve_recipe("fast").joint_targets is False
    assert resolve_recipe("fast", joint_targets=True).joint_targets is True
    assert "joint_targets" not in resolve_recipe("fast").to_dict()["data"]  # older runs' fingerprints hold
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\njoint_targets = "yes"\n[[models]]\nlearner = "dmpnn"\n')
    with pytest.raises(ConfigError, match="joint_targets must be true or false"):
        load_recipe(str(bad))
