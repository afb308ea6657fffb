"""Calibrate a target's intervals / sets and its applicability domain from the run's OOF predictions,
and apply the calibration to new predictions. The calibration is plain JSON
(``targets/<T>/calibration.json``); per-row OOF values go to ``targets/<T>/oof_uncertainty.csv``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.data import transform as target_transform
from uniqsar.io import layout
from uniqsar.pipeline import oof as oof_columns
from uniqsar.uncertainty import conformal as cp
from uniqsar.uncertainty.domain import domain_threshold, fingerprints, neighbours

FILE = layout.CALIBRATION
OOF_FILE = layout.OOF_UNCERTAINTY
LEVELS = (0.8, 0.9, 0.95)  # OOF coverage recorded in metrics.json
CURVE = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)  # coverage curve in the calibration (report)
DEFAULT_CONFIDENCE = 0.9


def _z(transform: str, v: np.ndarray) -> np.ndarray:
    """Values on the scale the learners were fitted on (log10p1 needs > -1; predictions always are)."""
    v = np.asarray(v, float)
    return target_transform.forward(transform, np.maximum(v, -1 + 1e-12) if transform == "log10p1" else v)


def calibrate(task: str, y: np.ndarray, pred: np.ndarray, members: np.ndarray | None, weights, folds: np.ndarray,
              similarity: np.ndarray, transform: str = "none", knn: tuple | None = None) -> tuple[dict, pd.DataFrame]:
    """Calibration dict and per-row OOF frame. ``pred``: the ensemble's (nested) OOF prediction;
    ``members``: (n, m) OOF predictions of the ensemble members (regression); ``similarity``: OOF
    nearest-neighbour similarity (own fold excluded); ``knn``: (similarities, indices) of each row's
    nearest other-fold training molecules (``domain.neighbours``), for the neighbour-error feature."""
    y, pred, folds = np.asarray(y, float), np.asarray(pred, float), np.asarray(folds)
    if task == "multiclass":
        return _calibrate_multiclass(y, pred, folds, similarity)
    # the domain rule looks at errors on the scale the learners fitted (log10(1 + y) for skewed targets: there
    # an error of 10 h on a 500 h half-life is small, on a 1 h one it is not)
    err = np.abs(y - pred) if task == "binary" else np.abs(_z(transform, y) - _z(transform, pred))
    cal = {"task": task, "transform": transform, "n": int(len(y)),
           "domain": {**domain_threshold(similarity, err), "error_scale": "none" if task == "binary" else transform}}
    rows = pd.DataFrame({"y": y, "pred": pred, "fold": folds, "nn_similarity": similarity, "abs_error": err})
    rows["in_domain"] = similarity >= cal["domain"]["threshold"]
    if task == "binary":
        cal["method"] = "Mondrian (class-conditional) conformal sets on OOF probabilities"
        cal["class_scores"] = cp.class_scores(pred, y)
        cover = {}
        for c in CURVE:
            hit = np.zeros(len(y), bool)
            size = np.zeros(len(y))
            for f in np.unique(folds):
                test = folds == f
                in0, in1 = cp.prediction_sets(cp.class_scores(pred[~test], y[~test]), pred[test], c)
                hit[test] = np.where(y[test] == 1, in1, in0)
                size[test] = in0.astype(int) + in1
                if c == DEFAULT_CONFIDENCE:
                    rows.loc[test, "set_90"] = cp.set_labels(in0, in1, np.ones(test.sum(), bool))
            cover[str(c)] = {"coverage": float(hit.mean()), "mean_set_size": float(size.mean())}
        cal["oof_coverage"] = cover
        return cal, rows

    z, zhat = _z(transform, y), _z(transform, pred)
    Zm = _z(transform, members) if members is not None and members.shape[1] else zhat[:, None]
    w = np.asarray(weights if members is not None and members.shape[1] else [1.0], float)
    r = np.abs(z - zhat)
    spread_med = np.median(np.std(Zm, axis=1)) if Zm.shape[1] > 1 else 0.0
    eps_spread = float(0.05 * spread_med) if spread_med > 0 else 1e-6
    eps_resid = float(0.05 * np.median(r)) if np.median(r) > 0 else 1e-6
    median = float(np.median(z))
    nb = cp.neighbour_error(knn[0], knn[1], r) if knn is not None else None
    F = cp.difficulty_features(zhat, Zm, w, similarity, median, eps_spread, nb, eps_resid)
    scores = cp.cross_fitted_scores(F, r, folds, eps_resid)
    model = cp.fit_difficulty(F, r, eps_resid)
    cal.update(method="normalized split-conformal on OOF residuals (cross-fitted difficulty model)",
               features=list(cp.FEATURES), median=median, eps_spread=eps_spread, eps_resid=eps_resid,
               weights=w.tolist(), difficulty=model, scores=np.sort(scores).tolist())
    cover = {}
    sig = cp.sigma(model, F)
    for c in CURVE:
        hit = np.zeros(len(y), bool)
        width = np.zeros(len(y))
        for f in np.unique(folds):
            test = folds == f
            q = cp.conformal_quantile(scores[~test], c)
            s_f = sig[test]
            lo = target_transform.inverse(transform, zhat[test] - q * s_f)
            hi = target_transform.inverse(transform, zhat[test] + q * s_f)
            hit[test] = (y[test] >= lo) & (y[test] <= hi)
            width[test] = hi - lo
            if c == DEFAULT_CONFIDENCE:
                rows.loc[test, "lower_90"], rows.loc[test, "upper_90"] = lo, hi
        cover[str(c)] = {"coverage": float(hit.mean()), "mean_width": float(np.mean(width))}
    cal["oof_coverage"] = cover
    rows["sigma"] = sig
    return cal, rows


def _calibrate_multiclass(y: np.ndarray, P: np.ndarray, folds: np.ndarray, similarity: np.ndarray):
    """Mondrian conformal sets over the K classes; the domain rule looks at 1 - p(true class)."""
    idx = y.astype(int)
    err = 1.0 - P[np.arange(len(y)), idx]
    cal = {"task": "multiclass", "transform": "none", "n": int(len(y)),
           "domain": {**domain_threshold(similarity, err), "error_scale": "none"},
           "method": "Mondrian (class-conditional) conformal sets on OOF class probabilities",
           "class_scores": cp.multiclass_scores(P, y)}
    rows = pd.DataFrame({"y": y, "pred": P.argmax(axis=1), "fold": folds, "nn_similarity": similarity,
                         "abs_error": err})
    rows["in_domain"] = similarity >= cal["domain"]["threshold"]
    cover = {}
    for c in CURVE:
        hit = np.zeros(len(y), bool)
        size = np.zeros(len(y))
        for f in np.unique(folds):
            test = folds == f
            inside = cp.multiclass_sets(cp.multiclass_scores(P[~test], y[~test]), P[test], c)
            hit[test] = inside[np.arange(int(test.sum())), idx[test]]
            size[test] = inside.sum(axis=1)
            if c == DEFAULT_CONFIDENCE:
                rows.loc[test, "set_90"] = cp.multiclass_set_labels(inside, range(P.shape[1]))
        cover[str(c)] = {"coverage": float(hit.mean()), "mean_set_size": float(size.mean())}
    cal["oof_coverage"] = cover
    return cal, rows


def calibrate_target(tdir: Path, ensemble: dict) -> dict:
    """Calibrate from ``tdir/oof.csv`` + ``ensemble.json``; writes the two files, returns the calibration."""
    from uniqsar.io.artifacts import write_json

    oof = pd.read_csv(tdir / layout.OOF)
    if (oof["fold"] < 0).all() or oof["ensemble_nested"].isna().all():
        cal = {"task": ensemble["task"], "available": False,
               "reason": "no out-of-fold predictions (n_folds = 0): no intervals, sets or domain threshold"}
        write_json(tdir / FILE, cal)
        return cal
    folds = oof["fold"].to_numpy()
    fps = fingerprints(oof["smiles"].tolist())
    knn = neighbours(fps, fps, cp.K_NEIGHBOURS, folds, folds)
    members = [m for m in ensemble["members"] if m["id"] in oof.columns]
    M = oof[[m["id"] for m in members]].to_numpy(float) if members and ensemble["task"] == "regression" else None
    pred = oof_columns.get(oof, "ensemble_nested", oof_columns.n_classes_of(ensemble))
    cal, rows = calibrate(ensemble["task"], oof["y"].to_numpy(), pred, M,
                          [m["weight"] for m in members], folds, knn[0][:, 0], ensemble.get("transform", "none"), knn)
    cal.update(available=True, members=[m["id"] for m in members])
    rows.insert(0, "smiles", oof["smiles"])
    rows.to_csv(tdir / OOF_FILE, index=False)
    write_json(tdir / FILE, cal)
    return cal


def query_features(query_fps: np.ndarray, train_fps: np.ndarray, train_abs_err: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Nearest-neighbour similarity and neighbour error (None without training errors) of new molecules."""
    sims, idx = neighbours(query_fps, train_fps, cp.K_NEIGHBOURS)
    nb = cp.neighbour_error(sims, idx, np.asarray(train_abs_err, float)) if train_abs_err is not None else None
    return sims[:, 0], nb


