"""Applicability domain: Tanimoto similarity of the nearest training molecule (Morgan radius 2, 2048 bits).

Similarities are exact: bit fingerprints as 0/1 float32 rows, intersections by one matrix product
(|A & B| = A . B, exact in float32 below 2**24), Tanimoto = |A & B| / (|A| + |B| - |A & B|).

For calibration on the out-of-fold (OOF) predictions, a training molecule's nearest neighbour is
searched among the molecules of the *other* CV folds only: the models that predicted it out of fold never
saw its fold, so that is the similarity its OOF error goes with (with its own fold it would find itself,
similarity 1).

The in-domain threshold (:func:`domain_threshold`): on the OOF rows, for every candidate threshold at
the 5th..50th percentile of OOF similarity, the absolute errors of the rows below it are compared with
those at or above it by Welch's t statistic; the threshold is the candidate where errors below are the
most significantly larger. If no candidate has t >= 2 (errors do not rise as similarity falls), the
5th percentile is used. A row is in domain when its similarity is >= the threshold.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

RADIUS = 2
N_BITS = 2048
QUANTILES = np.arange(0.05, 0.505, 0.01)  # candidate thresholds: these percentiles of OOF similarity
MIN_T = 2.0  # Welch t below which errors are not considered to rise
_CHUNK = 512  # query rows per matrix product


def fingerprints(smiles: Sequence[str]) -> np.ndarray:
    """(n, 2048) float32 0/1 Morgan bit fingerprints; an unparsable SMILES gets a zero row."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator as G

    RDLogger.DisableLog("rdApp.*")
    gen = G.GetMorganGenerator(radius=RADIUS, fpSize=N_BITS)
    out = np.zeros((len(smiles), N_BITS), dtype=np.float32)
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s) if isinstance(s, str) else None
        if mol is not None:
            out[i] = gen.GetFingerprintAsNumPy(mol)
    return out


def neighbours(Q: np.ndarray, T: np.ndarray, k: int = 1, q_groups: np.ndarray | None = None,
               t_groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar rows of T for each row of Q: (similarities (n, k), descending; indices (n, k)).
    With groups, rows of T in the query's own group are skipped; missing neighbours get NaN / -1."""
    k_eff = min(k, len(T))
    sims, idx = np.full((len(Q), k), np.nan), np.full((len(Q), k), -1, dtype=np.int64)
    if k_eff == 0:
        return sims, idx
    nt = T.sum(1)
    for s in range(0, len(Q), _CHUNK):
        q = Q[s:s + _CHUNK]
        inter = q @ T.T  # (q, n) exact integer counts
        union = q.sum(1)[:, None] + nt[None, :] - inter
        sim = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        if q_groups is not None:
            sim[q_groups[s:s + _CHUNK, None] == t_groups[None, :]] = -np.inf
        top = np.argpartition(-sim, k_eff - 1, axis=1)[:, :k_eff] if k_eff < sim.shape[1] else \
            np.tile(np.arange(sim.shape[1]), (len(q), 1))
        val = np.take_along_axis(sim, top, 1)
        order = np.argsort(-val, axis=1, kind="stable")
        val, top = np.take_along_axis(val, order, 1), np.take_along_axis(top, order, 1)
        ok = np.isfinite(val)
        sims[s:s + _CHUNK, :k_eff] = np.where(ok, val, np.nan)
        idx[s:s + _CHUNK, :k_eff] = np.where(ok, top, -1)
    return sims, idx


def _welch_t(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or len(b) < 2:
        return -np.inf
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return float((a.mean() - b.mean()) / se) if se > 0 else -np.inf


def domain_threshold(similarity: np.ndarray, abs_error: np.ndarray) -> dict:
    """The in-domain similarity threshold from OOF similarities and absolute errors (rule in the module doc)."""
    ok = np.isfinite(similarity) & np.isfinite(abs_error)
    sim, err = similarity[ok], abs_error[ok]
    if len(sim) < 20:
        return {"threshold": float(np.nanmin(similarity)) if ok.any() else 0.0, "rule": "too few OOF rows",
                "welch_t": None, "oof_share_flagged": 0.0}
    best_t, best_thr = -np.inf, None
    for thr in np.unique(np.quantile(sim, QUANTILES)):
        below = sim < thr
        t = _welch_t(err[below], err[~below])
        if t > best_t:
            best_t, best_thr = t, float(thr)
    if best_thr is None or best_t < MIN_T:
        best_thr, rule = float(np.quantile(sim, QUANTILES[0])), "5th percentile (errors do not rise)"
    else:
        rule = "max Welch t of OOF |error| below vs above"
    below = sim < best_thr
    return {"threshold": best_thr, "rule": rule, "welch_t": float(best_t) if np.isfinite(best_t) else None,
            "oof_share_flagged": float(below.mean()),
            "oof_mae_out": float(err[below].mean()) if below.any() else None,
            "oof_mae_in": float(err[~below].mean()) if (~below).any() else None}
