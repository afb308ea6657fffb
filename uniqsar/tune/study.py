"""Optuna studies: one per (target, model), objective = CV score on out-of-fold predictions.

A local study asks TPE for :data:`TRIAL_BATCH` trials at a time and fits their folds side by side in
``fold_jobs`` processes (:mod:`uniqsar.tune.folds`), so its trials do not depend on the number of processes.
Several machines may also contribute batches to one study through a shared Optuna storage (a journal file in
the run directory by default). Each finished trial writes its OOF predictions atomically to
``trials/<study>/<number>.npy`` so stacking can pick from the best trials without refitting.

Time limits: no batch starts after the study's ``deadline`` (or when the previous batches say it would end
after it); a running batch must end by the ``hard_deadline``: learners fit under
:func:`uniqsar.util.time_limit`, and a round of folds the earlier rounds say cannot finish in time is not
started - the batch's trials are aborted and marked FAIL (never candidates, not counted as finished, no OOF
file).
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
from uniqsar.io import layout
from uniqsar.metrics import METRICS, score
from uniqsar.registry import get_learner_class
from uniqsar.tune.folds import FoldPool, FoldTask
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
    return JournalStorage(JournalFileBackend(str(run_dir / layout.JOURNAL)))


def atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)


#: trials asked from TPE together and fitted side by side: a constant of the search, never derived from
#: ``--n-jobs``, so that the trials (and the seed's result) are the same for any number of processes
TRIAL_BATCH = 4


class TrialTimeout(Exception):
    """A trial cannot finish its folds by its hard deadline."""


def batch_oof(learner_key, task, params_list, X, y, folds, seed, n_threads, pool: FoldPool, *,
              transform="none", deadline=None, abort: bool = True, n_classes: int | None = None, after_fold=None,
              fold_seconds: float = 0.0):
    """Out-of-fold predictions (original scale of ``y``; multiclass: ``(n, K)`` probabilities) of several
    parameter sets, fitted fold by fold: round ``k`` fits fold ``k`` of every set still running, side by side
    in ``pool``. ``after_fold(i, step, oof_i)`` is called after each fold but the last and may return False to
    drop set ``i`` (pruning). Returns ``(oofs, status, seconds)``: per set, status is None (complete),
    ``"pruned"`` or the trial error it raised, seconds the sum of its fold fits.

    With ``deadline`` (``time.time()``), fits run under that time limit, and :class:`TrialTimeout` is raised
    instead of starting fits that the ones so far (``fold_seconds``, the caller's estimate of one fit, before
    any) say would end after it: a round then runs in chunks of ``pool.n_jobs`` fits, checked before each.
    ``abort=False``: every fit runs, ending by ``deadline`` with what it has (the time budget's fallback)."""
    y_fit = target_transform.forward(transform, y)
    extra = {"n_classes": n_classes} if task == "multiclass" else {}
    fold_ids = np.unique(folds)
    oofs = [np.full((len(y), n_classes) if task == "multiclass" else len(y), np.nan) for _ in params_list]
    status: list = [None] * len(params_list)
    seconds = [0.0] * len(params_list)
    checked = deadline is not None and abort
    chunks, t0 = 0, time.time()
    for step, f in enumerate(fold_ids):
        live = [i for i, st in enumerate(status) if st is None]
        test = folds == f
        size = pool.n_jobs if checked else max(1, len(live))
        for start in range(0, len(live), size):
            if checked:
                per_chunk = (time.time() - t0) / chunks if chunks else fold_seconds
                if time.time() + per_chunk > deadline:
                    raise TrialTimeout(f"fold {step + 1} of {len(fold_ids)} would end after the deadline "
                                       f"({per_chunk:.0f} s per fold)")
            part = live[start:start + size]
            tasks = [FoldTask(learner_key, task, {**extra, **params_list[i]}, seed, n_threads, y_fit, test, deadline)
                     for i in part]
            for i, (pred, sec) in zip(part, pool.map(tasks)):
                seconds[i] += sec
                if isinstance(pred, BaseException):
                    status[i] = pred
                    continue
                oofs[i][test] = target_transform.inverse(transform, pred)
            chunks += 1
        for i in live:
            if (status[i] is None and after_fold is not None and step < len(fold_ids) - 1
                    and not after_fold(i, step, oofs[i])):
                status[i] = "pruned"
    return oofs, status, seconds


def cross_val_predict(learner_key, task, params, X, y, folds, seed, n_threads, transform="none", deadline=None,
                      abort: bool = True, n_classes: int | None = None, n_jobs: int = 1):
    """OOF predictions of one parameter set (see :func:`batch_oof`); a trial error is raised."""
    with FoldPool(X, n_jobs) as pool:
        oofs, status, _ = batch_oof(learner_key, task, [params], X, y, folds, seed, n_threads, pool,
                                    transform=transform, deadline=deadline, abort=abort, n_classes=n_classes)
    if isinstance(status[0], BaseException):
        raise status[0]
    return oofs[0]


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
    fold_jobs: int = 1  # processes fitting the folds of a batch of trials side by side (same predictions as 1)
    #: ``[cv] repeats``: the extra fold partitions; a complete trial is also cross-validated on each, and its value
    #: is the mean score over all partitions (its OOF file, for stacking, stays that of the first partition)
    repeat_folds: tuple = ()


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
    """Contribute trials until the study holds ``spec.n_trials`` finished ones or the deadline: batches of
    :data:`TRIAL_BATCH` trials asked from TPE in turn, their folds fitted round by round in ``spec.fold_jobs``
    processes, told back in trial order (see :mod:`uniqsar.tune.folds`)."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=spec.name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=spec.seed + 1000 * worker, n_startup_trials=5),
                              pruner=_pruner(spec))
    cls = get_learner_class(spec.learner)
    counted = tuple(getattr(TrialState, s) for s in _COUNTED)
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    durations = [t.user_attrs["seconds"] for t in done if "seconds" in t.user_attrs]
    walls: list[float] = []  # this process's batches, for the deadline
    with FoldPool(X, spec.fold_jobs) as pool:
        while True:
            k = min(TRIAL_BATCH, spec.n_trials - len(study.get_trials(deepcopy=False, states=counted)))
            if k <= 0:
                return
            if spec.deadline is not None:
                expected = float(np.median(walls)) if walls else (
                    float(np.median(durations)) * k / spec.fold_jobs if durations else 0.0)
                if time.time() + expected > spec.deadline:
                    return
            trials, params_list = [], []
            for _ in range(k):
                trial = study.ask()
                if _surplus(trial, spec.n_trials):  # other workers' trials already finish the study
                    study.tell(trial, state=TrialState.FAIL)
                    continue
                space = cls.search_space(trial, spec.task) if spec.search else {}
                trials.append(trial)
                params_list.append({**space, **spec.fixed_params})
            if not trials:
                return
            t0 = time.time()
            try:
                _run_batch(spec, study, trials, params_list, pool, X, y, folds, worker, durations)
            except TrialTimeout as e:
                for trial in trials:
                    log(f"  {spec.name}: trial {trial.number} aborted after {time.time() - t0:.0f} s: {e}")
                    study.tell(trial, state=TrialState.FAIL)
                return
            except BaseException:
                for trial in trials:  # a bug or an interrupt: leave no trial RUNNING
                    if study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                        study.tell(trial, state=TrialState.FAIL)
                raise
            walls.append(time.time() - t0)


def _run_batch(spec: StudySpec, study, trials, params_list, pool, X, y, folds, worker, durations) -> None:
    from optuna.trial import TrialState

    n_fits = len(np.unique(folds)) + sum(len(np.unique(f)) for f in spec.repeat_folds)  # a trial's fits, all partitions
    fold_seconds = float(np.median(durations)) / n_fits if durations else 0.0

    def after_fold(i, step, oof):
        if not spec.pruning:
            return True
        done = ~np.isnan(oof.reshape(len(y), -1)).any(axis=1)
        trials[i].report(score(spec.metric, y[done], oof[done]), step)
        return not trials[i].should_prune()

    oofs, status, seconds = batch_oof(spec.learner, spec.task, params_list, X, y, folds, spec.seed,
                                      spec.n_threads, pool, transform=spec.transform, deadline=spec.hard_deadline,
                                      abort=spec.abort, n_classes=spec.n_classes, after_fold=after_fold,
                                      fold_seconds=fold_seconds)
    values = [score(spec.metric, y, oof) if st is None else float("nan") for oof, st in zip(oofs, status)]
    partitions: dict[int, list[float]] = {}
    if spec.repeat_folds:
        values, status, seconds, partitions = _repeat_scores(spec, pool, params_list, X, y, values, status, seconds)
    for i, (trial, params, oof, st, sec, value) in enumerate(zip(trials, params_list, oofs, status, seconds, values)):
        if isinstance(st, BaseException):
            log(f"  {spec.name}: trial {trial.number} failed ({type(st).__name__}: {st})")
            study.tell(trial, state=TrialState.FAIL)
            continue
        if not np.isfinite(value):  # pruned, or degenerate predictions (e.g. constant): never a candidate
            study.tell(trial, state=TrialState.PRUNED)
            log(f"  {spec.name}: trial {trial.number} pruned")  # counts towards n_trials
            continue
        trial.set_user_attr("params", params)
        trial.set_user_attr("seconds", sec)
        if i in partitions:
            trial.set_user_attr("partition_scores", partitions[i])
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}:{worker}")
        if spec.oof_in_storage:
            trial.set_user_attr("oof", oof.tolist())
        else:
            atomic_save_npy(Path(spec.trials_dir) / f"{trial.number}.npy", oof)
        frozen = study.tell(trial, value)
        durations.append(sec)
        _log_trial(spec, study, frozen)


def _repeat_scores(spec: StudySpec, pool, params_list, X, y, values, status, seconds):
    """Cross-validate the complete trials of a batch on each extra partition (no pruning); their values become the
    mean over all partitions (returned per trial as well). A trial that fails on one fails."""
    live = [i for i, (v, st) in enumerate(zip(values, status)) if st is None and np.isfinite(v)]
    per = {i: [values[i]] for i in live}
    for folds in spec.repeat_folds:
        if not live:
            break
        oofs, st_r, sec_r = batch_oof(spec.learner, spec.task, [params_list[i] for i in live], X, y, folds, spec.seed,
                                      spec.n_threads, pool, transform=spec.transform, deadline=spec.hard_deadline,
                                      abort=spec.abort, n_classes=spec.n_classes)
        for i, oof, st, sec in zip(live, oofs, st_r, sec_r):
            seconds[i] += sec
            if st is not None:
                status[i] = st if isinstance(st, BaseException) else RuntimeError(f"repeat partition: {st}")
            else:
                per[i].append(score(spec.metric, y, oof))
        live = [i for i in live if status[i] is None]
    values = list(values)
    for i in live:
        values[i] = float(np.mean(per[i])) if all(np.isfinite(per[i])) else float("nan")
    return values, status, seconds, {i: per[i] for i in live}


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
