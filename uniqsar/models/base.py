"""Learner interface (the scikit-learn contract, plus a search space and native save/load).

- ``__init__(task, seed=0, n_threads=1, **params)`` only stores; fitted state ends in ``_``.
- ``input``: ``"features"`` -> ``X`` is a float32 matrix from the recipe's featurizers;
  ``"smiles"`` -> ``X`` is a 1-D array of standardized canonical SMILES (neural learners that
  featurize themselves).
- ``fit(X, y, X_valid=None, y_valid=None)`` returns self; the validation part, when given, may
  drive early stopping and nothing else.
- ``predict(X)``: regression -> values; binary -> probability of class 1 (the pipeline
  thresholds). ``predict_proba`` returns the two-column matrix for binary tasks.
- ``search_space(trial, task)``: Optuna suggestions -> params dict; lives beside the learner.
- ``save(dir)`` / ``load(dir)``: native formats only (text/JSON/state_dict); never pickle.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

TASKS = ("regression", "binary")


class Learner:
    key: ClassVar[str] = ""
    input: ClassVar[str] = "features"
    tasks: ClassVar[tuple[str, ...]] = TASKS
    defaults: ClassVar[dict[str, Any]] = {}  # tuned parameters (the search space's keys) and their defaults
    fixed_defaults: ClassVar[dict[str, Any]] = {}  # parameters that are not tuned, and their defaults
    strict_params: ClassVar[bool] = False  # True: any parameter outside the two dicts above is an error

    def __init__(self, task: str, seed: int = 0, n_threads: int = 1, **params: Any) -> None:
        if task not in self.tasks:
            raise ValueError(f"learner {self.key!r} does not support task {task!r}")
        if self.strict_params:
            unknown = set(params) - set(self.defaults) - set(self.fixed_defaults)
            if unknown:
                raise ValueError(f"learner {self.key!r} got unknown parameter(s) {sorted(unknown)}")
        self.task = task
        self.seed = int(seed)
        self.n_threads = int(n_threads)
        self.params = params

    def _param(self, name: str):
        """A parameter's value: as passed, else its default (tuned or fixed)."""
        if name in self.params:
            return self.params[name]
        return self.defaults[name] if name in self.defaults else self.fixed_defaults[name]

    @staticmethod
    def search_space(trial, task: str) -> dict[str, Any]:
        return {}

    def fit(self, X, y, X_valid=None, y_valid=None) -> "Learner":  # pragma: no cover
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:
        if self.task != "binary":
            raise AttributeError("predict_proba is only defined for binary tasks")
        p = self.predict(X)
        return np.column_stack([1.0 - p, p])

    # -- persistence ------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:  # pragma: no cover
        raise NotImplementedError

    def _load_state(self, path: Path) -> None:  # pragma: no cover
        raise NotImplementedError

    def save(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"key": self.key, "task": self.task, "seed": self.seed, "params": self.params}
        (path / "learner.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        self._save_state(path)

    @classmethod
    def load(cls, path) -> "Learner":
        path = Path(path)
        meta = json.loads((path / "learner.json").read_text())
        if meta["key"] != cls.key:
            raise ValueError(f"{path} holds a {meta['key']!r} learner, not {cls.key!r}")
        obj = cls(meta["task"], seed=meta["seed"], **meta["params"])
        obj._load_state(path)
        return obj


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o)}")
