"""``[cv] repeats``: a trial's value is its mean score over several fold partitions; its OOF file (what the
stacker uses) stays that of the first partition."""
from __future__ import annotations

import numpy as np
import optuna
import pytest

from uniqsar.config import ConfigError, recipe_from_dict
from uniqsar.metrics import score
from uniqsar.tune.study import StudySpec, create_study, cross_val_predict, finished_trials, run_trials, storage_for


def _data(n=120, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    return X, y


def test_trial_value_is_the_mean_over_partitions_and_oof_is_the_first(tmp_path):
    X, y = _data()
    folds = np.arange(len(y)) % 5
    other = np.random.default_rng(1).permutation(len(y)) % 5
    spec = StudySpec(name="t/linear", learner="linear", task="regression", metric="mae", fixed_params={},
                     n_trials=4, seed=0, n_threads=1, trials_dir=str(tmp_path / "trials"), repeat_folds=(other,))
    storage = storage_for(tmp_path)
    create_study(spec, storage)
    run_trials(spec, storage, X, y, folds)
    study = optuna.load_study(study_name=spec.name, storage=storage)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4
    for t in complete:
        first, second = t.user_attrs["partition_scores"]
        assert t.value == pytest.approx((first + second) / 2)
        params = t.user_attrs["params"]
        assert first == pytest.approx(score("mae", y, cross_val_predict("linear", "regression", params, X, y, folds, 0, 1)))
        assert second == pytest.approx(score("mae", y, cross_val_predict("linear", "regression", params, X, y, other, 0, 1)))
    number, value, params, oof, _ = finished_trials(spec, storage, top=1)[0][0]
    np.testing.assert_allclose(oof, cross_val_predict("linear", "regression", params, X, y, folds, 0, 1))


def test_no_repeats_records_no_partition_scores(tmp_path):
    X, y = _data()
    spec = StudySpec(name="t/linear", learner="linear", task="regression", metric="mae", fixed_params={},
                     n_trials=2, seed=0, n_threads=1, trials_dir=str(tmp_path / "trials"))
    storage = storage_for(tmp_path)
    create_study(spec, storage)
    run_trials(spec, storage, X, y, np.arange(len(y)) % 5)
    study = optuna.load_study(study_name=spec.name, storage=storage)
    assert all("partition_scores" not in t.user_attrs for t in study.trials)


def test_recipe_repeats_and_the_extra_partitions(tmp_path):
    from uniqsar.data.targets import TargetData
    from uniqsar.pipeline.target import TargetContext, study_spec, target_folds

    base = {"featurizers": {"ecfp": {"key": "morgan_count", "n_bits": 64}},
            "models": [{"learner": "linear", "features": ["ecfp"], "n_trials": 2}]}
    assert recipe_from_dict(base).cv_repeats == 1 and "repeats" not in recipe_from_dict(base).to_dict()["cv"]
    r = recipe_from_dict({**base, "cv": {"n_folds": 3, "repeats": 3}})
    assert r.cv_repeats == 3 and r.to_dict()["cv"]["repeats"] == 3
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="cv.repeats"):
            recipe_from_dict({**base, "cv": {"repeats": bad}})

    smiles = [f"{'C' * (i % 7 + 1)}c1ccc(cc1){'O' * (i % 3)}" for i in range(30)] + \
             [f"C1CC{'C' * (i % 4)}C1{'N' * (i % 2)}" for i in range(30)]
    data = TargetData(name="Y", task="regression", smiles=np.array(smiles, dtype=object), y=np.arange(60.0))
    ctx = TargetContext(tmp_path, r, "mae", 7, 1, store=None)
    spec = study_spec(ctx, data, r.models[0])
    assert len(spec.repeat_folds) == 2
    np.testing.assert_array_equal(spec.repeat_folds[0], target_folds(r, data, 8))
    assert not np.array_equal(target_folds(r, data, 7), spec.repeat_folds[0])  # another partition
    from dataclasses import replace

    for fixed in (replace(r.models[0], n_trials=1), replace(r.models[0], search=False)):  # no choice: no repeats
        assert study_spec(ctx, data, fixed).repeat_folds == ()


def test_a_fit_with_repeats_scores_each_trial_on_every_partition(tmp_path):
    import json

    import pandas as pd

    from tests.conftest import DATA, TINY_RECIPE
    from uniqsar.io import layout
    from uniqsar.pipeline.fit import FitOptions, fit

    recipe = tmp_path / "tiny_repeats.toml"
    recipe.write_text(open(TINY_RECIPE).read().replace('n_folds = 3\n', 'n_folds = 3\nrepeats = 2\n'))
    df = pd.read_csv(DATA / "caco2_wang_200.csv").head(120)
    out = fit(df, tmp_path / "run", FitOptions(targets=("Y",), smiles_col="Drug", preset=str(recipe), seed=2))
    assert json.loads((out / layout.MANIFEST).read_text())["status"] == "complete"
    assert "repeats = 2" in (out / layout.RECIPE).read_text()
    study = optuna.load_study(study_name="Y/linear__ecfp", storage=storage_for(out))
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert done and all(len(t.user_attrs["partition_scores"]) == 2 for t in done)
    assert all(t.value == pytest.approx(np.mean(t.user_attrs["partition_scores"])) for t in done)
