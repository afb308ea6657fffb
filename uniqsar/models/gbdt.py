"""Gradient-boosted trees: LightGBM (core) and CatBoost (optional extra). Native model files."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from uniqsar.models.base import Learner
from uniqsar.registry import register_learner
from uniqsar.util import current_deadline



def lightgbm_threads(n_threads: int) -> int:
    """LightGBM's OpenMP threads. With passive OpenMP waiting (uniqsar's default, see uniqsar/__init__.py)
    a second thread makes LightGBM slower, not faster: 5.3 s vs 4.2 s with 1 thread on 4,000 x 2,265 and
    6.0 vs 5.7 s on 12,000 rows, idle 2-core machine (benchmarks/omp/omp_wait_policy.py). So one thread per
    fit, and parallelism comes from parallel trials (--n-jobs): `fit --preset default` on 5,000 molecules
    went from 597 s to 262 s with --n-jobs 1 (benchmarks/parallel). Under OMP_WAIT_POLICY=ACTIVE the
    budget ``n_threads`` is used."""
    return 1 if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" else max(1, n_threads)

@register_learner
class LightGBM(Learner):
    key = "lightgbm"
    defaults = {
        "n_estimators": 600, "learning_rate": 0.04, "num_leaves": 31, "min_child_samples": 10,
        "feature_fraction": 0.3, "bagging_fraction": 0.8, "lambda_l2": 1.0, "lambda_l1": 1e-3,
        "objective": None,
    }
    test_params = {"n_estimators": 80, "learning_rate": 0.1, "min_child_samples": 5, "feature_fraction": 0.8}
    test_size_caps = {"n_estimators": 80}

    @staticmethod
    def search_space(trial, task):
        p = {
            "n_estimators": trial.suggest_int("n_estimators", 100, 1500, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 3, 60, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.05, 0.9, log=True),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
            "lambda_l1": trial.suggest_float("lambda_l1", 1e-4, 3.0, log=True),
        }
        if task == "regression":
            p["objective"] = trial.suggest_categorical("objective", ["regression", "huber"])
        return p

    def _lgb_params(self) -> dict:
        p = {**self.defaults, **self.params}
        objective = p["objective"] or {"binary": "binary", "multiclass": "multiclass"}.get(self.task, "regression")
        return {
            "objective": objective, **({"num_class": self.n_classes} if self.task == "multiclass" else {}), "learning_rate": p["learning_rate"], "num_leaves": p["num_leaves"],
            "min_child_samples": p["min_child_samples"], "feature_fraction": p["feature_fraction"],
            "bagging_fraction": p["bagging_fraction"], "bagging_freq": 1 if p["bagging_fraction"] < 1 else 0,
            "lambda_l2": p["lambda_l2"], "lambda_l1": p["lambda_l1"], "seed": self.seed,
            "num_threads": lightgbm_threads(self.n_threads), "deterministic": True, "force_col_wise": True,
            "verbose": -1,
            "max_bin": 63, "feature_pre_filter": False,
        }

    def fit(self, X, y, X_valid=None, y_valid=None):
        import lightgbm as lgb

        p = {**self.defaults, **self.params}
        if self.task == "multiclass":
            self._classes(y)
        data = lgb.Dataset(np.asarray(X, np.float32), label=np.asarray(y, float), free_raw_data=True)
        deadline = current_deadline()
        self.booster_ = lgb.train(self._lgb_params(), data, num_boost_round=int(p["n_estimators"]),
                                  callbacks=[_stop_boosting_at(deadline)] if deadline is not None else None)
        return self

    def predict(self, X):
        return self.booster_.predict(np.asarray(X, np.float32), num_threads=lightgbm_threads(self.n_threads))

    def _save_state(self, path: Path):
        self.booster_.save_model(str(path / "model.txt"))  # multiclass: (n, K) from predict, K in learner.json

    def _load_state(self, path: Path):
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(path / "model.txt"))


def _stop_boosting_at(deadline: float):
    """LightGBM callback: keep the trees built so far once ``deadline`` has passed."""
    import lightgbm as lgb

    def callback(env):
        if time.time() > deadline:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

    return callback


@register_learner
class CatBoost(Learner):
    """CatBoost; with no params it is MapLight's setting (defaults + ``random_strength=2``)."""

    key = "catboost"
    # the search space's keys; None: CatBoost's own default (learning rate chosen from the data size)
    defaults = {"iterations": 1000, "learning_rate": None, "depth": None, "l2_leaf_reg": None,
                "random_strength": 2.0, "rsm": None}
    fixed_defaults = {"regression_loss": "RMSE"}
    test_params = {"iterations": 40}
    test_size_caps = {"iterations": 40}

    @staticmethod
    def search_space(trial, task):
        return {
            "iterations": trial.suggest_int("iterations", 200, 1500, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "depth": trial.suggest_int("depth", 4, 8),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 0.5, 30.0, log=True),
            "random_strength": trial.suggest_float("random_strength", 0.5, 5.0, log=True),
            "rsm": trial.suggest_float("rsm", 0.05, 0.5, log=True),
        }

    def _model(self):
        import catboost as cb

        p = {k: v for k, v in {**self.defaults, **self.params}.items() if v is not None}
        loss = {"binary": "Logloss", "multiclass": "MultiClass"}.get(self.task, self._param("regression_loss"))
        p.pop("regression_loss", None)
        common = dict(p, loss_function=loss, random_seed=self.seed, thread_count=self.n_threads,
                      verbose=0, allow_writing_files=False)
        return cb.CatBoostClassifier(**common) if self.task != "regression" else cb.CatBoostRegressor(**common)

    def fit(self, X, y, X_valid=None, y_valid=None):
        self.model_ = self._model()
        y = np.asarray(y, float)
        if self.task == "multiclass":
            self._classes(y)
            y = y.astype(int)
        self.model_.fit(np.asarray(X, np.float32), y)
        return self

    def predict(self, X):
        X = np.asarray(X, np.float32)
        if self.task == "binary":
            return self.model_.predict_proba(X)[:, 1]
        if self.task == "multiclass":  # classes missing from the training part get probability 0
            proba = self.model_.predict_proba(X)
            out = np.zeros((len(X), self.n_classes))
            out[:, np.asarray(self.model_.classes_).astype(int)] = proba
            return out
        return self.model_.predict(X)

    def _save_state(self, path: Path):
        self.model_.save_model(str(path / "model.cbm"))  # CatBoost's own binary format, not pickle

    def _load_state(self, path: Path):
        self.model_ = self._model()
        self.model_.load_model(str(path / "model.cbm"))
