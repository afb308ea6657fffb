"""Metric registry shared by the whole product.

Every metric is a function ``f(y_true, y_pred) -> float`` on 1-D arrays with:

* **NaN pairs ignored**: a pair is dropped when either ``y_true`` or ``y_pred`` is NaN;
* **degenerate input gives NaN, never an exception**: nothing left after dropping NaN,
  a single class for ``roc_auc``/``pr_auc``, a constant vector for ``spearman``/``pearson``,
  fewer than two points for ``r2``.

Binary metrics take scores/probabilities of the positive class in ``y_pred``
(``accuracy`` thresholds them at 0.5, so hard 0/1 labels work too).

Multiclass metrics take class indices ``0..K-1`` in ``y_true`` and an ``(n, K)`` probability matrix in
``y_pred`` (a row is dropped when its label or any of its probabilities is NaN): ``macro_roc_auc`` (the
default: the mean over classes of one-vs-rest ROC AUC, over the classes that have both members and
non-members among the rows scored), ``logloss``, ``accuracy`` (arg-max) and ``macro_f1`` (arg-max; mean F1
over the classes present in ``y_true``). ``logloss``, ``accuracy`` and ``macro_f1`` apply to binary targets
too; ``roc_auc`` asked for a multiclass target means ``macro_roc_auc``.

The TDC ADMET group's official metrics map to: MAE -> ``mae``, Spearman -> ``spearman``
(``scipy.stats.spearmanr``), AUROC -> ``roc_auc``, AUPRC -> ``pr_auc``
(``sklearn.metrics.average_precision_score``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats
from sklearn import metrics as skm

REGRESSION = "regression"
BINARY = "binary"
MULTICLASS = "multiclass"
TASK_KINDS = (REGRESSION, BINARY, MULTICLASS)

#: Default model-selection metric per task kind; edit or pass ``defaults=`` to override.
DEFAULT_METRICS: dict[str, str] = {REGRESSION: "mae", BINARY: "roc_auc", MULTICLASS: "macro_roc_auc"}


@dataclass(frozen=True)
class Metric:
    """A metric: its function, its direction and the task kind it applies to (``multi``: its multiclass form,
    for a metric that applies to binary and multiclass targets alike)."""

    name: str
    func: Callable[[np.ndarray, np.ndarray], float] | None
    greater_is_better: bool
    task: str  # REGRESSION, BINARY or MULTICLASS: the task it applies to first
    multi: Callable[[np.ndarray, np.ndarray], float] | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([self.task] * (self.func is not None) + [MULTICLASS] * (self.multi is not None)))

    def __call__(self, y_true, y_pred) -> float:
        matrix = np.ndim(y_pred) == 2
        func = self.multi if matrix else self.func
        if func is None:
            raise ValueError(f"metric {self.name!r} takes " + ("a probability matrix (multiclass)" if not matrix
                                                              else "one prediction per row, not a matrix"))
        yt, yp = _clean_matrix(y_true, y_pred) if matrix else _clean(y_true, y_pred)
        if yt.size == 0:
            return math.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant-input / ill-defined warnings -> NaN
            return float(func(yt, yp))


def _clean_matrix(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    yt = np.asarray(y_true, dtype=float).reshape(-1)
    yp = np.asarray(y_pred, dtype=float)
    if yp.shape[0] != yt.size:
        raise ValueError(f"y_true and y_pred differ in length: {yt.size} vs {yp.shape[0]}")
    keep = ~(np.isnan(yt) | np.isnan(yp).any(axis=1))
    return yt[keep].astype(int), yp[keep]


def _macro_auc(yt: np.ndarray, P: np.ndarray) -> float:
    aucs = [skm.roc_auc_score(yt == k, P[:, k]) for k in range(P.shape[1]) if 0 < np.sum(yt == k) < yt.size]
    return float(np.mean(aucs)) if aucs else math.nan


def _multi_logloss(yt: np.ndarray, P: np.ndarray) -> float:
    P = np.clip(P, 1e-15, 1.0)
    return skm.log_loss(yt, P / P.sum(axis=1, keepdims=True), labels=list(range(P.shape[1])))


def _multi_accuracy(yt: np.ndarray, P: np.ndarray) -> float:
    return float(np.mean(yt == P.argmax(axis=1)))


def _multi_f1(yt: np.ndarray, P: np.ndarray) -> float:
    return skm.f1_score(yt, P.argmax(axis=1), labels=np.unique(yt), average="macro", zero_division=0)


def _binary_f1(yt: np.ndarray, yp: np.ndarray) -> float:
    return skm.f1_score(yt, (yp >= 0.5).astype(float), labels=[0.0, 1.0], average="macro", zero_division=0)


def _clean(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    yt = np.asarray(y_true, dtype=float).reshape(-1)
    yp = np.asarray(y_pred, dtype=float).reshape(-1)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred differ in length: {yt.size} vs {yp.size}")
    keep = ~(np.isnan(yt) | np.isnan(yp))
    return yt[keep], yp[keep]


def _two_classes(func: Callable[[np.ndarray, np.ndarray], float]):
    def wrapped(yt: np.ndarray, yp: np.ndarray) -> float:
        return func(yt, yp) if np.unique(yt).size == 2 else math.nan

    return wrapped


def _corr(func):
    def wrapped(yt: np.ndarray, yp: np.ndarray) -> float:
        if yt.size < 2 or np.ptp(yt) == 0 or np.ptp(yp) == 0:
            return math.nan
        return func(yt, yp)[0]

    return wrapped


def _rmse(yt: np.ndarray, yp: np.ndarray) -> float:
    return math.sqrt(np.mean((yt - yp) ** 2))


def _r2(yt: np.ndarray, yp: np.ndarray) -> float:
    return skm.r2_score(yt, yp) if yt.size >= 2 else math.nan


def _logloss(yt: np.ndarray, yp: np.ndarray) -> float:
    return skm.log_loss(yt, np.clip(yp, 1e-15, 1 - 1e-15), labels=[0, 1])


def _accuracy(yt: np.ndarray, yp: np.ndarray) -> float:
    return float(np.mean(yt == (yp >= 0.5)))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("mae", skm.mean_absolute_error, False, REGRESSION),
        Metric("rmse", _rmse, False, REGRESSION),
        Metric("r2", _r2, True, REGRESSION),
        Metric("spearman", _corr(stats.spearmanr), True, REGRESSION),
        Metric("pearson", _corr(stats.pearsonr), True, REGRESSION),
        Metric("roc_auc", _two_classes(skm.roc_auc_score), True, BINARY),
        Metric("pr_auc", _two_classes(skm.average_precision_score), True, BINARY),
        Metric("logloss", _logloss, False, BINARY, _multi_logloss),
        Metric("accuracy", _accuracy, True, BINARY, _multi_accuracy),
        Metric("macro_f1", _binary_f1, True, BINARY, _multi_f1),
        Metric("macro_roc_auc", None, True, MULTICLASS, _macro_auc),
    )
}
#: a metric asked for a task it does not apply to, and what it means there
COUNTERPARTS: dict[tuple[str, str], str] = {("roc_auc", MULTICLASS): "macro_roc_auc"}

#: other spellings of each metric (compared after lower-casing and turning spaces and hyphens into "_")
ALIASES: dict[str, tuple[str, ...]] = {
    "roc_auc": ("auroc", "auc", "rocauc", "roc", "auc_roc", "area_under_roc", "roc_auc_score"),
    "pr_auc": ("auprc", "prauc", "aupr", "average_precision", "ap", "pr_auc_score"),
    "logloss": ("log_loss", "cross_entropy", "bce", "binary_cross_entropy", "nll"),
    "accuracy": ("acc",),
    "macro_f1": ("f1_macro",),
    "macro_roc_auc": ("macro_auc", "macro_auroc", "ovr_auc", "roc_auc_ovr", "multiclass_auc"),
    "mae": ("mean_absolute_error", "l1"),
    "rmse": ("root_mean_squared_error", "rms"),
    "r2": ("r^2", "r_2", "rsquared", "r_squared", "coefficient_of_determination"),
    "spearman": ("spearmanr", "spearman_rho", "spearman_r", "rho"),
    "pearson": ("pearsonr", "pearson_r"),
}
_LOOKUP = {alias: name for name, aliases in ALIASES.items() for alias in (name, *aliases)}


def _key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def get_metric(name: str | Metric) -> Metric:
    """Look a metric up by name or alias (case-insensitive; 'AUROC', 'auc', 'ROC-AUC', 'MAE' ...)."""
    if isinstance(name, Metric):
        return name
    if not isinstance(name, str) or _key(name) not in _LOOKUP:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)} (or an alias such as auroc, auc, "
                       "auprc, log_loss)")
    return METRICS[_LOOKUP[_key(name)]]


def metric_for_task(name: str, task: str, target: str = "target") -> str:
    """The canonical name of metric ``name`` (aliases resolved), checked against the target's task."""
    _check_task(task)
    metric = get_metric(name)
    metric = METRICS.get(COUNTERPARTS.get((metric.name, task), ""), metric)
    if task not in metric.tasks:
        shown = repr(name) if name == metric.name else f"{name!r} ({metric.name})"
        raise ValueError(f"metric {shown} is for {' and '.join(metric.tasks)} targets, but target {target!r} is "
                         f"{task}; use one of: {', '.join(metrics_for(task))}")
    return metric.name


