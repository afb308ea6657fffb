"""Conformal prediction on out-of-fold (OOF) predictions: normalized intervals and Mondrian sets.

Regression: split-conformal with normalized nonconformity ``|y - yhat| / sigma(x)``. ``sigma`` is a
difficulty model, a linear fit of ``log|residual|`` on four features of a molecule: the log spread of the
ensemble members' predictions, ``1 - nearest-neighbour similarity`` to the training set, the distance of
the prediction from the training median, and the log of the OOF errors of its 5 most similar training
molecules (similarity-weighted; for an OOF row, among the other folds only). It is cross-fitted over the CV folds (each fold's scores come
from a difficulty model fitted on the other folds) so that the calibration scores are not optimistic.
The interval is ``yhat +- q * sigma(x)`` with ``q`` the ``ceil((n + 1) c) / n`` empirical quantile of the
scores (``c`` the confidence), computed on the run's target-transform scale and mapped back (monotone).

Binary: class-conditional (Mondrian) conformal sets with nonconformity ``1 - p(class)``; class ``k`` is in
the set when its conformal p-value, from the OOF rows of class ``k`` only, exceeds ``1 - c``, so each class
is covered at the confidence on its own. A set is never empty: if neither class passes, it holds the class
with the larger p-value.

Multiclass: the same Mondrian sets over K classes (nonconformity ``1 - p(class k)``, calibrated on the OOF
rows of class ``k``); a set is never empty (it then holds the class with the largest p-value).

Why not MAPIE or crepes: both fit here in principle, but the calibration data already exist (every run
keeps its OOF predictions and fold assignment) and the whole method is a quantile and a least-squares fit;
the difficulty features need the run's members and its fold-aware neighbour search, which neither
library knows about, so a dependency would only wrap the three lines of :func:`conformal_quantile`.
"""
from __future__ import annotations

import math

import numpy as np

FEATURES = ("log_member_spread", "dissimilarity", "distance_from_median", "log_neighbour_error")
K_NEIGHBOURS = 5  # training neighbours whose OOF errors make the neighbour-error feature
RIDGE = 1e-3  # tiny ridge on standardized features, for stability when a feature is nearly constant


def conformal_quantile(scores: np.ndarray, confidence: float) -> float:
    """The ``ceil((n + 1) c)``-th smallest score (inf when that rank exceeds n)."""
    s = np.sort(np.asarray(scores, float)[np.isfinite(scores)])
    n = len(s)
    if n == 0:
        return math.inf
    k = math.ceil((n + 1) * confidence)
    return float(s[k - 1]) if k <= n else math.inf


def neighbour_error(sims: np.ndarray, idx: np.ndarray, train_abs_err: np.ndarray) -> np.ndarray:
    """Similarity-weighted mean OOF |error| of each molecule's nearest training neighbours (NaN: none)."""
    w = np.where(idx >= 0, np.nan_to_num(sims, nan=0.0), 0.0) + 1e-6 * (idx >= 0)
    e = np.where(idx >= 0, train_abs_err[np.maximum(idx, 0)], 0.0)
    return np.where(w.sum(1) > 0, (w * e).sum(1) / np.maximum(w.sum(1), 1e-12), np.nan)


def difficulty_features(pred: np.ndarray, members: np.ndarray, weights: np.ndarray, similarity: np.ndarray,
                        median: float, eps_spread: float, nb_error: np.ndarray | None = None,
                        eps_resid: float = 1e-6) -> np.ndarray:
    """(n, 4) features of FEATURES; ``members`` (n, m) on the same scale as ``pred``; ``nb_error`` from
    :func:`neighbour_error` (None: the feature is constant, i.e. unused)."""
    w = np.asarray(weights, float) / np.sum(weights)
    mean = members @ w
    spread = np.sqrt(np.maximum(((members - mean[:, None]) ** 2) @ w, 0.0))
    sim = np.where(np.isfinite(similarity), similarity, 0.0)
    nb = np.zeros(len(pred)) if nb_error is None else np.log(np.where(np.isfinite(nb_error), nb_error, 0.0)
                                                              + eps_resid)
    return np.column_stack([np.log(spread + eps_spread), 1.0 - sim, np.abs(pred - median), nb])


def fit_difficulty(F: np.ndarray, abs_resid: np.ndarray, eps_resid: float) -> dict:
    """Least squares of log(|r| + eps) on standardized features."""
    mu, sd = F.mean(0), F.std(0)
    live = sd > 1e-12
    Z = np.where(live, (F - mu) / np.where(live, sd, 1.0), 0.0)
    t = np.log(abs_resid + eps_resid)
    A = np.column_stack([np.ones(len(Z)), Z])
    reg = RIDGE * len(Z) * np.diag([0.0] + [1.0] * Z.shape[1])
    coef = np.linalg.solve(A.T @ A + reg, A.T @ t)
    lin = A @ coef
    return {"mean": mu.tolist(), "scale": np.where(live, sd, 1.0).tolist(), "live": live.tolist(),
            "intercept": float(coef[0]), "coef": coef[1:].tolist(),
            # sigma outside the range seen in calibration is clipped to [half the smallest, twice the largest]
            "log_sigma_range": [float(lin.min() - math.log(2)), float(lin.max() + math.log(2))]}


