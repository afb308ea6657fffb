"""Parallel folds: a trial's out-of-fold predictions do not depend on how many processes fit its folds."""
from __future__ import annotations

import numpy as np
import pytest

from uniqsar.tune.folds import fold_predictions


def _data(n=120, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)
    return X, y, np.arange(n) % 5


def _oof(learner, params, n_jobs):
    X, y, folds = _data()
    oof = np.full(len(y), np.nan)
    steps = []
    for step, test, pred in fold_predictions(learner, "regression", params, X, y, folds, seed=3, n_threads=1,
                                             n_jobs=n_jobs):
        oof[test] = pred
        steps.append(step)
    return oof, steps


@pytest.mark.parametrize("learner,params", [("lightgbm", {"n_estimators": 40}), ("linear", {})])
def test_parallel_folds_give_the_sequential_predictions_in_fold_order(learner, params):
    seq, steps_seq = _oof(learner, params, 1)
    par, steps_par = _oof(learner, params, 2)
    assert steps_seq == steps_par == [0, 1, 2, 3, 4]
    assert np.isfinite(seq).all()
    np.testing.assert_array_equal(seq, par)


def test_before_can_stop_a_trial_between_batches():
    X, y, folds = _data()
    started = []

    def before(step, seconds):
        started.append(step)
        if step >= 2:
            raise TimeoutError("stop")

    got = []
    with pytest.raises(TimeoutError):
        for step, _, _ in fold_predictions("linear", "regression", {}, X, y, folds, 0, 1, n_jobs=2, before=before):
            got.append(step)
    assert started == [0, 2] and got == [0, 1]  # the second batch (folds 2-3) never started
