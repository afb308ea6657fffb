"""One trial's cross-validation fits, sequential or in parallel processes, with the same results either way.

Trials of a study run one after another (Optuna's TPE proposes each trial from the finished ones, so running
trials side by side makes the sequence depend on timing, and a seed would no longer fix the result). The
parallelism is inside a trial instead: its folds are independent fits of the same learner with the same seed,
so ``n_jobs`` processes fit ``n_jobs`` folds at a time and the trial's out-of-fold predictions are those of the
sequential run. Folds are fitted in batches and handed back in fold order, so pruning sees the same partial
scores at the same steps (a pruned trial may have fitted the rest of its last batch for nothing).
"""
from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np

from uniqsar.registry import get_learner_class
from uniqsar.util import time_limit


def fit_fold(learner_key: str, task: str, params: dict, seed: int, n_threads: int, X, y_fit, test: np.ndarray,
             deadline: float | None):
    """Fit on the rows outside ``test`` and predict the rows inside it (on the fitted scale)."""
    model = get_learner_class(learner_key)(task, seed=seed, n_threads=n_threads, **params)
    with time_limit(deadline):
        model.fit(X[~test], y_fit[~test])
    return model.predict(X[test])


def fold_predictions(learner_key: str, task: str, params: dict, X, y_fit, folds: np.ndarray, seed: int,
                     n_threads: int, deadline: float | None = None, n_jobs: int = 1,
                     before: Callable[[int, float], None] | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(step, test_mask, predictions)`` for each fold, in fold order. ``before(step, seconds)`` is
    called before each batch of folds (one fold when sequential) starts, with the mean time a batch has taken
    so far, and may raise to stop the trial (the time budget's abort)."""
    fold_ids = np.unique(folds)
    batch = max(1, min(int(n_jobs), len(fold_ids)))
    t0 = time.time()
    for start in range(0, len(fold_ids), batch):
        if before is not None:
            before(start, (time.time() - t0) / (start // batch) if start else 0.0)
        ids = fold_ids[start:start + batch]
        tests = [folds == f for f in ids]
        if batch == 1:
            preds = [fit_fold(learner_key, task, params, seed, n_threads, X, y_fit, tests[0], deadline)]
        else:
            from joblib import Parallel, delayed

            preds = Parallel(n_jobs=len(ids), backend="loky")(
                delayed(fit_fold)(learner_key, task, params, seed, n_threads, X, y_fit, t, deadline) for t in tests)
        for k, (test, p) in enumerate(zip(tests, preds)):
            yield start + k, test, p
