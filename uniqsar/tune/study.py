"""Optuna studies: one per (target, model), objective = CV score on out-of-fold predictions.

Trials of a study may run in several processes at once (``n_jobs``) and on several machines:
they share one Optuna storage (a journal file in the run directory by default). Each finished
trial writes its OOF predictions atomically to ``trials/<study>/<number>.npy`` so stacking can
pick from the best trials without refitting.

Time limits: no trial starts after the study's ``deadline``; a running trial must end by its
``hard_deadline``: learners fit under :func:`uniqsar.util.time_limit`, and a fold the earlier
folds say cannot finish in time is not started - the trial is aborted and marked FAIL (never a
candidate, not counted as finished, no OOF file).
"""
from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from uniqsar.data import transform as target_transform
from uniqsar.metrics import METRICS, score
from uniqsar.registry import get_learner_class
from uniqsar.tune.folds import fold_predictions
from uniqsar.util import log


def storage_for(run_dir: Path | None, url: str | None = None):
    """An Optuna storage: an SQLAlchemy URL (postgresql://, mysql://, sqlite:///) -> RDB storage;
    ``journal:///path`` or no URL -> a journal file (default: ``optuna.journal`` in the run dir)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if url:
        if url.startswith("journal://"):
            return JournalStorage(JournalFileBackend(url[len("journal://"):]))
        if "://" not in url:
            raise ValueError(f"storage {url!r} is not a URL (postgresql://..., sqlite:///..., journal:///path)")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # heartbeats let a crashed worker's RUNNING trial be failed by the others
            return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180)
    return JournalStorage(JournalFileBackend(str(run_dir / "optuna.journal")))


def atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)


class TrialTimeout(Exception):
    """A trial cannot finish its folds by its hard deadline."""


def cross_val_predict(learner_key, task, params, X, y, folds, seed, n_threads, report=None,
                      metric=None, transform="none", deadline=None, abort: bool = True, n_classes: int | None = None,
                      n_jobs: int = 1):
    """OOF predictions on the original scale of ``y`` (learners fit ``transform(y)``).
    ``report(step, partial_score)`` is called after each fold (pruning). With ``deadline``
    (``time.time()``), fits run under that time limit and :class:`TrialTimeout` is raised
    instead of starting a fold that the mean fold time so far says would end after it (``abort=False``: every
    fold runs, each ending by ``deadline`` with what it has - the time budget's fallback). Multiclass
    (``n_classes`` K): the OOF predictions are an ``(n, K)`` probability matrix. ``n_jobs`` processes fit
    that many folds at a time (:mod:`uniqsar.tune.folds`; the predictions are the same)."""
    y_fit = target_transform.forward(transform, y)
    oof = np.full((len(y), n_classes) if task == "multiclass" else len(y), np.nan)
    extra = {"n_classes": n_classes} if task == "multiclass" else {}
    n_folds = len(np.unique(folds))

    def before(step, per_batch):
        if deadline is not None and abort and time.time() + per_batch > deadline:
            raise TrialTimeout(f"fold {step + 1} of {n_folds} would end after the deadline "
                               f"({per_batch:.0f} s per {'fold' if n_jobs <= 1 else 'batch of folds'})")

    for step, test, pred in fold_predictions(learner_key, task, {**extra, **params}, X, y_fit, folds, seed,
                                             n_threads, deadline, n_jobs, before):
        oof[test] = target_transform.inverse(transform, pred)
        if report is not None and step < n_folds - 1:
            done = ~np.isnan(oof.reshape(len(y), -1)).any(axis=1)
            report(step, score(metric, y[done], oof[done]))
    return oof


@dataclass
class StudySpec:
    """Everything a worker process needs to contribute trials to a study."""

    name: str
    learner: str
    task: str
    metric: str
    fixed_params: dict
    n_trials: int
    seed: int
    n_threads: int
    trials_dir: str
    pruning: bool = True
    search: bool = True
    transform: str = "none"
    oof_in_storage: bool = False  # distributed runs: OOF travels in the study, not in local files
    deadline: float | None = None  # wall-clock time.time() after which no trial starts
    hard_deadline: float | None = None  # a running trial ends by then (or is aborted)
    abort: bool = True  # False: a trial past hard_deadline is cut short (learners keep what they have), not aborted
    n_classes: int | None = None  # multiclass: the number of classes (OOF predictions are (n, K))
    fold_jobs: int = 1  # processes fitting one trial's folds at a time (same predictions as 1)


def _objective_factory(spec: StudySpec, X, y, folds, worker: int = 0):
    import optuna

    cls = get_learner_class(spec.learner)

    def objective(trial):
        if _surplus(trial, spec.n_trials):  # parallel workers started one trial too many: it runs nothing
            trial.study.stop()
            return float("nan")  # FAIL: not counted, never a candidate
        space = cls.search_space(trial, spec.task) if spec.search else {}
        params = {**space, **spec.fixed_params}

        def report(step, value):
            if not spec.pruning:
                return
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        t0 = time.time()
        try:
            oof = cross_val_predict(spec.learner, spec.task, params, X, y, folds, spec.seed, spec.n_threads,
                                    report, spec.metric, spec.transform, spec.hard_deadline, spec.abort,
                                    spec.n_classes, spec.fold_jobs)
        except TrialTimeout as e:
            log(f"  {spec.name}: trial {trial.number} aborted after {time.time() - t0:.0f} s: {e}")
            trial.study.stop()
            return float("nan")  # Optuna marks the trial FAIL
        value = score(spec.metric, y, oof)
        if not np.isfinite(value):
            raise optuna.TrialPruned()  # degenerate predictions (e.g. constant): never a candidate
        if spec.oof_in_storage:
            trial.set_user_attr("oof", oof.tolist())
        else:
            atomic_save_npy(Path(spec.trials_dir) / f"{trial.number}.npy", oof)
        trial.set_user_attr("params", params)
        trial.set_user_attr("seconds", time.time() - t0)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}:{worker}")
        return value  # the study's direction follows the metric

    return objective


_COUNTED = ("COMPLETE", "PRUNED", "RUNNING")


def _surplus(trial, n_trials: int) -> bool:
    """True when the trials numbered before this one already finish the study (parallel workers each start a
    trial after seeing the count below ``n_trials``; the storage numbers them, so the later one stands down)."""
    from optuna.trial import TrialState

    states = tuple(getattr(TrialState, s) for s in _COUNTED)
    before = [t for t in trial.study.get_trials(deepcopy=False, states=states) if t.number < trial.number]
    return len(before) >= n_trials


def _pruner(spec: StudySpec):
    import optuna

    if not spec.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)


def create_study(spec: StudySpec, storage):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if METRICS[spec.metric].greater_is_better else "minimize"
    study = optuna.create_study(study_name=spec.name, storage=storage, direction=direction,
                                load_if_exists=True, pruner=_pruner(spec),
                                sampler=optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=5))
    if not study.trials:
        cls = get_learner_class(spec.learner)
        defaults = {k: v for k, v in getattr(cls, "defaults", {}).items() if v is not None and k not in spec.fixed_params}
        if defaults and spec.search and spec.n_trials > 1:
            study.enqueue_trial(defaults, skip_if_exists=True)
    return study


def fail_stale_trials(spec: StudySpec, storage) -> int:
    """Mark trials left RUNNING by a killed process as FAIL (call from the coordinator on
    resume, before any worker starts). Returns how many were marked."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=spec.name, storage=storage)
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(stale)


def run_trials(spec: StudySpec, storage, X, y, folds, worker: int = 0) -> None:
    """Contribute trials until the study holds ``spec.n_trials`` finished ones or the deadline."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=spec.name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=spec.seed + 1000 * worker, n_startup_trials=5),
                              pruner=_pruner(spec))
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if len(done) >= spec.n_trials:
        return
    objective = _objective_factory(spec, X, y, folds, worker)
    durations: list[float] = [t.user_attrs.get("seconds", 0.0) for t in done if "seconds" in t.user_attrs]

    def after_trial(study, trial):
        if trial.state == TrialState.COMPLETE and "seconds" in trial.user_attrs:
            durations.append(trial.user_attrs["seconds"])
            _log_trial(spec, study, trial)
        elif trial.state == TrialState.PRUNED:
            log(f"  {spec.name}: trial {trial.number} pruned")  # counts towards n_trials
        if spec.deadline is not None:
            expected = float(np.median(durations)) if durations else 0.0
            if time.time() + expected > spec.deadline:
                study.stop()

    if spec.deadline is not None and time.time() >= spec.deadline:
        return
    # running trials count too: a worker does not start a trial that others' running ones make unnecessary
    study.optimize(objective, n_trials=spec.n_trials,
                   callbacks=[MaxTrialsCallback(spec.n_trials, states=tuple(getattr(TrialState, s) for s in _COUNTED)),
                              after_trial],
                   catch=(ValueError, ArithmeticError, RuntimeError))


def _log_trial(spec: StudySpec, study, trial) -> None:
    """One progress line per finished trial, so long studies are never silent."""
    try:
        best = f"{study.best_value:.4f}"
    except ValueError:  # no complete trial yet (another worker's trial may have finished first)
        best = "-"
    from optuna.trial import TrialState

    n_done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    log(f"  {spec.name}: trial {trial.number} {spec.metric} {trial.value:.4f} (best {best}) "
        f"in {trial.user_attrs['seconds']:.1f} s [{n_done}/{spec.n_trials}]")


def finished_trials(spec: StudySpec, storage, top: int):
    """The best ``top`` complete trials: list of (number, value, params, oof, seconds)."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=spec.name, storage=storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE and t.value is not None]
    higher = METRICS[spec.metric].greater_is_better
    complete.sort(key=lambda t: (-t.value if higher else t.value, t.number))
    out = []
    for t in complete:
        path = Path(spec.trials_dir) / f"{t.number}.npy"
        if "oof" in t.user_attrs:
            oof = np.asarray(t.user_attrs["oof"], dtype=float)
        elif path.exists():
            oof = np.load(path, allow_pickle=False)
        else:
            continue
        out.append((t.number, float(t.value), dict(t.user_attrs["params"]), oof,
                    float(t.user_attrs.get("seconds", 0.0))))
        if len(out) >= top:
            break
    n_finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    return out, n_finished
