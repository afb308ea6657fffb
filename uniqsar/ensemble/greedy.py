"""Ensembles on out-of-fold predictions: greedy selection with replacement (Caruana et al.
2004), with an honest nested-CV score (weights fitted on the other folds' OOF rows only)."""
from __future__ import annotations

import numpy as np

from uniqsar.metrics import METRICS, score


def _loss(metric: str, y, p) -> float:
    v = score(metric, y, p)
    if not np.isfinite(v):
        return np.inf
    return -v if METRICS[metric].greater_is_better else v


def greedy_weights(P: np.ndarray, y: np.ndarray, metric: str, rounds: int = 50) -> np.ndarray:
    """Weights (summing to 1) over the columns of ``P`` chosen greedily to minimize the loss."""
    n, m = P.shape
    counts = np.zeros(m)
    losses = [_loss(metric, y, P[:, j]) for j in range(m)]
    best = int(np.argmin(losses))
    counts[best] = 1
    current = P[:, best].copy()
    best_loss = losses[best]
    for _ in range(rounds - 1):
        k = counts.sum()
        trial = [(current * k + P[:, j]) / (k + 1) for j in range(m)]
        cand = [_loss(metric, y, t) for t in trial]
        j = int(np.argmin(cand))
        if cand[j] > best_loss + 1e-12 and k >= 1:
            # keep adding only while it does not hurt; a plateau is allowed (smooths weights)
            break
        counts[j] += 1
        current = trial[j]
        best_loss = min(best_loss, cand[j])
    return counts / counts.sum()


def fit_weights(method: str, P: np.ndarray, y: np.ndarray, metric: str, rounds: int = 50) -> np.ndarray:
    m = P.shape[1]
    if method == "mean":
        return np.full(m, 1.0 / m)
    if method == "best":
        w = np.zeros(m)
        w[int(np.argmin([_loss(metric, y, P[:, j]) for j in range(m)]))] = 1.0
        return w
    if method == "greedy":
        return greedy_weights(P, y, metric, rounds)
    raise ValueError(f"unknown ensemble method {method!r}")


def nested_predictions(method: str, P: np.ndarray, y: np.ndarray, folds: np.ndarray, metric: str,
                       rounds: int = 50) -> np.ndarray:
    """OOF predictions of the *ensemble*: each fold's rows are combined with weights fitted on
    the other folds' rows. Scoring these is an honest estimate of the stacked model."""
    out = np.empty(len(y))
    for f in np.unique(folds):
        test = folds == f
        w = fit_weights(method, P[~test], y[~test], metric, rounds)
        out[test] = P[test] @ w
    return out
