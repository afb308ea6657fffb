"""Cross-validation fits, in this process or in a pool of processes, with the same results either way.

A study's trials are proposed in fixed-size batches (:data:`uniqsar.tune.study.TRIAL_BATCH`, part of the
algorithm, not of ``--n-jobs``) and fitted fold by fold: round ``k`` fits fold ``k`` of every trial of the batch
still running, side by side in ``n_jobs`` processes, and hands the predictions back in trial order. A fold is a
fit of one learner with one seed on fixed rows, so where it runs does not change what it predicts, and the
study sees the same sequence of trials, partial scores and prunings for any ``n_jobs``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from uniqsar.registry import get_learner_class
from uniqsar.util import time_limit

#: exceptions that fail one trial (as Optuna's ``catch``); anything else is a bug and stops the run
TRIAL_ERRORS = (ValueError, ArithmeticError, RuntimeError)


def fit_fold(learner_key: str, task: str, params: dict, seed: int, n_threads: int, X, y_fit, test: np.ndarray,
             deadline: float | None):
    """Fit on the rows outside ``test`` and predict the rows inside it (on the fitted scale)."""
    model = get_learner_class(learner_key)(task, seed=seed, n_threads=n_threads, **params)
    with time_limit(deadline):
        model.fit(X[~test], y_fit[~test])
    return model.predict(X[test])


@dataclass
class FoldTask:
    learner: str
    task: str
    params: dict
    seed: int
    n_threads: int
    y_fit: np.ndarray
    test: np.ndarray
    deadline: float | None


def _run(t: FoldTask, X):
    """``(predictions, seconds)`` of one fold; a trial-level error comes back as the value, so that one bad trial
    does not sink the others of its batch."""
    t0 = time.time()
    try:
        pred = fit_fold(t.learner, t.task, t.params, t.seed, t.n_threads, X, t.y_fit, t.test, t.deadline)
    except TRIAL_ERRORS as e:
        return e, time.time() - t0
    return pred, time.time() - t0


class FoldPool:
    """Fits :class:`FoldTask` lists on one feature matrix ``X``; ``n_jobs`` > 1: loky processes sharing ``X``
    through one memory-mapped copy (written once, not once per round). Use as a context manager."""

    def __init__(self, X, n_jobs: int = 1):
        self.n_jobs = max(1, int(n_jobs))
        self.X, self._dir = X, None

    def __enter__(self):
        if self.n_jobs > 1 and isinstance(self.X, np.ndarray) and self.X.nbytes > 1 << 20:
            self._dir = tempfile.mkdtemp(prefix="uniqsar_folds_")
            path = os.path.join(self._dir, "X.npy")
            np.save(path, self.X)
            self.X = np.load(path, mmap_mode="r")
        return self

    def __exit__(self, *exc):
        self.X = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def map(self, tasks: list[FoldTask]) -> list:
        """``(predictions or the trial error raised, seconds)`` of each task, in the order given."""
        if self.n_jobs == 1 or len(tasks) <= 1:
            return [_run(t, self.X) for t in tasks]
        from joblib import Parallel, delayed

        # a fixed pool size: loky's executor is reused across rounds instead of being resized
        return Parallel(n_jobs=self.n_jobs, backend="loky", batch_size=1)(delayed(_run)(t, self.X) for t in tasks)
