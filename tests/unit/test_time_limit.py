"""Time limits inside a fit: the torch trainer and LightGBM stop early, a CV trial that cannot
finish its folds in time is aborted (FAIL, no OOF file) and ends its study."""
from __future__ import annotations

import time

import numpy as np
import pytest

from uniqsar.util import current_deadline, time_limit


def test_time_limit_is_scoped():
    assert current_deadline() is None
    with time_limit(123.0):
        assert current_deadline() == 123.0
    assert current_deadline() is None


def _train(epochs, valid=False):
    import torch

    from uniqsar.models.torch_trainer import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    y = X @ np.array([1.0, -1.0, 0.5], np.float32)
    items = [torch.as_tensor(x) for x in X]
    trainer = Trainer(TrainConfig(lr=1e-2, epochs=epochs, batch_size=16, patience=epochs), "regression",
                      lambda model, batch: model(batch["x"]).squeeze(-1), lambda xs: {"x": torch.stack(xs)})
    model = trainer.fit(torch.nn.Linear(3, 1), items, y, [1] * len(items),
                        valid=(items[:16], y[:16], [1] * 16) if valid else None)
    return trainer, model


def test_trainer_stops_at_the_deadline():
    trainer, _ = _train(epochs=5)
    assert len(trainer.history) == 5
    with time_limit(time.time() - 1):  # already past: one epoch, then stop
        trainer, model = _train(epochs=5, valid=True)
    assert len(trainer.history) == 1 and trainer.best_epoch == 1
    assert model.weight.grad is not None  # trained, not just initialised


def test_lightgbm_keeps_the_trees_built_before_the_deadline():
    from uniqsar.models.gbdt import LightGBM

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5))
    y = X[:, 0] + 0.1 * rng.normal(size=100)
    with time_limit(time.time() - 1):
        m = LightGBM("regression", n_estimators=500).fit(X, y)
    assert m.booster_.num_trees() == 1
    assert np.isfinite(m.predict(X)).all()


def test_cross_val_predict_does_not_start_a_late_fold(slow_learner):
    from uniqsar.tune.study import TrialTimeout, cross_val_predict

    X, y, folds = np.zeros((30, 2)), np.arange(30.0), np.arange(30) % 3
    t0 = time.time()
    with pytest.raises(TrialTimeout, match="fold 2 of 3"):
        cross_val_predict(slow_learner, "regression", {}, X, y, folds, 0, 1, deadline=time.time() + 0.6)
    assert time.time() - t0 < 0.8  # one fold (0.4 s), not two
    oof = cross_val_predict(slow_learner, "regression", {"seconds": 0.0}, X, y, folds, 0, 1,
                            deadline=time.time() + 5)
    assert np.isfinite(oof).all()


def test_aborted_trial_fails_without_oof_and_stops_the_study(slow_learner, tmp_path):
    from optuna.trial import TrialState

    from uniqsar.tune.study import StudySpec, create_study, finished_trials, run_trials, storage_for

    X, y, folds = np.zeros((30, 2)), np.arange(30.0), np.arange(30) % 3
    spec = StudySpec(name="t/slow", learner=slow_learner, task="regression", metric="mae", fixed_params={},
                     n_trials=5, seed=0, n_threads=1, trials_dir=str(tmp_path / "trials"),
                     deadline=time.time() + 30, hard_deadline=time.time() + 0.6)
    storage = storage_for(tmp_path)
    study = create_study(spec, storage)
    run_trials(spec, storage, X, y, folds)
    # the first batch (TRIAL_BATCH trials) ran its first round of folds, was aborted, and no further batch started
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 4
    assert not (tmp_path / "trials").exists() or not any((tmp_path / "trials").iterdir())
    assert finished_trials(spec, storage, top=3) == ([], 0)


def test_budget_object_splits_the_time_left():
    from uniqsar.pipeline.budget import FINAL_SHARE, Budget

    none = Budget.starting_now(None)
    assert not none.limited and none.deadline is None and none.left() == float("inf") and not none.exhausted()
    assert none.target_deadlines(0, 3) == (None, None) and none.joint_deadline(1, 2) is None

    b = Budget(seconds=300.0, start=time.time())
    assert b.limited and abs(b.deadline - b.start - 300.0) < 1e-9 and 299.0 < b.left() <= 300.0
    tune, final = b.target_deadlines(0, 3)  # a third of what is left, its last FINAL_SHARE for the refits
    assert abs((final - time.time()) - 100.0) < 1.0
    assert abs((final - tune) - FINAL_SHARE * 100.0) < 1.0
    tune, final = b.target_deadlines(2, 3)  # the last target gets all that is left
    assert abs(final - b.deadline) < 1e-6
    assert abs((b.joint_deadline(10, 30) - time.time()) - 300.0 * (1 - FINAL_SHARE) / 3) < 1.0
    past = Budget(seconds=5.0, start=time.time() - 10.0)
    assert past.left() == 0.0 and past.exhausted()
