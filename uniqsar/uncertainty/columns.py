"""The uncertainty columns of a prediction table, per target ``T``: ``T_lower``/``T_upper`` (regression)
or ``T_set`` (binary and multiclass: the labels in the conformal set, joined by ``|``), ``T_nn_similarity`` and ``T_in_domain`` (``true``/``false``). Invalid rows get
NaN / empty strings."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.io import layout
from uniqsar.uncertainty import calibration
from uniqsar.uncertainty.conformal import multiclass_set_labels, set_labels
from uniqsar.uncertainty.domain import fingerprints


class TargetUncertainty:
    """A target's calibration and training fingerprints (computed once, from its ``oof.csv`` SMILES)."""

    def __init__(self, tdir: Path, cal: dict | None):
        self.tdir = Path(tdir)
        self.cal = cal or {"available": False, "reason": "the run has no calibration.json (fitted by an older uniqsar)"}
        self._train = None

    @classmethod
    def load(cls, tdir: Path) -> "TargetUncertainty":
        from uniqsar.io.artifacts import read_json

        path = Path(tdir) / calibration.FILE
        return cls(tdir, read_json(path) if path.is_file() else None)

    @property
    def members(self) -> list[str]:
        return list(self.cal.get("members", []))

    def training(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Training fingerprints and OOF absolute errors (None when the run has no calibration)."""
        if self._train is None:
            path = self.tdir / calibration.OOF_FILE
            if path.is_file():
                oof = pd.read_csv(path, usecols=["smiles", "abs_error"])
                self._train = fingerprints(oof["smiles"].tolist()), oof["abs_error"].to_numpy(float)
            else:
                smiles = pd.read_csv(self.tdir / layout.OOF, usecols=["smiles"])["smiles"].tolist()
                self._train = fingerprints(smiles), None
        return self._train

    def columns(self, target: str, task: str, valid: np.ndarray, canonical: list[str], pred: np.ndarray,
                members: np.ndarray | None, confidence: float, classes: list | None = None) -> dict[str, object]:
        """New columns (full length ``len(valid)``) for the valid rows' ``pred`` / member predictions; a set names
        the classes by ``classes`` (the training labels; default 0 / 1)."""
        n = len(valid)
        sim, nb = calibration.query_features(fingerprints(canonical), *self.training())
        res = calibration.apply(self.cal, pred, members if task == "regression" else None, sim, confidence, nb)
        cols: dict[str, object] = {}
        if task == "multiclass":
            labels = np.full(n, "", dtype=object)
            if res.get("sets") is not None:
                labels[valid] = multiclass_set_labels(res["sets"], classes or range(np.shape(pred)[1]))
            cols[f"{target}_set"] = labels
        elif task == "binary":
            labels = np.full(n, "", dtype=object)
            if res["in0"] is not None:
                labels[valid] = set_labels(res["in0"], res["in1"], np.ones(int(valid.sum()), bool), classes or (0, 1))
            cols[f"{target}_set"] = labels
        else:
            for key in ("lower", "upper"):
                full = np.full(n, np.nan)
                full[valid] = res[key]
                cols[f"{target}_{key}"] = full
        full = np.full(n, np.nan)
        full[valid] = sim
        cols[f"{target}_nn_similarity"] = full
        flag = np.full(n, "", dtype=object)
        if res["in_domain"] is not None:
            flag[valid] = np.where(res["in_domain"], "true", "false")
        cols[f"{target}_in_domain"] = flag
        return cols