def sigma(model: dict, F: np.ndarray) -> np.ndarray:
    mu, sd, live = (np.asarray(model[k]) for k in ("mean", "scale", "live"))
    Z = np.where(live, (F - mu) / sd, 0.0)
    lin = model["intercept"] + Z @ np.asarray(model["coef"])
    lo, hi = model["log_sigma_range"]
    return np.exp(np.clip(lin, lo, hi))


def cross_fitted_scores(F: np.ndarray, abs_resid: np.ndarray, folds: np.ndarray, eps_resid: float) -> np.ndarray:
    """Normalized scores |r| / sigma with each fold's sigma from a difficulty model fitted on the other folds."""
    scores = np.empty(len(abs_resid))
    for f in np.unique(folds):
        test = folds == f
        m = fit_difficulty(F[~test], abs_resid[~test], eps_resid)
        scores[test] = abs_resid[test] / sigma(m, F[test])
    return scores


def leave_fold_out_coverage(scores: np.ndarray, folds: np.ndarray, confidence: float) -> float:
    """Coverage of each fold's rows by the quantile of the other folds' scores, over all rows."""
    hit = np.zeros(len(scores), bool)
    for f in np.unique(folds):
        test = folds == f
        hit[test] = scores[test] <= conformal_quantile(scores[~test], confidence)
    return float(hit.mean())


# ---- binary: Mondrian (class-conditional) prediction sets ----

def class_scores(prob: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Sorted calibration nonconformity scores 1 - p(true class), per class."""
    y = np.asarray(y).astype(int)
    p1 = np.asarray(prob, float)
    return {"0": np.sort(p1[y == 0]).tolist(),  # 1 - p(0) = p1
            "1": np.sort(1.0 - p1[y == 1]).tolist()}


def p_values(sorted_scores: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Conformal p-value (1 + #{calibration scores >= s}) / (n + 1) for each score in ``s``."""
    n = len(sorted_scores)
    n_ge = n - np.searchsorted(sorted_scores, s, side="left")
    return (1.0 + n_ge) / (n + 1.0)


def prediction_sets(cal: dict[str, list[float]], prob: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (n,) arrays: class 0 in the set, class 1 in the set (never both False for a finite prob)."""
    p1 = np.asarray(prob, float)
    pv0 = p_values(np.asarray(cal["0"]), p1)
    pv1 = p_values(np.asarray(cal["1"]), 1.0 - p1)
    alpha = 1.0 - confidence
    in0, in1 = pv0 > alpha, pv1 > alpha
    empty = ~in0 & ~in1
    in0 |= empty & (pv0 >= pv1)
    in1 |= empty & (pv1 > pv0)
    return in0, in1


def set_labels(in0: np.ndarray, in1: np.ndarray, valid: np.ndarray, labels=("0", "1")) -> list[str]:
    """``label0``, ``label1`` or ``label0|label1`` per row ("" where not ``valid``)."""
    a, b = (str(x) for x in labels)
    return ["" if not v else (f"{a}|{b}" if x and y else (a if x else b)) for x, y, v in zip(in0, in1, valid)]


# ---- multiclass: Mondrian prediction sets over K classes ----

def multiclass_scores(P: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Sorted calibration scores 1 - p(k) of the rows of class k, per class index k."""
    P, y = np.asarray(P, float), np.asarray(y).astype(int)
    return {str(k): np.sort(1.0 - P[y == k, k]).tolist() for k in range(P.shape[1])}


def multiclass_sets(cal: dict[str, list[float]], P: np.ndarray, confidence: float) -> np.ndarray:
    """Boolean (n, K): class k in the set of row i (never an empty row for finite probabilities)."""
    P = np.asarray(P, float)
    pv = np.column_stack([p_values(np.asarray(cal[str(k)]), 1.0 - P[:, k]) for k in range(P.shape[1])])
    inside = pv > 1.0 - confidence
    empty = ~inside.any(axis=1)
    inside[empty, pv[empty].argmax(axis=1)] = True
    return inside


def multiclass_set_labels(inside: np.ndarray, labels) -> list[str]:
    """The labels in each row's set, in class order, joined by ``|``."""
    names = [str(x) for x in labels]
    return ["|".join(n for n, hit in zip(names, row) if hit) for row in inside]
