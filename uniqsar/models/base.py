"""Learner interface (the scikit-learn contract, plus a search space and native save/load).

- ``__init__(task, seed=0, n_threads=1, **params)`` only stores; fitted state ends in ``_``.
- ``input``: ``"features"`` -> ``X`` is a float32 matrix from the recipe's featurizers;
  ``"smiles"`` -> ``X`` is a 1-D array of standardized canonical SMILES (neural learners that
  featurize themselves).
- ``fit(X, y, X_valid=None, y_valid=None)`` returns self; the validation part, when given, may
  drive early stopping and nothing else.
- ``predict(X)``: regression -> values; binary -> probability of class 1 (the pipeline
  thresholds); multiclass -> the ``(n, K)`` matrix of class probabilities (rows sum to 1).
  ``predict_proba`` returns the two-column matrix for binary tasks and the same matrix for multiclass.
- multiclass: ``y`` holds class indices ``0..K-1``; ``n_classes`` (K) is passed by the pipeline, since a
  training part may lack the rarest class (None: ``max(y) + 1``). Learners that do not support it leave
  ``"multiclass"`` out of ``tasks``.
- ``"multitask"`` (joint targets; torch learners only): ``y`` is ``(n, T)`` with NaN where a molecule has no
  label, ``target_tasks`` names each column's task (regression or binary); one network, a masked loss;
  ``predict`` returns ``(n, T)`` (values / probabilities of class 1).
- ``search_space(trial, task)``: Optuna suggestions -> params dict; lives beside the learner.
- ``save(dir)`` / ``load(dir)``: native formats only (text/JSON/state_dict); never pickle.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

TASKS = ("regression", "binary", "multiclass")
JOINT = "multitask"  # several targets fitted together (learners with ``JOINT`` in ``tasks``)
JOINT_TASKS = ("regression", "binary")  # what each joint target may be


class Learner:
    key: ClassVar[str] = ""
    input: ClassVar[str] = "features"
    tasks: ClassVar[tuple[str, ...]] = TASKS
    defaults: ClassVar[dict[str, Any]] = {}  # tuned parameters (the search space's keys) and their defaults
    fixed_defaults: ClassVar[dict[str, Any]] = {}  # parameters that are not tuned, and their defaults
    strict_params: ClassVar[bool] = True  # any parameter outside the two dicts above is an error
    #: the conformance tests build the learner with these parameters (a tiny, fast configuration)
    test_params: ClassVar[dict[str, Any]] = {}
    #: size parameters (trees, epochs) that the search-space test sets over a sampled configuration, so that
    #: fitting with it stays tiny
    test_size_caps: ClassVar[dict[str, Any]] = {}
    #: True: the learner starts from weights with an identity (``weights_identity``), recorded in the run manifest
    needs_weights: ClassVar[bool] = False
    #: an optional package imported inside the methods; the conformance tests skip the learner where it is missing
    requires_package: ClassVar[str | None] = None

    def __init__(self, task: str, seed: int = 0, n_threads: int = 1, n_classes: int | None = None,
                 target_tasks=None, **params: Any) -> None:
        if task not in self.tasks:
            raise ValueError(f"learner {self.key!r} does not support task {task!r}")
        self.n_classes = int(n_classes) if n_classes is not None and task == "multiclass" else None
        self.target_tasks = list(target_tasks or []) if task == JOINT else None
        if task == JOINT and (not self.target_tasks or set(self.target_tasks) - set(JOINT_TASKS)):
            raise ValueError(f"learner {self.key!r}: joint targets need target_tasks, each one of {JOINT_TASKS}")
        if self.strict_params:
            unknown = set(params) - set(self.defaults) - set(self.fixed_defaults)
            if unknown:
                raise ValueError(f"learner {self.key!r} got unknown parameter(s) {sorted(unknown)}; known: "
                                 f"{sorted(set(self.defaults) | set(self.fixed_defaults))}")
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

    def weights_identity(self) -> dict | None:
        """JSON identity of the weights the learner starts from (``kind``, ``name``, ``sha256`` of a file,
        ``provenance``; see ``uniqsar/models/provenance.py``). None: no pretrained weights."""
        return None

    def fit(self, X, y, X_valid=None, y_valid=None) -> "Learner":  # pragma: no cover
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _classes(self, y) -> int:
        """K for a multiclass fit: as passed, else ``max(y) + 1``; checks that ``y`` holds class indices."""
        y = np.asarray(y, float)
        y = y[np.isfinite(y)]
        k = self.n_classes or (int(y.max()) + 1 if len(y) else 0)
        if len(y) and (np.any(y < 0) or np.any(y >= k) or np.any(y != np.round(y))):
            raise ValueError(f"learner {self.key!r}: multiclass labels must be class indices 0..{k - 1}")
        if k < 2:
            raise ValueError(f"learner {self.key!r}: multiclass needs at least 2 classes")
        self.n_classes = k
        return k

    def predict_proba(self, X) -> np.ndarray:
        if self.task == "multiclass":
            return self.predict(X)
        if self.task != "binary":
            raise AttributeError("predict_proba is only defined for binary and multiclass tasks")  # noqa: E501
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
        meta = {"key": self.key, "task": self.task, "seed": self.seed, "params": self.params,
                **({"n_classes": self.n_classes} if self.task == "multiclass" else {}),
                **({"target_tasks": self.target_tasks} if self.task == JOINT else {})}
        (path / "learner.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        self._save_state(path)

    @classmethod
    def load(cls, path) -> "Learner":
        path = Path(path)
        meta = json.loads((path / "learner.json").read_text())
        if meta["key"] != cls.key:
            raise ValueError(f"{path} holds a {meta['key']!r} learner, not {cls.key!r}")
        obj = cls(meta["task"], seed=meta["seed"], n_classes=meta.get("n_classes"),
                  target_tasks=meta.get("target_tasks"), **meta["params"])
        obj._load_state(path)
        return obj


class PretrainedLearner(Learner):
    """A learner that fine-tunes neural weights chosen by the parameters ``weights`` and ``arch`` (random inits are
    seeded with the learner's seed), resolved by ``pretrained_module``: ``identity(weights, seed, arch)``."""

    input = "smiles"
    needs_weights = True
    pretrained_module: ClassVar[str] = ""

    def pretrained(self):
        return importlib.import_module(self.pretrained_module)

    def weights_identity(self) -> dict:
        return self.pretrained().identity(self._param("weights"), self.seed, self._param("arch"))

    def init_weights_record(self) -> dict:
        """``weights_identity()`` for the saved model's JSON; a failure is recorded, never raised."""
        from uniqsar.models.weights_identity import safe_identity

        return safe_identity(self.pretrained().identity, self._param("weights"), self.seed, self._param("arch"))


class FinetuneLearner(PretrainedLearner):
    """A pretrained network fine-tuned end to end by ``torch_trainer`` (SMILES transformer, Uni-Mol2): the parameters,
    search space, ``predict`` and saved state the two share. Each learner adds its own values where they differ
    (``lr``, ``epochs``, ``patience``, ``search_ranges``, its input's parameters) and the hooks below: ``predict_raw``
    (raw outputs, NaN for failed molecules), ``_state_record`` (the saved JSON's leading fields: config, pooling, ...)
    and ``_model_from_state`` (rebuilds the untrained model from that JSON). Fit and the inner split stay with each
    learner: their inner splits differ (see CONTRIBUTING.md, Known gaps)."""

    tasks = TASKS + (JOINT,)
    #: each learner sets ``lr`` and ``epochs``: ``{**FinetuneLearner.defaults, "lr": ..., "epochs": ...}``
    defaults: ClassVar[dict[str, Any]] = {"lr": None, "epochs": None, "dropout": 0.1, "freeze_layers": 0,
                                          "batch_size": 32}
    fixed_defaults: ClassVar[dict[str, Any]] = {
        "weights": "default",
        "arch": None,  # model config overrides for random inits (tests)
        # head input: "cls+mean" (CLS and mean token / atom vector) works from a random init, where the CLS vector
        # barely varies between molecules (Uni-Mol2: std ~0.002 vs scale ~0.8); "cls" is the unimol_tools head
        "pooling": "cls+mean",
        "weight_decay": 1e-2,
        "head_lr_mult": 10.0,
        "warmup_frac": 0.06,
        "grad_clip": 1.0,
        "valid_frac": 0.12,
        "min_valid": 20,  # below this many training molecules no inner split: fixed epochs
        "device": "cpu",
        "verbose": False,
    }
    #: the search space's ranges: lr (low, high) on a log scale, epochs (low, high, step), dropout (low, high),
    #: freeze_layers (low, high), batch_size (choices)
    search_ranges: ClassVar[dict[str, tuple]] = {}
    state_indent: ClassVar[int] = 2  # indent of the saved ``<key>.json``

    @classmethod
    def search_space(cls, trial, task: str) -> dict[str, Any]:
        r = cls.search_ranges
        low, high, step = r["epochs"]
        return {
            "lr": trial.suggest_float("lr", *r["lr"], log=True),
            "epochs": trial.suggest_int("epochs", low, high, step=step),
            "dropout": trial.suggest_float("dropout", *r["dropout"]),
            "freeze_layers": trial.suggest_int("freeze_layers", *r["freeze_layers"]),
            "batch_size": trial.suggest_categorical("batch_size", list(r["batch_size"])),
        }

    def predict_raw(self, X) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        from uniqsar.models.torch_trainer import to_predictions

        return to_predictions(self.task, self.predict_raw(X), self.y_mean_, self.y_std_, self.fallback_,
                              self.target_tasks)

    # -- persistence: model.pt (the state_dict) + <key>.json -------------------------------------
    def _state_record(self) -> dict:  # pragma: no cover
        raise NotImplementedError

    def _model_from_state(self, state: dict):  # pragma: no cover
        raise NotImplementedError

    def _save_state(self, path: Path) -> None:
        import torch

        torch.save({k: v.detach().cpu() for k, v in self.model_.state_dict().items()}, path / "model.pt")
        state = {**self._state_record(), "n_outputs": self.model_.n_outputs, "y_mean": self.y_mean_,
                 "y_std": self.y_std_, "fallback": self.fallback_, "n_failed": self.n_failed_,
                 "best_epoch": self.best_epoch_, "history": self.history_, "init_weights": self.init_weights_record()}
        (path / f"{self.key}.json").write_text(json.dumps(state, indent=self.state_indent, default=str))

    def _load_state(self, path: Path) -> None:
        import torch

        state = json.loads((path / f"{self.key}.json").read_text())
        model = self._model_from_state(state)
        model.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True), strict=True)
        self.model_ = model.eval()
        self.y_mean_, self.y_std_, self.fallback_ = state["y_mean"], state["y_std"], state["fallback"]
        self.n_failed_, self.best_epoch_, self.history_ = state["n_failed"], state["best_epoch"], state["history"]


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o)}")
