"""Conformance test over every registered learner, the torch ones included (scikit-learn contract + uniqsar
extras), each in its class's tiny ``test_params`` and for every task in its class's ``tasks``."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import optuna
import pytest

from uniqsar.models.base import JOINT, Learner
from uniqsar.registry import LEARNERS, get_learner_class, load_all

load_all()
optuna.logging.set_verbosity(optuna.logging.WARNING)

K = 3  # classes of the multiclass data
SEED = 3
TARGET_TASKS = ["regression", "binary"]  # the joint (multitask) data's columns
INPUTS = ("features", "smiles")


def _keys():
    keys = sorted(LEARNERS)
    assert keys, "no learner registered"
    return keys


def _cases():
    return [(k, t) for k in _keys() for t in LEARNERS[k].tasks]


# -- data ----------------------------------------------------------------------------------------
def _smiles_pool():
    """~90 small molecules: chains and rings with one functional group each (distinct canonical SMILES)."""
    from rdkit import Chem

    groups = ["", "O", "N", "Cl", "C(=O)O", "C#N", "OC", "F", "C(N)=O", "S"]
    raw = [("C" * n) + g for n in range(1, 6) for g in groups]
    raw += [f"{ring}{g}" for ring in ("c1ccc(cc1)", "C1CCC(CC1)", "c1ccncc1", "CC(C)") for g in groups]
    out, seen = [], set()
    for smi in raw:
        mol = Chem.MolFromSmiles(smi)
        can = Chem.MolToSmiles(mol) if mol is not None and mol.GetNumAtoms() else None
        if can and can not in seen:
            seen.add(can)
            out.append(can)
    return np.array(out, dtype=object)


_SMILES = _smiles_pool()


def _logp(smiles):
    from rdkit import Chem
    from rdkit.Chem import Crippen

    return np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles])


def _labels(task, signal, rng, noise=1.0):
    """Targets from a signal: the value (regression), above the median (binary), terciles (multiclass), or
    (multitask) a regression and a binary column with 10 % of each missing."""
    z = (signal - signal.mean()) / signal.std()
    n = len(z)
    if task == "regression":
        return z + 0.1 * noise * rng.normal(size=n)
    if task == "binary":
        return (z + 0.2 * noise * rng.normal(size=n) > 0).astype(float)
    if task == "multiclass":
        return np.digitize(z + 0.2 * noise * rng.normal(size=n), [-0.5, 0.5]).astype(float)
    y = np.column_stack([_labels("regression", signal, rng, noise), _labels("binary", signal, rng, noise)])
    y[rng.random(y.shape) < 0.1] = np.nan
    return y


def _data(key, task, n=160, d=8, seed=0, nan_frac=0.0):
    """(X, y) in the learner's input kind: a float32 matrix (features) or canonical SMILES (smiles)."""
    rng = np.random.default_rng(seed)
    if LEARNERS[key].input == "smiles":
        X = _SMILES[rng.permutation(len(_SMILES))]
        return X, _labels(task, _logp(X), rng, noise=0.0)  # few molecules: noise-free labels
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = _labels(task, 1.5 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2], rng)
    if nan_frac:
        X[rng.random(X.shape) < nan_frac] = np.nan
    return X, y


def _split(X, y, frac=0.75):
    n_train = int(round(frac * len(y)))
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _task_args(task):
    return {"n_classes": K} if task == "multiclass" else {"target_tasks": TARGET_TASKS} if task == JOINT else {}


def _learner(key, task, seed=SEED, **params):
    cls = get_learner_class(key)
    if cls.requires_package and importlib.util.find_spec(cls.requires_package) is None:
        pytest.skip(f"{key}: optional package {cls.requires_package} is not installed")
    return cls(task, seed=seed, n_threads=1, **_task_args(task), **{**cls.test_params, **params})


_FITTED: dict = {}


def _fitted(key, task):
    """A learner fitted on the training part of its data (one fit per key and task, shared by the tests)."""
    if (key, task) not in _FITTED:
        X, y = _data(key, task)
        Xtr, ytr, Xte, yte = _split(X, y)
        _FITTED[key, task] = (_learner(key, task).fit(Xtr, ytr), Xtr, ytr, Xte, yte)
    return _FITTED[key, task]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny torch models gain nothing from intra-op threads; on a busy machine they lose a lot."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- scores ----------------------------------------------------------------------------------------
def _auc(y, p):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, p)


def _check_shape(task, p, n):
    assert isinstance(p, np.ndarray)
    assert p.shape == {"multiclass": (n, K), JOINT: (n, len(TARGET_TASKS))}.get(task, (n,))
    assert np.isfinite(p).all()
    if task in ("binary", "multiclass"):
        assert p.min() >= 0.0 and p.max() <= 1.0
    if task == "multiclass":
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    if task == JOINT:
        assert p[:, 1].min() >= 0.0 and p[:, 1].max() <= 1.0


