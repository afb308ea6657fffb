"""Conformance test over every registered feature learner (scikit-learn contract + uniqsar extras)."""
from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from uniqsar.models.base import Learner
from uniqsar.registry import LEARNERS, get_learner_class, load_all

load_all()
optuna.logging.set_verbosity(optuna.logging.WARNING)

#: keep the unit tier fast: few trees/iterations; unknown (new) learners run with their defaults
FAST = {
    "lightgbm": {"n_estimators": 80, "learning_rate": 0.1, "min_child_samples": 5, "feature_fraction": 0.8},
    "catboost": {"iterations": 40},
}
SIZE_KEYS = ("n_estimators", "iterations", "max_iter", "epochs", "num_boost_round")
TASKS = ("regression", "binary", "multiclass")
K = 3  # classes of the multiclass data


def _feature_keys():
    keys = sorted(k for k, c in LEARNERS.items() if getattr(c, "input", "features") == "features")
    assert keys, "no feature learner registered"
    return keys


def _skipped_keys():
    return sorted(k for k, c in LEARNERS.items() if getattr(c, "input", "features") != "features")


def _data(task, n=160, d=8, seed=0, nan_frac=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    signal = 1.5 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2]
    if task == "regression":
        y = signal + 0.1 * rng.normal(size=n)
    elif task == "multiclass":  # class indices 0..K-1 from the signal's terciles
        y = np.digitize(signal + 0.2 * rng.normal(size=n), [-0.8, 0.8]).astype(float)
    else:
        y = (signal + 0.2 * rng.normal(size=n) > 0).astype(float)
    if nan_frac:
        X[rng.random(X.shape) < nan_frac] = np.nan
    return X, y


def _split(X, y, n_train=120):
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _learner(key, task, seed=0, **params):
    cls = get_learner_class(key)
    if task not in cls.tasks:
        pytest.skip(f"{key} does not support {task}")
    extra = {"n_classes": K} if task == "multiclass" else {}
    return cls(task, seed=seed, n_threads=1, **extra, **{**FAST.get(key, {}), **params})


def _auc(y, p):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, p)


def test_registry():
    assert {"lightgbm", "linear"} <= set(LEARNERS)
    for key, cls in LEARNERS.items():
        assert cls.key == key and issubclass(cls, Learner)
        assert cls.input in {"features", "smiles"}


@pytest.mark.parametrize("key", _skipped_keys() or ["<none>"])
def test_non_feature_learners_skipped(key):
    if key == "<none>":
        pytest.skip("every registered learner takes features")
    pytest.skip(f"{key}: input={LEARNERS[key].input!r} (torch learner, covered by its own tests)")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("key", _feature_keys())
