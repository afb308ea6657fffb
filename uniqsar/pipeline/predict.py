"""Predict with a finished run directory. Every input row comes back, in order."""
from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.data import transform as target_transform
from uniqsar.data.dataset import find_smiles_column, iter_table, standardize_column
from uniqsar.data.standardize import LEGACY_MODE
from uniqsar.ensemble.greedy import blend
from uniqsar.featurize.cache import FeatureCache
from uniqsar.featurize.matrix import FeatureStore
from uniqsar.io import layout
from uniqsar.io.artifacts import RunDirError, check_run_dir, read_json
from uniqsar.io.verify import member_dir, one_line, verify_member, verify_weights
from uniqsar.registry import get_learner_class
from uniqsar.util import log


class Run:
    """A loaded run directory. Builds learners from registry keys + native files only, after checking every
    member file and weights file against the sha256 the fit recorded (``uniqsar.io.verify``): a run that is
    missing or has a changed file is refused here, before anything is predicted."""

    def __init__(self, path, cache_dir=None, use_cache: bool = True, n_jobs: int = 1):
        self.path = check_run_dir(path)
        self.manifest = read_json(self.path / layout.MANIFEST)
        self.n_jobs = n_jobs
        self._cache = FeatureCache(cache_dir, enabled=use_cache)
        self.ensembles = {t: read_json(self.path / m["dir"] / layout.ENSEMBLE)
                          for t, m in self.manifest["targets"].items()}
        self._learners: dict[str, list] = {}
        self._loaded: dict = {}  # (folder, part) -> model: a joint model serves several targets, loaded once
        self._parts = {t: self._verified_parts(t) for t in self.targets}
        verify_weights(self.path, self.manifest, self._store())
        for t in self.targets:
            self._members(t)
        self._uncertainty: dict = {}

    @property
    def standardize(self) -> str:
        """How this run standardized its training molecules (new molecules get the same); older runs: full."""
        return self.manifest.get("standardize", LEGACY_MODE)

    @property
    def targets(self) -> list[str]:
        return list(self.manifest["targets"])

    def task(self, target: str) -> str:
        return self.manifest["targets"][target]["task"]

    def _verified_parts(self, target: str) -> list[list[str]]:
        ens = self.ensembles[target]
        members = ens.get("members") if isinstance(ens, dict) else None
        if not isinstance(members, list) or not members or not all(
                isinstance(m, dict) and {"learner", "path", "features", "weight"} <= set(m) for m in members):
            raise RunDirError(f"{self.path}: the ensemble of target {target!r} is damaged (ensemble.json lists no "
                              "usable members); restore the run directory from a copy or refit")
        return [verify_member(self.path, m) for m in members]

    def _store(self) -> FeatureStore:
        return FeatureStore(self.manifest["featurizers"], self._cache, n_jobs=self.n_jobs, verbose=False)

    def _members(self, target: str):
        if target not in self._learners:
            loaded = []
            for m, parts in zip(self.ensembles[target]["members"], self._parts[target]):
                try:
                    cls = get_learner_class(m["learner"])
                except KeyError:
                    raise RunDirError(f"{self.path}: member {m.get('id')!r} needs learner {m['learner']!r}, which "
                                      "this uniqsar installation does not have") from None
                mdir = member_dir(self.path, m)
                models = []
                for part in parts:
                    try:
                        with warnings.catch_warnings():  # e.g. torch's unpickler notes on a foreign file
                            warnings.simplefilter("ignore")
                            key = (str(mdir), part)
                            if key not in self._loaded:
                                self._loaded[key] = cls.load(mdir / part)
                            models.append(self._loaded[key])
                    except Exception as e:  # a damaged file must be one clear line, never a traceback
                        raise RunDirError(f"{self.path}: cannot load the {m['learner']} model in {mdir / part} "
                                          f"({one_line(e)}); restore the run directory from a copy or refit") from None
                loaded.append((m, models))
            self._learners[target] = loaded
        return self._learners[target]

    def leaderboard(self) -> pd.DataFrame:
        return pd.read_csv(self.path / layout.LEADERBOARD)

    def classes(self, target: str) -> list | None:
        """The class labels of a binary / multiclass target (index order), as written in the training data."""
        return self.manifest["targets"][target].get("classes")

    def predict_canonical(self, canonical: list[str]) -> dict[str, np.ndarray]:
        """Raw predictions (value, probability of class 1, or the (n, K) class probabilities of a multiclass
        target) per target for valid SMILES."""
        return {t: pred for t, (pred, _) in self.predict_members(canonical).items()}

    def predict_members(self, canonical: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per target: the ensemble prediction (n,) and each member's prediction (n, members), original scale;
        multiclass: (n, K) and (n, members, K) class probabilities."""
        store = self._store()
        out = {}
        shared: dict[str, np.ndarray] = {}  # a joint member's (n, T) predictions, computed once for its targets
        for target in self.targets:
            cols = []
            for member, models in self._members(target):
                X = store.matrix(member["features"], canonical)
                if "output" in member:  # joint targets (pipeline/joint.py): this target's column
                    if member["path"] not in shared:
                        shared[member["path"]] = np.mean([m.predict(X) for m in models], axis=0)
                    raw = shared[member["path"]][:, int(member["output"])]
                else:
                    raw = np.mean([m.predict(X) for m in models], axis=0)
                cols.append(target_transform.inverse(self.ensembles[target].get("transform", "none"), raw))
            M = np.stack(cols, axis=1) if cols else np.zeros((len(canonical), 0))
            weights = np.array([m["weight"] for m, _ in self._members(target)])
            out[target] = (blend(M, weights), M)
        return out

    def uncertainty(self, target: str):
        """The target's conformal calibration and applicability domain (``uniqsar.uncertainty``)."""
        from uniqsar.uncertainty.columns import TargetUncertainty

        if target not in self._uncertainty:
            self._uncertainty[target] = TargetUncertainty.load(self.path / self.manifest["targets"][target]["dir"])
        return self._uncertainty[target]

    def predict_frame(self, df: pd.DataFrame, smiles_col: str | None = None, confidence: float | None = 0.9
                      ) -> pd.DataFrame:
        """``df`` with ``<T>_pred`` (+ ``<T>_prob`` for binary, ``<T>_prob_<label>`` per class for multiclass;
        a class target's ``<T>_pred`` is its label as written in the training data), the uncertainty columns of
        ``uniqsar.uncertainty.columns`` at ``confidence`` (None: without them), and ``error`` appended."""
        col = find_smiles_column(df, smiles_col or (self.manifest["smiles_col"] if self.manifest["smiles_col"] in df.columns else None))
        rows = standardize_column(df, col, n_jobs=self.n_jobs, mode=self.standardize)
        valid = (rows["error"] == "").to_numpy()
        canonical = rows["canonical"][valid].tolist()
        preds = self.predict_members(canonical) if canonical else {t: (np.zeros(0), None) for t in self.targets}
        out = df.copy()
        for target in self.targets:
            for name, values in class_columns(target, self.task(target), self.classes(target), valid,
                                              preds[target][0]).items():
                out[name] = values
            if confidence is not None:
                pred, members = preds[target]
                for name, values in self.uncertainty(target).columns(target, self.task(target), valid, canonical,
                                                                     pred, members, confidence,
                                                                     self.classes(target)).items():
                    out[name] = values
        out["error"] = rows["error"].to_numpy()
        return out

    def explain(self, smiles, target: str | None = None) -> pd.DataFrame:
        """Atom weights of the ensemble prediction (atom occlusion, ``uniqsar.explain``): one row per input row x
        target x atom (``row``, ``target``, ``atom_index`` of the input SMILES as parsed, ``symbol``, ``weight``)."""
        from uniqsar.explain.occlusion import explain_smiles

        return explain_smiles(self, [smiles] if isinstance(smiles, str) else list(smiles),
                              [target] if target else None)[0]

    def predict(self, data, smiles_col: str | None = None, intervals: bool = False, confidence: float = 0.9):
        """List of SMILES -> array (one target) or DataFrame (several targets, or ``intervals=True``: the
        interval / set and domain columns at ``confidence``); DataFrame -> DataFrame (with those columns)."""
        if isinstance(data, pd.DataFrame):
            return self.predict_frame(data, smiles_col, confidence)
        if isinstance(data, str):
            data = [data]
        frame = self.predict_frame(pd.DataFrame({"smiles": list(data)}), "smiles", confidence if intervals else None)
        if intervals:
            return frame
        if len(self.targets) == 1:
            t = self.targets[0]
            if self.task(t) == "multiclass":  # (n, K) class probabilities, columns in ``classes(t)`` order
                return frame[[prob_column(t, c) for c in self.classes(t)]].to_numpy(dtype=float)
            col = f"{t}_prob" if self.task(t) == "binary" else f"{t}_pred"
            return frame[col].to_numpy(dtype=float)
        return frame.drop(columns=["smiles"])


def prob_column(target: str, label) -> str:
    return f"{target}_prob_{label}"


def _labels(classes: list, index: np.ndarray) -> pd.Series:
    """Class labels for class indices (NaN -> missing): integers as a nullable integer column, else text."""
    ok = ~np.isnan(index)
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
        values = np.full(len(index), np.nan)
        values[ok] = np.asarray(classes, float)[index[ok].astype(int)]
        return pd.array(values, dtype="Float64").astype("Int64")
    values = np.full(len(index), None, dtype=object)
    values[ok] = np.asarray([str(c) for c in classes], dtype=object)[index[ok].astype(int)]
    return pd.array(values, dtype=object)


def class_columns(target: str, task: str, classes: list | None, valid: np.ndarray, pred: np.ndarray) -> dict:
    """``<T>_pred`` (+ ``<T>_prob``, or ``<T>_prob_<label>`` per class) for the rows of ``valid``."""
    n = len(valid)
    if task == "multiclass":
        P = np.full((n, len(classes)), np.nan)
        P[valid] = pred
        missing = np.isnan(P).any(axis=1)
        index = np.where(missing, np.nan, np.nan_to_num(P).argmax(axis=1))
        return {f"{target}_pred": _labels(classes, index),
                **{prob_column(target, c): P[:, k] for k, c in enumerate(classes)}}
    full = np.full(n, np.nan)
    full[valid] = pred
    if task != "binary":
        return {f"{target}_pred": full}
    index = np.where(np.isnan(full), np.nan, (full >= 0.5).astype(float))
    return {f"{target}_pred": _labels(classes or [0, 1], index), f"{target}_prob": full}


def predict_csv(run: Run, src, dst, smiles_col: str | None = None, chunksize: int = 2000,
                confidence: float = 0.9) -> int:
    """Stream ``src`` (CSV or TSV, read as ``fit`` reads it; cells kept as text) through the run in chunks of
    ``chunksize`` rows, logging progress after each. The output goes to a temporary file beside ``dst``, renamed
    at the end: a failed predict leaves no partial output. Returns the number of rows written."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    n, t0 = 0, time.time()
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            for i, chunk in enumerate(iter_table(src, chunksize, as_text=True)):
                res = run.predict_frame(chunk, smiles_col, confidence)
                res.to_csv(fh, header=(i == 0), index=False)
                n += len(res)
                log(f"predicted {n} rows in {time.time() - t0:.1f} s")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plainly created file (mkstemp makes it private)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