def apply(cal: dict, pred: np.ndarray, members: np.ndarray | None, similarity: np.ndarray,
          confidence: float = DEFAULT_CONFIDENCE, nb_error: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-row values for valid molecules: ``lower``/``upper`` (regression), ``in0``/``in1`` (binary) or
    ``sets`` ((n, K) booleans, multiclass), and ``in_domain``. ``members``: (n, m) member predictions in ``cal['members']`` order; ``nb_error``:
    ``conformal.neighbour_error`` of the molecules' nearest training molecules and their OOF ``abs_error``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), not {confidence}")
    pred = np.asarray(pred, float)
    n = len(pred)
    if not cal.get("available", True):
        nan = np.full(n, np.nan)
        return {"lower": nan, "upper": nan, "in0": None, "in1": None, "sets": None, "in_domain": None}
    out = {"in_domain": np.asarray(similarity) >= cal["domain"]["threshold"]}
    if cal["task"] == "multiclass":
        out["sets"] = cp.multiclass_sets(cal["class_scores"], pred, confidence)
        return out
    if cal["task"] == "binary":
        out["in0"], out["in1"] = cp.prediction_sets(cal["class_scores"], pred, confidence)
        return out
    t = cal["transform"]
    zhat = _z(t, pred)
    Zm = _z(t, members) if members is not None and members.shape[1] else zhat[:, None]
    w = np.asarray(cal.get("weights") or np.ones(Zm.shape[1]), float)
    F = cp.difficulty_features(zhat, Zm, w, similarity, cal["median"], cal["eps_spread"], nb_error, cal["eps_resid"])
    q = cp.conformal_quantile(np.asarray(cal["scores"]), confidence)
    s = cp.sigma(cal["difficulty"], F)
    out["lower"] = target_transform.inverse(t, zhat - q * s)
    out["upper"] = target_transform.inverse(t, zhat + q * s)
    return out