def _check_skill(task, p, ytr, yte, strict=True):
    """Better than the constant predictor on held-out molecules (``strict``: by a wide margin)."""
    if task == JOINT:
        ok = [np.isfinite(yte[:, j]) & np.isfinite(p[:, j]) for j in range(yte.shape[1])]
        for j, t in enumerate(TARGET_TASKS):
            col_tr = ytr[:, j][np.isfinite(ytr[:, j])]
            _check_skill(t, p[ok[j], j], col_tr, yte[ok[j], j], strict=False)
        return
    if task == "regression":
        mse = np.mean((p - yte) ** 2)
        baseline = np.mean((ytr.mean() - yte) ** 2)
        assert mse < (0.5 if strict else 0.9) * baseline, (mse, baseline)
    elif task == "multiclass":
        from uniqsar.metrics import score

        prior = np.bincount(ytr.astype(int), minlength=K) / len(ytr)
        assert score("macro_roc_auc", yte, p) > (0.8 if strict else 0.7)
        assert score("logloss", yte, p) < score("logloss", yte, np.tile(prior, (len(yte), 1)))
    else:
        assert _auc(yte, p) > (0.8 if strict else 0.7)
        logloss = -np.mean(yte * np.log(np.clip(p, 1e-7, 1)) + (1 - yte) * np.log(np.clip(1 - p, 1e-7, 1)))
        r = ytr.mean()
        base = -np.mean(yte * np.log(r) + (1 - yte) * np.log(1 - r))
        assert logloss < base


def _fitted_attrs(m):
    return [a for a in vars(m) if a.endswith("_") and not a.startswith("_")]


def test_registry():
    assert {"lightgbm", "linear", "dmpnn", "unimol2", "smiles_transformer"} <= set(LEARNERS)
    for key, cls in LEARNERS.items():
        assert cls.key == key and issubclass(cls, Learner)
        assert cls.input in INPUTS
        assert set(cls.test_params) <= set(cls.defaults) | set(cls.fixed_defaults), key
        assert set(cls.test_size_caps) <= set(cls.defaults), f"{key}: test_size_caps names a parameter not tuned"
        assert cls.strict_params, f"{key}: a misspelt parameter must be an error"


@pytest.mark.parametrize("key,task", _cases())
class TestConformance:
    def test_fit_predict_contract(self, key, task):
        assert not _fitted_attrs(_learner(key, task)), "fitted state before fit"
        m, Xtr, _, Xte, _ = _fitted(key, task)
        assert _fitted_attrs(m), "no fitted state"
        p = m.predict(Xte)
        _check_shape(task, p, len(Xte))
        if task == "multiclass":
            np.testing.assert_array_equal(m.predict_proba(Xte), p)
        elif task == "binary":
            proba = m.predict_proba(Xte)
            assert proba.shape == (len(Xte), 2)
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
            np.testing.assert_allclose(proba[:, 1], p, atol=1e-9)
        else:
            with pytest.raises(AttributeError):
                m.predict_proba(Xte)

    def test_beats_constant_predictor(self, key, task):
        m, _, ytr, Xte, yte = _fitted(key, task)
        _check_skill(task, m.predict(Xte), ytr, yte, strict=LEARNERS[key].input == "features")

    def test_search_space_params_usable(self, key, task):
        cls = get_learner_class(key)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1), direction="minimize")
        trial = study.ask()
        params = cls.search_space(trial, task)
        assert isinstance(params, dict)
        json.dumps(params)  # plain values, storable in the run directory
        assert set(trial.params) <= set(params), "a suggested hyperparameter is not used"
        assert set(params) <= set(cls.defaults), "a search-space parameter missing from defaults"
        # the same values replayed through a FixedTrial give the same params
        assert cls.search_space(optuna.trial.FixedTrial(dict(trial.params)), task) == params
        # the non-None defaults lie inside the space (the tuner enqueues them as a study's first trial)
        defaults = {k: v for k, v in cls.defaults.items() if v is not None}
        study.enqueue_trial(defaults)
        first = study.ask()
        assert {k: v for k, v in cls.search_space(first, task).items() if k in defaults} == \
               {k: v for k, v in defaults.items() if k in first.params}
        for name, dist in first.distributions.items():
            assert dist._contains(dist.to_internal_repr(first.params[name])), f"default {name} outside the space"
        # usable: fit with them (sizes capped by the class's test_size_caps, the rest of test_params added)
        caps = {**{k: v for k, v in cls.test_params.items() if k not in params}, **cls.test_size_caps}
        X, y = _data(key, task, n=80)
        m = _learner(key, task, **{**params, **caps})
        assert cls(task, **_task_args(task), **params).params == params  # accepted as they are
        _check_shape(task, m.fit(X, y).predict(X), len(X))

    def test_save_load_identical(self, key, task, tmp_path):
        m, _, _, Xte, _ = _fitted(key, task)
        m.save(tmp_path / "m")
        meta = json.loads((tmp_path / "m" / "learner.json").read_text())
        assert meta["key"] == key and meta["task"] == task and meta["seed"] == SEED
        for f in (tmp_path / "m").rglob("*"):  # no pickles in the directory
            assert f.suffix not in {".pkl", ".pickle", ".joblib"}
        loaded = type(m).load(tmp_path / "m")
        assert loaded.task == task and loaded.seed == SEED
        assert loaded.n_classes == (K if task == "multiclass" else None)
        np.testing.assert_array_equal(loaded.predict(Xte), m.predict(Xte))

    def test_load_rejects_other_key(self, key, task, tmp_path):
        m = _fitted(key, task)[0]
        m.save(tmp_path)
        meta = json.loads((tmp_path / "learner.json").read_text())
        meta["key"] = "something_else"
        (tmp_path / "learner.json").write_text(json.dumps(meta))
        with pytest.raises(ValueError, match="something_else"):
            type(m).load(tmp_path)

    def test_deterministic_same_seed(self, key, task):
        m, Xtr, ytr, Xte, _ = _fitted(key, task)
        again = _learner(key, task).fit(Xtr, ytr)
        np.testing.assert_array_equal(again.predict(Xte), m.predict(Xte))

    def test_bad_inputs_handled(self, key, task):
        """features: NaN cells and an all-NaN column; smiles: unparsable SMILES. Training skips or imputes them,
        prediction keeps every row (valid molecules finite; an unreadable SMILES gets the training fallback)."""
        if LEARNERS[key].input == "features":
            X, y = _data(key, task, nan_frac=0.1)
            X[:, 7] = np.nan
            Xtr, ytr, Xte, yte = _split(X, y)
            p = _learner(key, task).fit(Xtr, ytr).predict(Xte)
            _check_shape(task, p, len(Xte))
            _check_skill(task, p, ytr, yte, strict=False)
            return
        X, y = _data(key, task)
        Xtr, ytr, Xte, _ = _split(X, y)
        bad = np.array(["not_a_smiles", "C1CC"], dtype=object)
        m = _learner(key, task, epochs=2).fit(np.concatenate([Xtr, bad]), np.concatenate([ytr, ytr[:2]]))
        p = m.predict(np.concatenate([Xte[:4], bad]))
        _check_shape(task, p, 6)  # finite everywhere: the unreadable rows get the training fallback
        np.testing.assert_array_equal(p[4], p[5])

    def test_unsupported_task_rejected(self, key, task):
        cls = get_learner_class(key)
        with pytest.raises(ValueError, match="does not support"):
            cls("ranking")

    def test_unknown_param_rejected(self, key, task):
        cls = get_learner_class(key)
        with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['definitely_not'\]; known: "):
            cls(task, **_task_args(task), definitely_not=1)