def score(metric: str | Metric, y_true, y_pred) -> float:
    """Compute ``metric`` on (y_true, y_pred), ignoring NaN pairs; NaN when degenerate."""
    return get_metric(metric)(y_true, y_pred)


def metrics_for(task: str) -> list[str]:
    """Names of the metrics that apply to a task kind ('regression', 'binary' or 'multiclass')."""
    _check_task(task)
    return [m.name for m in METRICS.values() if task in m.tasks]


def default_metric(task: str, defaults: dict[str, str] | None = None) -> str:
    """Default selection metric for a task kind: ``mae`` (regression), ``roc_auc`` (binary), ``macro_roc_auc``
    (multiclass)."""
    _check_task(task)
    name = (defaults or DEFAULT_METRICS)[task]
    return get_metric(name).name


def to_loss(metric: str | Metric, value: float) -> float:
    """Turn a metric value into a loss to minimise (negated when greater is better).

    NaN (a degenerate score) becomes +inf so it can never win a ``min``.
    """
    if value is None or math.isnan(value):
        return math.inf
    return -float(value) if get_metric(metric).greater_is_better else float(value)


def _check_task(task: str) -> None:
    if task not in TASK_KINDS:
        raise ValueError(f"unknown task kind {task!r}; expected one of {TASK_KINDS}")