class TestConformance:
    def test_fit_predict_contract(self, key, task):
        X, y = _data(task)
        Xtr, ytr, Xte, _ = _split(X, y)
        m = _learner(key, task)
        assert not [a for a in vars(m) if a.endswith("_") and not a.startswith("_")], "fitted state before fit"
        assert m.fit(Xtr, ytr) is m
        p = m.predict(Xte)
        assert isinstance(p, np.ndarray) and p.shape == ((len(Xte), K) if task == "multiclass" else (len(Xte),))
        assert np.isfinite(p).all()
        assert [a for a in vars(m) if a.endswith("_") and not a.startswith("_")], "no fitted state"
        if task == "multiclass":
            assert p.min() >= 0.0 and p.max() <= 1.0
            np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
            np.testing.assert_array_equal(m.predict_proba(Xte), p)
        elif task == "binary":
            assert p.min() >= 0.0 and p.max() <= 1.0
            proba = m.predict_proba(Xte)
            assert proba.shape == (len(Xte), 2)
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
            np.testing.assert_allclose(proba[:, 1], p, atol=1e-9)
        else:
            with pytest.raises(AttributeError):
                m.predict_proba(Xte)

    def test_beats_constant_predictor(self, key, task):
        X, y = _data(task)
        Xtr, ytr, Xte, yte = _split(X, y)
        p = _learner(key, task).fit(Xtr, ytr).predict(Xte)
        if task == "regression":
            mse = np.mean((p - yte) ** 2)
            baseline = np.mean((ytr.mean() - yte) ** 2)
            assert mse < 0.5 * baseline, (mse, baseline)
        elif task == "multiclass":
            from uniqsar.metrics import score

            prior = np.bincount(ytr.astype(int), minlength=K) / len(ytr)
            assert score("macro_roc_auc", yte, p) > 0.8
            assert score("logloss", yte, p) < score("logloss", yte, np.tile(prior, (len(yte), 1)))
        else:
            assert _auc(yte, p) > 0.8
            logloss = -np.mean(yte * np.log(np.clip(p, 1e-7, 1)) + (1 - yte) * np.log(np.clip(1 - p, 1e-7, 1)))
            r = ytr.mean()
            base = -np.mean(yte * np.log(r) + (1 - yte) * np.log(1 - r))
            assert logloss < base

    def test_search_space_params_usable(self, key, task):
        cls = get_learner_class(key)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1),
                                    direction="minimize")
        trial = study.ask()
        params = cls.search_space(trial, task)
        assert isinstance(params, dict)
        json.dumps(params)  # plain values, storable in the run directory
        assert set(trial.params) <= set(params), "a suggested hyperparameter is not used"
        # the same values replayed through a FixedTrial give the same params
        assert cls.search_space(optuna.trial.FixedTrial(dict(trial.params)), task) == params
        # usable: fit with them (sizes capped for speed)
        fast = {k: v for k, v in FAST.get(key, {}).items() if k in SIZE_KEYS}
        X, y = _data(task, n=80)
        m = cls(task, seed=0, n_threads=1, **({"n_classes": K} if task == "multiclass" else {}), **{**params, **fast})
        p = m.fit(X, y).predict(X)
        assert p.shape[0] == 80 and np.isfinite(p).all()

    def test_save_load_identical(self, key, task, tmp_path):
        X, y = _data(task)
        Xtr, ytr, Xte, _ = _split(X, y)
        m = _learner(key, task, seed=3).fit(Xtr, ytr)
        m.save(tmp_path / "m")
        meta = json.loads((tmp_path / "m" / "learner.json").read_text())
        assert meta["key"] == key and meta["task"] == task and meta["seed"] == 3
        # no pickles in the directory
        for f in (tmp_path / "m").rglob("*"):
            assert f.suffix not in {".pkl", ".pickle", ".joblib"}
        loaded = type(m).load(tmp_path / "m")
        assert loaded.task == task and loaded.seed == 3
        assert loaded.n_classes == (K if task == "multiclass" else None)
        np.testing.assert_array_equal(loaded.predict(Xte), m.predict(Xte))

    def test_load_rejects_other_key(self, key, task, tmp_path):
        X, y = _data(task, n=60)
        m = _learner(key, task).fit(X, y)
        m.save(tmp_path)
        meta = json.loads((tmp_path / "learner.json").read_text())
        meta["key"] = "something_else"
        (tmp_path / "learner.json").write_text(json.dumps(meta))
        with pytest.raises(ValueError, match="something_else"):
            type(m).load(tmp_path)

    def test_deterministic_same_seed(self, key, task):
        X, y = _data(task)
        a = _learner(key, task, seed=5).fit(X, y).predict(X)
        b = _learner(key, task, seed=5).fit(X, y).predict(X)
        np.testing.assert_array_equal(a, b)

    def test_nan_features_handled(self, key, task):
        X, y = _data(task, nan_frac=0.1)
        X[:, 7] = np.nan  # an all-NaN column as well
        Xtr, ytr, Xte, yte = _split(X, y)
        m = _learner(key, task).fit(Xtr, ytr)
        p = m.predict(Xte)
        assert p.shape[0] == len(Xte) and np.isfinite(p).all()
        if task == "multiclass":
            from uniqsar.metrics import score

            assert score("macro_roc_auc", yte, p) > 0.7
        elif task == "binary":
            assert _auc(yte, p) > 0.7
        else:
            assert np.mean((p - yte) ** 2) < np.var(yte)

    def test_unsupported_task_rejected(self, key, task):
        cls = get_learner_class(key)
        with pytest.raises(ValueError, match="does not support"):
            cls("ranking")


