"""``MolPredict``: unimol_tools 0.1.6's prediction API on a run directory that ``MolTrain`` wrote.

``predict(data)`` returns what unimol_tools returns: (n, T) values for regression tasks, (n, T) probabilities of
class 1 for classification tasks, (n, C) class probabilities for multiclass. Every input row comes back in order: a
SMILES RDKit cannot parse gives a NaN row (with a warning) where unimol_tools raises for the whole call.
``save_path`` writes ``<name>.predict.<k>.csv`` (the input + ``predict_<T>`` [+ ``prob_<T>``]) and, when the input
holds the targets, ``test_metric.json``, as unimol_tools does.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.io import layout

from .common import CompatError, CompatWarning, compute_metrics, parse_metrics, read_input

OWNER = "MolPredict"


class MolPredict:
    def __init__(self, load_model=None, cfg=None):
        if cfg is not None:
            load_model = dict(cfg).get("load_model", load_model)
        if not load_model:
            raise CompatError(f"{OWNER}: load_model is empty (give the save_path of a MolTrain run)")
        from uniqsar.io.artifacts import read_json
        from uniqsar.pipeline.predict import Run

        from .train import COMPAT_FILE

        path = Path(str(load_model))
        if not (path / COMPAT_FILE).is_file():
            hint = (" (a uniqsar run directory without it: use uniqsar.load_run)"
                    if (path / layout.MANIFEST).is_file() else "")
            raise CompatError(f"{OWNER}: {str(path)!r} is not a MolTrain save_path: it has no {COMPAT_FILE}{hint}")
        self.load_model = str(path)
        self.compat = read_json(path / COMPAT_FILE)
        self.task = self.compat["task"]
        self.target_cols = list(self.compat["target_cols"])
        self.run = Run(path)

    def predict(self, data, save_path=None, metrics="none"):
        """Predictions for ``data``: a CSV path, a list / array / Series of SMILES, a DataFrame or a dict of lists."""
        col = self.compat["smiles_col"]
        df = read_input(OWNER, data, col)
        frame = self.run.predict_frame(df, col, confidence=None)
        bad = frame["error"] != ""
        if bad.any():
            shown = "; ".join(f"row {i}: {e}" for i, e in frame.loc[bad, "error"].head(5).items())
            warnings.warn(f"{OWNER}: {int(bad.sum())} row(s) could not be predicted (NaN): {shown}", CompatWarning,
                          stacklevel=2)
        y_pred = self._array(frame)
        if save_path is not None or (isinstance(metrics, str) and metrics != "none"):
            self._report(data, df, y_pred, save_path, metrics)
        return y_pred

    def _array(self, frame: pd.DataFrame) -> np.ndarray:
        if self.task == "multiclass":
            t = self.target_cols[0]
            n_cls = int(self.compat.get("multiclass_cnt") or 0)
            out = np.zeros((len(frame), n_cls))
            for c in frame.columns:
                if c.startswith(f"{t}_prob_"):
                    out[:, int(float(c[len(t) + 6:]))] = frame[c].to_numpy(float)
            out[frame["error"].to_numpy() != ""] = np.nan
            return out
        kind = "_prob" if self.task in ("classification", "multilabel_classification") else "_pred"
        return np.column_stack([frame[f"{t}{kind}"].to_numpy(float) for t in self.target_cols])

    def _report(self, data, df: pd.DataFrame, y_pred: np.ndarray, save_path, metrics) -> None:
        from uniqsar.io.artifacts import write_json
        from uniqsar.util import log

        out = df.copy()
        if self.task == "multiclass":
            for k in range(y_pred.shape[1]):
                out[f"prob_{k}"] = y_pred[:, k]
            out[f"predict_{self.target_cols[0]}"] = np.where(np.isnan(y_pred).any(1), np.nan,
                                                             np.nan_to_num(y_pred).argmax(1))
        elif self.task in ("classification", "multilabel_classification"):
            for j, t in enumerate(self.target_cols):
                out[f"prob_{t}"] = y_pred[:, j]
                out[f"predict_{t}"] = np.where(np.isnan(y_pred[:, j]), np.nan, (y_pred[:, j] >= 0.5).astype(float))
        else:
            for j, t in enumerate(self.target_cols):
                out[f"predict_{t}"] = y_pred[:, j]
        scores = None
        if all(t in df.columns for t in self.target_cols) and df[self.target_cols].notna().any().all():
            names = parse_metrics(OWNER, self.task, metrics)
            y = np.column_stack([pd.to_numeric(df[t], errors="coerce").to_numpy(float) for t in self.target_cols])
            scores = compute_metrics(self.task, names, y, y_pred)
            log(f"MolPredict: metrics {', '.join(f'{k} {v:.4f}' for k, v in scores.items())}")
        if save_path is None:
            return
        folder = Path(save_path)
        folder.mkdir(parents=True, exist_ok=True)
        prefix = Path(str(data)).name.split(".")[0] if isinstance(data, (str, Path)) else "test"
        k = 0
        while (folder / f"{prefix}.predict.{k}.csv").exists():
            k += 1
        out.to_csv(folder / f"{prefix}.predict.{k}.csv")
        if scores is not None:
            write_json(folder / "test_metric.json", scores)
        log(f"MolPredict: wrote {folder / f'{prefix}.predict.{k}.csv'}")
