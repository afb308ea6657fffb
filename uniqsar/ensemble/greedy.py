"""Ensembles on out-of-fold predictions: greedy selection with replacement (Caruana et al.
2004), with an honest nested-CV score (weights fitted on the other folds' OOF rows only).

``P`` is ``(n, m)`` (one prediction per row and candidate) or, for multiclass targets, ``(n, m, K)``
(a probability row per candidate); :func:`blend` is the weighted combination for both."""
from __future__ import annotations

import numpy as np

from uniqsar.metrics import METRICS, score


def _loss(metric: str, y, p) -> float:
    v = score(metric, y, p)
    if not np.isfinite(v):
        return np.inf
    return -v if METRICS[metric].greater_is_better else v


def blend(P: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted combination of the candidates (axis 1) of ``P``: ``(n,)`` or ``(n, K)``."""
    w = np.asarray(w, float)
    return P @ w if P.ndim == 2 else np.einsum("nmk,m->nk", P, w)


def greedy_weights(P: np.ndarray, y: np.ndarray, metric: str, rounds: int = 50) -> np.ndarray:
    """Weights (summing to 1) over the columns of ``P`` chosen greedily to minimize the loss.

    Starts from the best column; each round adds (with replacement) the column that lowers the
    loss most. A round that only ties the current loss may add a column already in the
    ensemble (this smooths weights) but never a new one: under rank metrics a constant column
    ties forever and must not soak up weight. Columns with a non-finite own loss are never used.
    """
    m = P.shape[1]
    own = np.array([_loss(metric, y, P[:, j]) for j in range(m)])
    usable = np.isfinite(own)
    if not usable.any():
        raise ValueError("no ensemble candidate has a finite score")
    counts = np.zeros(m)
    best = int(np.argmin(np.where(usable, own, np.inf)))
    counts[best] = 1
    current = P[:, best].copy()
    best_loss = own[best]
    for _ in range(rounds - 1):
        k = counts.sum()
        cand = np.full(m, np.inf)
        for j in np.flatnonzero(usable):
            cand[j] = _loss(metric, y, (current * k + P[:, j]) / (k + 1))
        improving = cand < best_loss - 1e-12
        tie_ok = (cand <= best_loss + 1e-12) & (counts > 0)
        allowed = improving | tie_ok
        if not allowed.any():
            break
        # prefer improvement; among ties prefer the column with the better own loss
        j = int(np.lexsort((own, np.where(allowed, cand, np.inf)))[0])
        counts[j] += 1
        current = (current * k + P[:, j]) / (k + 1)
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
    out = np.empty((len(y),) + P.shape[2:])
    for f in np.unique(folds):
        test = folds == f
        w = fit_weights(method, P[~test], y[~test], metric, rounds)
        out[test] = blend(P[test], w)
    return out


def choose_method(methods, P: np.ndarray, y: np.ndarray, folds: np.ndarray, metric: str,
                  rounds: int = 50) -> tuple[str, np.ndarray, dict[str, float]]:
    """Pick the combination method with the best nested-CV score (ties -> earlier in
    ``methods``). Returns (method, its nested predictions, nested score of every method).
    Choosing among a handful of methods adds a little optimism to the winner's score; the
    alternatives' scores are reported next to it."""
    scores, preds = {}, {}
    for m in methods:
        preds[m] = nested_predictions(m, P, y, folds, metric, rounds)
        scores[m] = _loss(metric, y, preds[m])
    best = min(methods, key=lambda m: scores[m])
    sign = -1 if METRICS[metric].greater_is_better else 1
    return best, preds[best], {m: sign * v for m, v in scores.items()}
