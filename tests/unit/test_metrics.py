"""Metric registry: values vs sklearn/scipy, NaN pairs, degenerate inputs, directions."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from uniqsar import metrics as M

RNG = np.random.default_rng(0)
Y_REG = RNG.normal(size=50)
P_REG = Y_REG + RNG.normal(scale=0.5, size=50)
Y_BIN = (RNG.random(50) < 0.4).astype(float)
P_BIN = np.clip(0.3 * Y_BIN + RNG.random(50) * 0.7, 0, 1)

EXPECTED = {
    "mae": skm.mean_absolute_error(Y_REG, P_REG),
    "rmse": math.sqrt(skm.mean_squared_error(Y_REG, P_REG)),
    "r2": skm.r2_score(Y_REG, P_REG),
    "spearman": stats.spearmanr(Y_REG, P_REG)[0],
    "pearson": stats.pearsonr(Y_REG, P_REG)[0],
    "roc_auc": skm.roc_auc_score(Y_BIN, P_BIN),
    "pr_auc": skm.average_precision_score(Y_BIN, P_BIN),
    "logloss": skm.log_loss(Y_BIN, P_BIN),
    "accuracy": skm.accuracy_score(Y_BIN, P_BIN >= 0.5),
    "macro_f1": skm.f1_score(Y_BIN, P_BIN >= 0.5, average="macro"),
}
Y_MC = RNG.integers(0, 4, size=60).astype(float)
P_MC = RNG.dirichlet(np.ones(4), size=60) + 0.6 * np.eye(4)[Y_MC.astype(int)]
P_MC /= P_MC.sum(axis=1, keepdims=True)
EXPECTED_MC = {
    "macro_roc_auc": skm.roc_auc_score(Y_MC, P_MC, multi_class="ovr", average="macro"),
    "logloss": skm.log_loss(Y_MC, P_MC),
    "accuracy": skm.accuracy_score(Y_MC, P_MC.argmax(axis=1)),
    "macro_f1": skm.f1_score(Y_MC, P_MC.argmax(axis=1), average="macro"),
}


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    return (Y_REG, P_REG) if M.METRICS[name].task == M.REGRESSION else (Y_BIN, P_BIN)


def test_registry_complete():
    assert set(M.METRICS) == set(EXPECTED) | set(EXPECTED_MC)
    assert M.metrics_for("regression") == ["mae", "rmse", "r2", "spearman", "pearson"]
    assert M.metrics_for("binary") == ["roc_auc", "pr_auc", "logloss", "accuracy", "macro_f1"]
    assert M.metrics_for("multiclass") == ["logloss", "accuracy", "macro_f1", "macro_roc_auc"]
    lower = {n for n, m in M.METRICS.items() if not m.greater_is_better}
    assert lower == {"mae", "rmse", "logloss"}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_values_match_reference(name):
    yt, yp = _data(name)
    value = M.score(name, yt, yp)
    assert isinstance(value, float)
    assert value == pytest.approx(EXPECTED[name], rel=1e-12)


def test_known_small_values():
    assert M.score("mae", [1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert M.score("rmse", [0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))
    assert M.score("roc_auc", [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert M.score("spearman", [1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert M.score("accuracy", [0, 1, 1], [0, 1, 0]) == pytest.approx(2 / 3)  # hard labels


@pytest.mark.parametrize("name", list(EXPECTED))
def test_nan_pairs_ignored(name):
    yt, yp = _data(name)
    yt_nan, yp_nan = np.append(yt, [np.nan, 0.0]), np.append(yp, [0.5, np.nan])
    assert M.score(name, yt_nan, yp_nan) == pytest.approx(EXPECTED[name], rel=1e-12)
    assert math.isnan(M.score(name, [np.nan], [np.nan]))
    assert math.isnan(M.score(name, [], []))


def test_degenerate_inputs_give_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(M.score("roc_auc", [1, 1, 1], [0.1, 0.5, 0.9]))
        assert math.isnan(M.score("pr_auc", [0, 0], [0.1, 0.5]))
        assert math.isnan(M.score("spearman", [1, 2, 3], [5, 5, 5]))
        assert math.isnan(M.score("pearson", [2, 2, 2], [1, 2, 3]))
        assert math.isnan(M.score("r2", [1.0], [1.0]))
        # single-class log-loss and accuracy are still well defined
        assert M.score("logloss", [1, 1], [0.9, 0.8]) == pytest.approx(
            -np.mean(np.log([0.9, 0.8])))
        assert M.score("logloss", [1, 0], [1.0, 0.0]) < 1e-10  # clipped, finite
        assert M.score("accuracy", [1, 1], [0.9, 0.2]) == 0.5


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="length"):
        M.score("mae", [1, 2], [1])


def test_lookup_defaults_and_loss():
    assert M.get_metric("AUROC").name == "roc_auc"
    assert M.get_metric("pr-auc").name == "pr_auc"
    assert M.get_metric("MAE") is M.METRICS["mae"]
    with pytest.raises(KeyError, match="known: mae"):
        M.get_metric("f1")
    assert M.default_metric("regression") == "mae"
    assert M.default_metric("binary") == "roc_auc"
    assert M.default_metric("binary", {"binary": "AUPRC", "regression": "rmse"}) == "pr_auc"
    assert M.default_metric("multiclass") == "macro_roc_auc"
    with pytest.raises(ValueError, match="task kind"):
        M.default_metric("ranking")
    assert M.to_loss("mae", 0.3) == 0.3
    assert M.to_loss("roc_auc", 0.9) == -0.9
    assert M.to_loss("spearman", float("nan")) == math.inf
    assert min(M.to_loss("roc_auc", v) for v in (math.nan, 0.7)) == -0.7


# ---- multiclass: (n, K) probability matrices ----

@pytest.mark.parametrize("name", list(EXPECTED_MC))
def test_multiclass_values_match_reference(name):
    assert M.score(name, Y_MC, P_MC) == pytest.approx(EXPECTED_MC[name], rel=1e-12)
    # a row with a missing label or a missing probability is left out
    yt = np.append(Y_MC, [np.nan, 1.0])
    P = np.vstack([P_MC, [0.25] * 4, [np.nan, 0.5, 0.25, 0.25]])
    assert M.score(name, yt, P) == pytest.approx(EXPECTED_MC[name], rel=1e-12)


def test_multiclass_aliases_and_task_checks():
    assert M.get_metric("log_loss").name == "logloss"
    assert M.get_metric("Macro-AUC").name == "macro_roc_auc"
    assert M.metric_for_task("auc", "multiclass") == "macro_roc_auc"  # roc_auc means the macro one-vs-rest AUC
    assert M.metric_for_task("ACC", "multiclass") == "accuracy"
    with pytest.raises(ValueError, match="multiclass; use one of: logloss"):
        M.metric_for_task("mae", "multiclass")
    with pytest.raises(ValueError, match="is for multiclass targets"):
        M.metric_for_task("macro_roc_auc", "binary")
    with pytest.raises(ValueError, match="probability matrix"):
        M.score("macro_roc_auc", [0, 1], [0.2, 0.7])


def test_multiclass_degenerate_inputs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a class absent from the rows scored (a CV fold) is skipped by the macro AUC, not an error
        P = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
        assert M.score("macro_roc_auc", [0, 1, 0], P) == pytest.approx(1.0)
        assert math.isnan(M.score("macro_roc_auc", [1, 1], P[:2]))
        assert M.score("accuracy", [0, 1, 1], P) == pytest.approx(2 / 3)
        assert np.isfinite(M.score("logloss", [2, 2], P[:2]))  # p = 0.1 for the true class: finite
