"""Out-of-fold predictions in ``targets/<T>/oof.csv``: one column per candidate (and ``ensemble_nested``,
``ensemble_in_sample``) holding the prediction; for a multiclass target that column holds the arg-max class
index and ``<column>:p<k>`` the probability of class ``k`` (``y`` is the class index; ``ensemble.json``'s
``classes`` names them)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def prob_columns(name: str, n_classes: int) -> list[str]:
    return [f"{name}:p{k}" for k in range(n_classes)]


def put(frame: pd.DataFrame, name: str, values: np.ndarray) -> None:
    """Add ``values`` ((n,) or (n, K)) to ``frame`` as column ``name`` (+ its probability columns)."""
    values = np.asarray(values, float)
    if values.ndim == 1:
        frame[name] = values
        return
    missing = np.isnan(values).any(axis=1)
    frame[name] = np.where(missing, np.nan, np.nan_to_num(values).argmax(axis=1))
    for col, v in zip(prob_columns(name, values.shape[1]), values.T):
        frame[col] = v


def get(frame: pd.DataFrame, name: str, n_classes: int | None = None) -> np.ndarray:
    """Column ``name`` as written by :func:`put`: (n,) or, with ``n_classes``, the (n, K) probabilities."""
    if n_classes:
        return frame[prob_columns(name, n_classes)].to_numpy(float)
    return frame[name].to_numpy(float)


def n_classes_of(ensemble: dict) -> int | None:
    """K of a multiclass target's ``ensemble.json``; None for regression and binary."""
    return len(ensemble.get("classes") or []) if ensemble.get("task") == "multiclass" else None