def test_seed_changes_lightgbm_with_bagging():
    X, y = _data("regression")
    a = _learner("lightgbm", "regression", seed=0, bagging_fraction=0.7).fit(X, y).predict(X)
    b = _learner("lightgbm", "regression", seed=1, bagging_fraction=0.7).fit(X, y).predict(X)
    assert not np.array_equal(a, b)


def test_lightgbm_params_reach_booster():
    X, y = _data("regression")
    m = _learner("lightgbm", "regression", n_estimators=7).fit(X, y)
    assert m.booster_.num_trees() == 7
    m = _learner("lightgbm", "binary", n_estimators=5).fit(*_data("binary"))
    assert m.booster_.params["objective"] == "binary"


def test_linear_regularization_shrinks():
    X, y = _data("regression")
    weak = _learner("linear", "regression", alpha=1e-2).fit(X, y)
    strong = _learner("linear", "regression", alpha=1e4).fit(X, y)
    assert np.abs(strong.coef_).sum() < 0.1 * np.abs(weak.coef_).sum()


def _mean_is_strong(n=200, seed=0):
    """Noisy target, many sparse count columns and heavy-tailed descriptors: the mean predictor is hard to beat."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.05, size=(n, 400)).astype(np.float32)  # rare bits, like a count fingerprint
    desc = rng.lognormal(0.0, 2.0, size=(n, 40)).astype(np.float32)  # heavy-tailed descriptors
    X = np.hstack([counts, desc])
    y = 0.2 * np.log(desc[:, 0]) + rng.normal(size=n)
    return X, y


def test_linear_no_trial_worse_than_the_mean():
    """Issue 17: every trial of the search space scores no worse than the constant (training-fold mean) predictor."""
    X, y = _mean_is_strong()
    folds = np.arange(len(y)) % 5
    const = np.concatenate([np.abs(y[folds == k] - y[folds != k].mean()) for k in range(5)]).mean()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: sum(get_learner_class("linear").search_space(t, "regression").values()), n_trials=6)
    dist = study.trials[0].distributions["alpha"]
    alphas = [dist.low, dist.high] + [t.params["alpha"] for t in study.trials]
    for alpha in alphas:
        err = np.concatenate([np.abs(y[folds == k] - _learner("linear", "regression", alpha=alpha)
                                     .fit(X[folds != k], y[folds != k]).predict(X[folds == k])) for k in range(5)])
        assert err.mean() <= 1.01 * const, f"alpha {alpha:g}: CV MAE {err.mean():.3f} vs mean predictor {const:.3f}"


def test_linear_loads_files_saved_before_the_clip_changed(tmp_path):
    X, y = _data("regression")
    m = _learner("linear", "regression").fit(X, y)
    m.save(tmp_path)
    state = json.loads((tmp_path / "linear.json").read_text())
    assert state["clip_"] == 3.0
    del state["clip_"], state["shrink_"]
    (tmp_path / "linear.json").write_text(json.dumps(state))
    old = type(m).load(tmp_path)
    assert old.clip_ == 10.0  # what those runs were fitted with
    z = (np.sign(X) * np.log1p(np.abs(X)) - m.mean_) / m.scale_
    np.testing.assert_allclose(old.predict(X), np.clip(z, -10, 10) @ m.coef_ + m.intercept_, atol=1e-6)


@pytest.mark.parametrize("key", _feature_keys())
def test_multiclass_class_missing_from_training(key):
    """A CV training part may lack a class: the learner still returns K columns (the missing one near 0)."""
    X, y = _data("multiclass")
    keep = y != 1
    m = _learner(key, "multiclass").fit(X[keep], y[keep])
    p = m.predict(X)
    assert p.shape == (len(X), K)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert p[:, 1].max() < 0.05
