"""Fold rounds: predictions do not depend on how many processes fit them; trial errors and pruning stay
with their own trial."""
from __future__ import annotations

import numpy as np
import pytest

from uniqsar.tune.folds import FoldPool
from uniqsar.tune.study import batch_oof


def _data(n=120, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)
    return X, y, np.arange(n) % 5


PARAMS = [{"n_estimators": 40}, {"n_estimators": 60, "num_leaves": 7}, {"n_estimators": 30, "learning_rate": 0.2}]


def _batch(n_jobs, params_list=PARAMS, after_fold=None, learner="lightgbm"):
    X, y, folds = _data()
    with FoldPool(X, n_jobs) as pool:
        return batch_oof(learner, "regression", params_list, X, y, folds, 3, 1, pool, after_fold=after_fold)


def test_parallel_rounds_give_the_sequential_predictions():
    seq, st_seq, _ = _batch(1)
    par, st_par, sec = _batch(2)
    assert st_seq == st_par == [None, None, None]
    assert all(np.isfinite(o).all() for o in seq) and all(s > 0 for s in sec)
    for a, b in zip(seq, par):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(seq[0], seq[1])  # the sets are fitted with their own parameters


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_failing_trial_does_not_sink_its_batch(n_jobs):
    bad = {"n_estimators": 0}  # ValueError from the learner: a trial error
    oofs, status, _ = _batch(n_jobs, [PARAMS[0], bad, PARAMS[2]])
    assert status[0] is None and status[2] is None
    assert isinstance(status[1], Exception)
    ref, _, _ = _batch(1, [PARAMS[0], PARAMS[2]])
    np.testing.assert_array_equal(oofs[0], ref[0])
    np.testing.assert_array_equal(oofs[2], ref[1])


def test_a_pruned_set_stops_fitting_and_the_others_go_on():
    calls = []

    def after_fold(i, step, oof):
        calls.append((i, step))
        return not (i == 1 and step == 1)  # prune set 1 after its second fold

    oofs, status, _ = _batch(2, after_fold=after_fold)
    assert status == [None, "pruned", None]
    assert (1, 2) not in calls and (0, 3) in calls and (2, 3) in calls
    assert np.isnan(oofs[1]).sum() == 3 * 24  # folds 2-4 of set 1 never fitted
    assert np.isfinite(oofs[0]).all()


def test_large_matrices_are_shared_through_one_memory_map():
    X = np.zeros((600, 300))  # 1.4 MB
    with FoldPool(X, 2) as pool:
        assert isinstance(pool.X, np.memmap)
    with FoldPool(X, 1) as pool:
        assert pool.X is X