def test_seed_changes_lightgbm_with_bagging():
    X, y = _data("lightgbm", "regression")
    a = _learner("lightgbm", "regression", seed=0, bagging_fraction=0.7).fit(X, y).predict(X)
    b = _learner("lightgbm", "regression", seed=1, bagging_fraction=0.7).fit(X, y).predict(X)
    assert not np.array_equal(a, b)


def test_lightgbm_params_reach_booster():
    X, y = _data("lightgbm", "regression")
    m = _learner("lightgbm", "regression", n_estimators=7).fit(X, y)
    assert m.booster_.num_trees() == 7
    m = _learner("lightgbm", "binary", n_estimators=5).fit(*_data("lightgbm", "binary"))
    assert m.booster_.params["objective"] == "binary"


def test_linear_regularization_shrinks():
    X, y = _data("linear", "regression")
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
    X, y = _data("lightgbm", "regression")
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


@pytest.mark.parametrize("key", [k for k in _keys() if "multiclass" in LEARNERS[k].tasks])
def test_multiclass_class_missing_from_training(key):
    """A CV training part may lack a class: the learner still returns K columns (the missing one rare)."""
    X, y = _data(key, "multiclass")
    keep = y != 1
    m = _learner(key, "multiclass").fit(X[keep], y[keep])
    p = m.predict(X)
    assert p.shape == (len(X), K)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    # features: near 0; the tiny torch configurations train too briefly to push a never-seen logit that far
    assert p[:, 1].max() < (0.05 if LEARNERS[key].input == "features" else 0.3)


def test_finetune_learners_search_spaces():
    """FinetuneLearner builds the space from each learner's search_ranges: the names, order and distributions that
    the SMILES transformer and Uni-Mol2 had when each wrote its own space out."""
    from optuna.distributions import CategoricalDistribution as Cat, FloatDistribution as Float, IntDistribution as Int

    from uniqsar.models.base import FinetuneLearner

    expected = {
        "smiles_transformer": {"lr": Float(2e-5, 1e-3, log=True), "epochs": Int(10, 40, step=5),
                               "dropout": Float(0.0, 0.3), "freeze_layers": Int(0, 3), "batch_size": Cat([16, 32, 64])},
        "unimol2": {"lr": Float(1e-5, 1e-3, log=True), "epochs": Int(8, 32, step=4), "dropout": Float(0.0, 0.3),
                    "freeze_layers": Int(0, 2), "batch_size": Cat([16, 32])},
    }
    for key, dists in expected.items():
        cls = get_learner_class(key)
        assert issubclass(cls, FinetuneLearner)
        for task in cls.tasks:
            trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
            params = cls.search_space(trial, task)
            assert list(trial.distributions.items()) == list(dists.items()), (key, task)
            assert list(params) == list(dists) == list(cls.defaults)
