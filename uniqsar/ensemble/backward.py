"""What each model adds to the stack, and backward elimination of the models that only hurt it.

A *model* is one learner x feature view; its best Optuna trials are several columns (candidates) of the
out-of-fold matrix. Every score here is a nested-CV score (``choose_method``): the stack is rebuilt from
scratch without the model, method choice included, so "what a model adds" is measured the same honest
way as the ensemble itself."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from uniqsar.ensemble.greedy import blend, choose_method
from uniqsar.metrics import METRICS, score


@dataclass
class Stack:
    method: str  # the combination method chosen on nested CV
    nested: np.ndarray  # the ensemble's nested out-of-fold predictions
    method_scores: dict[str, float]  # nested score of every method tried
    cv: float  # nested score of the chosen method
    columns: list[int]  # candidate columns of the models kept
    without: dict[str, float]  # nested score without each model (a dropped model: `cv`, it is not in the stack)
    dropped: list[dict] = field(default_factory=list)  # {"model", "cv_with", "cv_without"} per elimination step
    method_all: str = ""  # before elimination: the method chosen on all models, and its nested score
    cv_all: float = float("nan")


def model_mean_weights(groups) -> np.ndarray:
    """Equal weights on each model's first column (a model's candidates come best first), zero elsewhere."""
    groups = list(groups)
    first = np.array([groups.index(g) == j for j, g in enumerate(groups)], float)
    return first / first.sum()


def shrunk(weights: np.ndarray, groups, shrink: float) -> np.ndarray:
    """``(1 - shrink) x weights + shrink x`` :func:`model_mean_weights`: the stacker's choices pulled toward the
    plain mean of the models' best trials, which makes no choice on the OOF rows (0: the stacker's weights)."""
    return weights if shrink <= 0 else (1 - shrink) * np.asarray(weights, float) + shrink * model_mean_weights(groups)


def _nested(methods, P, groups, y, folds, metric, size, shrink):
    """``choose_method`` on ``P`` with the shrinkage applied to its nested predictions (exact: a blend is linear
    in its weights and the model mean has none fitted)."""
    method, nested, method_scores = choose_method(methods, P, y, folds, metric, size)
    if shrink > 0:
        nested = (1 - shrink) * nested + shrink * blend(P, model_mean_weights(groups))
    return method, nested, method_scores


def without_each_model(P: np.ndarray, groups, y, folds, metric: str, methods, size: int,
                       shrink: float = 0.0) -> dict[str, float]:
    """Nested-CV score of the stack rebuilt without each model's columns (``groups[j]`` names column j's
    model); empty with fewer than two models."""
    groups = np.asarray(groups)
    ids = list(dict.fromkeys(groups))
    if len(ids) < 2:
        return {}
    return {g: score(metric, y, _nested(methods, P[:, groups != g], groups[groups != g], y, folds, metric, size,
                                        shrink)[1]) for g in ids}


def stack_models(P: np.ndarray, groups, y, folds, metric: str, methods, size: int, drop: bool = True,
                 shrink: float = 0.0) -> Stack:
    """Choose the stacking method on nested CV and, with ``drop``, eliminate backwards: while rebuilding the
    stack without one model improves the nested score, drop the model whose removal helps most.

    Greedy selection over many near-identical candidates can fit the stacking folds' noise; a model that
    only contributes that is dropped. Each step is one more choice made on the same nested CV, so the final
    score carries that (small) selection optimism, like the choice among methods; every step is returned."""
    groups = np.asarray(groups)
    sign = 1 if METRICS[metric].greater_is_better else -1
    active = list(dict.fromkeys(groups))
    dropped, first = [], None
    while True:
        cols = np.flatnonzero(np.isin(groups, active))
        method, nested, method_scores = _nested(methods, P[:, cols], groups[cols], y, folds, metric, size, shrink)
        cv = score(metric, y, nested)
        first = first or (method, cv)
        without = without_each_model(P[:, cols], groups[cols], y, folds, metric, methods, size, shrink)
        if not drop or not without:
            break
        worst = max(without, key=lambda g: sign * without[g])
        if sign * (without[worst] - cv) <= 1e-12:
            break
        dropped.append({"model": str(worst), "cv_with": cv, "cv_without": without[worst]})
        active.remove(worst)
    without.update({d["model"]: cv for d in dropped})
    return Stack(method, nested, method_scores, cv, cols.tolist(), without, dropped, *first)
