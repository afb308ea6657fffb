"""Fit one target: folds -> tuned learners (OOF) -> stacked ensemble -> final models."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.config import Recipe
from uniqsar.data import transform as target_transform
from uniqsar.data.dataset import TargetData
from uniqsar.data.split import make_folds
from uniqsar.ensemble.backward import shrunk, stack_models
from uniqsar.ensemble.greedy import blend, fit_weights
from uniqsar.featurize.matrix import FeatureStore
from uniqsar.io import layout
from uniqsar.io.artifacts import read_json, to_jsonable, write_json
from uniqsar.io.layout import safe_name
from uniqsar.io.verify import member_digests
from uniqsar.metrics import score
from uniqsar.pipeline import oof as oof_columns
from uniqsar.pipeline.budget import is_fallback
from uniqsar.registry import get_learner_class
from uniqsar.tune.study import StudySpec, create_study, fail_stale_trials, finished_trials, run_trials, storage_for
from uniqsar.util import log, threads_per_job, time_limit

# A running trial may overrun its study's time share by this fraction of it (never past the
# target's tuning deadline) before it is aborted.
TRIAL_GRACE = 0.1


@dataclass
class TargetContext:
    run_dir: Path
    recipe: Recipe
    metric: str
    seed: int
    n_jobs: int
    store: FeatureStore
    storage_url: str | None = None
    deadline: float | None = None  # tuning ends by this (no trial runs past it)
    final_deadline: float | None = None  # stacking and final fits end by this
    transform: str = "none"  # resolved regression target transform
    resume: bool = False
    run_id: str = ""
    joint: object | None = None  # pipeline.joint.JointPlan when this target is fitted jointly with others


def _study_name(target: str, model_id: str) -> str:
    return f"{safe_name(target)}/{model_id}"


def study_spec(ctx: TargetContext, data: TargetData, model, deadline=None, trials_dir=None,
               hard_deadline=None, abort: bool = True) -> StudySpec:
    name = _study_name(data.name, model.id)
    fold_jobs = max(1, min(ctx.n_jobs, ctx.recipe.n_folds))  # processes for the folds of a batch of trials
    if ctx.storage_url and ctx.run_id:  # a shared database may hold many runs
        name = f"{ctx.run_id}:{name}"
    return StudySpec(
        name=name, learner=model.learner, task=data.task, metric=ctx.metric, fixed_params=dict(model.params),
        n_trials=model.n_trials, seed=ctx.seed, n_threads=threads_per_job(fold_jobs), fold_jobs=fold_jobs,
        trials_dir=str(trials_dir or layout.trials_dir(ctx.run_dir, name)), pruning=ctx.recipe.pruning, search=model.search,
        transform=ctx.transform, deadline=deadline, hard_deadline=hard_deadline, abort=abort,
        oof_in_storage=ctx.storage_url is not None,
        n_classes=len(data.classes) if data.task == "multiclass" else None,
        # repeated CV only where the study chooses between configurations
        repeat_folds=tuple(target_folds(ctx.recipe, data, ctx.seed, r) for r in range(1, ctx.recipe.cv_repeats))
        if model.search and model.n_trials > 1 else (),
    )


def _tune_model(ctx: TargetContext, data: TargetData, model, X, folds, deadline, hard_deadline):
    # the budget's fallback always starts and finishes its folds (cut short at the tuning deadline, never aborted)
    spec = study_spec(ctx, data, model, deadline, hard_deadline=hard_deadline, abort=not is_fallback(model))
    storage = storage_for(ctx.run_dir, ctx.storage_url)
    create_study(spec, storage)
    if ctx.resume:
        stale = fail_stale_trials(spec, storage)
        if stale:
            log(f"  {model.id}: {stale} trial(s) interrupted by the previous run marked failed")
    run_trials(spec, storage, X, data.y, folds)  # fixed trial batches: the seed holds for any n_jobs
    return spec, finished_trials(spec, storage, ctx.recipe.top_trials)


def fit_target_without_cv(ctx: TargetContext, data: TargetData) -> dict:
    """``cv.n_folds = 0``: no tuning, no stacking; each model is fitted once on all data with
    its fixed params and the members are averaged (e.g. the MapLight baseline)."""
    tdir = layout.target_dir(ctx.run_dir, data.name)
    log(f"target {data.name!r}: {data.task}, {len(data.y)} molecules, no cross-validation (n_folds = 0)")
    members, rows = [], []
    weight = 1.0 / len(ctx.recipe.models)
    for model in ctx.recipe.models:
        t0 = time.time()
        cand = {"id": model.id, "model": model, "params": dict(model.params)}
        mdir = layout.member_dir(tdir, model.id)
        _fit_final(ctx, data, cand, np.zeros(len(data.y), int), mdir)
        log(f"  {model.id}: fitted on all data in {time.time() - t0:.1f} s")
        members.append({"id": model.id, "learner": model.learner, "features": list(model.features),
                        "params": cand["params"], "weight": weight, "cv_score": None,
                        "path": str(mdir.relative_to(ctx.run_dir)), "files": member_digests(mdir)})
        rows.append({"target": data.name, "candidate": model.id, "learner": model.learner,
                     "features": "+".join(model.features), "trial": -1, "rank_in_study": 1,
                     "cv_score": np.nan, "n_trials": 0, "weight": weight})
    pd.DataFrame({"smiles": data.smiles, "y": data.y, "fold": -1, "ensemble_nested": np.nan}).to_csv(
        tdir / layout.OOF, index=False)
    ensemble = {"target": data.name, "task": data.task, "metric": ctx.metric, "method": "mean", "final": "refit",
                "transform": ctx.transform, "members": members, "cv_score_nested": None, "cv_score_in_sample": None,
                "best_single": {"id": members[0]["id"], "cv_score": None}, "classes": data.classes}
    write_json(tdir / layout.ENSEMBLE, ensemble)
    return {"rows": rows, "ensemble": ensemble}


def target_folds(recipe: Recipe, data: TargetData, seed: int, repeat: int = 0) -> np.ndarray:
    """The target's CV folds; ``repeat`` r > 0: the r-th extra partition of ``[cv] repeats`` (seed + r)."""
    y_strat = data.y if data.task in ("binary", "multiclass") else None
    return make_folds(data.smiles, recipe.n_folds, seed + repeat, recipe.split, y_strat)


def fit_target(ctx: TargetContext, data: TargetData, folds: np.ndarray | None) -> dict:
    recipe = ctx.recipe
    if recipe.n_folds == 0:
        return fit_target_without_cv(ctx, data)
    tdir = layout.target_dir(ctx.run_dir, data.name)
    log(f"target {data.name!r}: {data.task}, {len(data.y)} molecules, target transform {ctx.transform}, {len(np.unique(folds))} "
        f"{recipe.split} folds (sizes {np.bincount(folds).tolist()}), metric {ctx.metric}")

    candidates, rows = [], []
    joint = ctx.joint if ctx.joint is not None and data.name in ctx.joint.targets else None
    for i, model in enumerate(recipe.models):
        if joint is not None and model in joint.models:  # tuned once for all joint targets (pipeline/joint.py)
            continue
        t0 = time.time()
        X = ctx.store.matrix(model.features, data.smiles)
        deadline = hard_deadline = None
        if ctx.deadline is not None and is_fallback(model):
            hard_deadline = ctx.deadline
        elif ctx.deadline is not None:
            remaining = max(0.0, ctx.deadline - time.time())
            left = sum(m.n_trials for m in recipe.models[i:])
            share = remaining * model.n_trials / max(1, left)
            deadline = time.time() + share
            hard_deadline = min(deadline + TRIAL_GRACE * share, ctx.deadline)
        spec, (best, n_run) = _tune_model(ctx, data, model, X, folds, deadline, hard_deadline)
        if not best:
            log(f"  {model.id}: no complete trial ({n_run} pruned, others failed or aborted by the time budget) - skipped")
            continue
        log(f"  {model.id}: best CV {ctx.metric} {best[0][1]:.4f} ({n_run} trials) in {time.time() - t0:.1f} s")
        for rank, (number, value, params, oof, seconds) in enumerate(best):
            cid = f"{model.id}#t{number}"
            candidates.append({"id": cid, "model": model, "trial": number, "params": params, "oof": oof, "cv": value,
                               "seconds": seconds})
            rows.append({"target": data.name, "candidate": cid, "learner": model.learner,
                         "features": "+".join(model.features), "trial": number, "rank_in_study": rank + 1,
                         "cv_score": value, "n_trials": n_run})

    if joint is not None:
        candidates, rows = _add_joint_candidates(ctx, data, joint, candidates, rows)
    if not candidates:
        raise RuntimeError(f"target {data.name!r}: no learner finished a trial (time budget too small?)")
    methods = ("greedy", "best", "mean") if recipe.ensemble == "auto" else (recipe.ensemble,)
    best_single = max(candidates, key=lambda c: c["cv"]) if _higher(ctx.metric) else min(candidates, key=lambda c: c["cv"])
    P = np.stack([c["oof"] for c in candidates], axis=1)  # (n, m) or, multiclass, (n, m, K)
    stack, weights = _stack(ctx, candidates, P, data.y, folds, methods, best_single)
    kept = _fit_within_budget(ctx, candidates, weights, len(np.unique(folds)))
    pool = np.arange(len(candidates))
    if (kept > 0).sum() < (weights > 0).sum():  # what is saved is stacked (and scored) again from what is kept
        pool = np.flatnonzero(kept > 0)
        log(f"  time budget: stacking again from the {len(pool)} member(s) whose final fits fit in the time left; "
            "the scores reported are those of the saved ensemble")
        stack, sub = _stack(ctx, [candidates[j] for j in pool], P[:, pool], data.y, folds, methods, best_single)
        weights = np.zeros(len(candidates))
        weights[pool] = sub
    method, nested, method_scores, ens_cv, without = (stack.method, stack.nested, stack.method_scores, stack.cv,
                                                      stack.without)
    final_weights, weights = weights, np.array([0.0 if c.get("joint") else w for c, w in zip(candidates, weights)])
    members = []
    kept_c = [(c, w, layout.member_dir(tdir, c["id"])) for c, w in zip(candidates, weights)
              if w > 0]
    _fit_finals(ctx, data, [(c, mdir) for c, _, mdir in kept_c], folds)
    for c, w, mdir in kept_c:
        members.append({"id": c["id"], "learner": c["model"].learner, "features": list(c["model"].features),
                        "params": c["params"], "weight": float(w), "cv_score": c["cv"],
                        "path": str(mdir.relative_to(ctx.run_dir)), "files": member_digests(mdir)})
    weights = final_weights  # joint members: fitted once for all joint targets, then shared
    members += _joint_members(ctx, data, joint, candidates, weights)
    for r, c, w in zip(rows, candidates, weights):
        r["weight"] = float(w)
        r["ensemble_cv_without_model"] = without.get(c["model"].id, np.nan)
    ens_row = {"target": data.name, "candidate": "ENSEMBLE", "learner": method, "features": "",
               "trial": -1, "rank_in_study": 0, "cv_score": ens_cv, "n_trials": 0, "weight": 1.0,
               "ensemble_cv_without_model": np.nan}
    oof = pd.DataFrame({"smiles": data.smiles, "y": data.y, "fold": folds})
    columns = {c["id"]: c["oof"] for c in candidates}
    columns.update(ensemble_nested=nested, ensemble_in_sample=blend(P, weights))
    for name, values in columns.items():
        oof_columns.put(oof, name, values)
    oof = oof.copy()  # one block (many columns were added)
    tdir.mkdir(parents=True, exist_ok=True)  # no folder yet when every member is a joint one
    oof.to_csv(tdir / layout.OOF, index=False)
    ensemble = {"target": data.name, "task": data.task, "metric": ctx.metric, "method": method,
                "shrink": recipe.shrink,
                "method_nested_scores": method_scores,
                "final": recipe.final, "transform": ctx.transform, "members": members, "cv_score_nested": ens_cv,
                "cv_score_in_sample": score(ctx.metric, data.y, blend(P, weights)),
                "best_single": {"id": best_single["id"], "cv_score": best_single["cv"]},
                "cv_score_nested_without_model": without,
                "dropped_models": stack.dropped,
                **({"without_elimination": _without_elimination(stack, [candidates[j] for j in pool], P[:, pool],
                                                                data.y, ctx.metric, recipe.ensemble_size)}
                   if stack.dropped else {}),
                "classes": data.classes}
    write_json(tdir / layout.ENSEMBLE, ensemble)
    return {"rows": [ens_row] + rows, "ensemble": ensemble}


def _add_joint_candidates(ctx: TargetContext, data: TargetData, joint, candidates: list, rows: list):
    from uniqsar.pipeline.joint import target_candidates

    extra = target_candidates(joint, data.name, ctx.metric)
    for rank, c in enumerate(extra):
        log(f"  {c['id']} (joint): CV {ctx.metric} {c['cv']:.4f} on this target")
        rows.append({"target": data.name, "candidate": c["id"], "learner": c["model"].learner,
                     "features": "+".join(c["model"].features), "trial": c["trial"], "rank_in_study": rank + 1,
                     "cv_score": c["cv"], "n_trials": c["model"].n_trials})
    return candidates + extra, rows


def _joint_members(ctx: TargetContext, data: TargetData, joint, candidates: list, weights: np.ndarray) -> list:
    from uniqsar.pipeline.joint import fit_joint_member, member_entry

    out = []
    for c, w in zip(candidates, weights):
        if w > 0 and c.get("joint"):
            path = fit_joint_member(joint, ctx.run_dir, c, ctx.recipe, ctx.seed, ctx.final_deadline)
            out.append(member_entry(joint, ctx.run_dir, data.name, c, path, w))
    return out


def _stack(ctx: TargetContext, candidates: list, P: np.ndarray, y: np.ndarray, folds: np.ndarray, methods: tuple,
           best_single: dict):
    """Stack ``candidates`` (OOF columns ``P``): the stacking result and one weight per candidate; logged."""
    recipe = ctx.recipe
    groups = [c["model"].id for c in candidates]
    stack = stack_models(P, groups, y, folds, ctx.metric, methods, recipe.ensemble_size, drop=recipe.drop_models,
                         shrink=recipe.shrink)
    for d in stack.dropped:
        log(f"  dropped {d['model']} from the stack: nested CV {ctx.metric} {d['cv_with']:.4f} with it, "
            f"{d['cv_without']:.4f} without")
    weights = np.zeros(len(candidates))
    weights[stack.columns] = shrunk(fit_weights(stack.method, P[:, stack.columns], y, ctx.metric, recipe.ensemble_size),
                                    [groups[j] for j in stack.columns], recipe.shrink)
    if recipe.shrink:
        log(f"  stack weights shrunk {recipe.shrink:g} of the way to the equal-weight mean of each model's best trial")
    if len(methods) > 1:
        log("  nested CV of the ensemble methods: " + ", ".join(f"{m} {v:.4f}" for m, v in stack.method_scores.items()))
    log(f"  ensemble ({stack.method}, {int((weights > 0).sum())} members): nested CV {ctx.metric} {stack.cv:.4f} "
        f"(best single {best_single['cv']:.4f})")
    dropped = {d["model"] for d in stack.dropped}
    for model_id, v in stack.without.items():
        if model_id not in dropped:
            log(f"  ensemble without {model_id}: nested CV {ctx.metric} {v:.4f} ({stack.cv - v:+.4f} from it)")
    return stack, weights


def _without_elimination(stack, candidates: list, P: np.ndarray, y: np.ndarray, metric: str, size: int) -> dict:
    """The ensemble as it was before backward elimination (not fitted; for side-by-side benchmarks)."""
    w = fit_weights(stack.method_all, P, y, metric, size)
    return {"method": stack.method_all, "cv_score_nested": stack.cv_all,
            "members": [{"id": c["id"], "learner": c["model"].learner, "features": list(c["model"].features),
                         "params": c["params"], "weight": float(wj), "cv_score": c["cv"]}
                        for c, wj in zip(candidates, w) if wj > 0]}


def _fit_within_budget(ctx: TargetContext, candidates: list, weights: np.ndarray, n_folds: int) -> np.ndarray:
    """Drop the lightest ensemble members whose final fit would not finish before the
    deadline (estimated from their measured CV time); the heaviest member is always kept."""
    if ctx.final_deadline is None:
        return weights
    per_fit = {"refit": 1.3 / max(1, n_folds), "folds": 1.0}[ctx.recipe.final]
    left = ctx.final_deadline - time.time()
    keep = np.zeros_like(weights)
    for j in np.argsort(-weights):
        if weights[j] <= 0:
            break
        cost = candidates[j]["seconds"] * per_fit
        if keep.sum() == 0 or cost <= left:
            keep[j] = weights[j]
            left -= cost
    if (keep > 0).sum() < (weights > 0).sum():
        log(f"  time budget: keeping {int((keep > 0).sum())} of {int((weights > 0).sum())} ensemble members")
    return keep / keep.sum()


def _higher(metric: str) -> bool:
    from uniqsar.metrics import METRICS

    return METRICS[metric].greater_is_better


def _fit_final(ctx: TargetContext, data: TargetData, cand: dict, folds: np.ndarray, mdir: Path) -> None:
    _fit_finals(ctx, data, [(cand, mdir)], folds)


def _fit_finals(ctx: TargetContext, data: TargetData, todo: list, folds: np.ndarray) -> None:
    """Fit the final model(s) of each ``(candidate, folder)`` in ``todo``, ``ctx.n_jobs`` members at a time in
    processes (each member's fit is the same as alone). Each part is written to a temporary folder and renamed,
    then ``final.json`` records what was fitted; a resumed run reuses a folder whose record matches."""
    y = target_transform.forward(ctx.transform, data.y)
    extra = {"n_classes": len(data.classes)} if data.task == "multiclass" else {}
    jobs = []
    for cand, mdir in todo:
        model = cand["model"]
        record = {"candidate": cand["id"], "learner": model.learner, "features": list(model.features),
                  "params": cand["params"], "seed": ctx.seed, "transform": ctx.transform, "final": ctx.recipe.final,
                  "featurizers": {a: ctx.store.specs[a] for a in model.features}}
        if ctx.resume and (mdir / layout.FINAL).is_file() and read_json(mdir / layout.FINAL) == to_jsonable(record):
            log(f"  {cand['id']}: final model reused from the interrupted run")
            continue
        parts = ([(f"fold{int(f)}", folds != f) for f in np.unique(folds)]
                 if ctx.recipe.final == "folds" and ctx.recipe.n_folds else [("full", np.ones(len(y), bool))])
        X = ctx.store.matrix(model.features, data.smiles)
        jobs.append((model.learner, data.task, ctx.seed, {**extra, **cand["params"]}, X, y, parts, mdir, record))
    n_par = max(1, min(ctx.n_jobs, len(jobs)))
    if n_par == 1:
        for job in jobs:
            _fit_parts(*job, n_threads=threads_per_job(1), deadline=ctx.final_deadline)
        return
    from joblib import Parallel, delayed

    Parallel(n_jobs=n_par, backend="loky")(
        delayed(_fit_parts)(*job, n_threads=threads_per_job(n_par), deadline=ctx.final_deadline) for job in jobs)


def _fit_parts(learner: str, task: str, seed: int, params: dict, X, y, parts, mdir: Path, record: dict, *,
               n_threads: int, deadline: float | None) -> None:
    cls = get_learner_class(learner)
    (mdir / layout.FINAL).unlink(missing_ok=True)
    for name, train in parts:
        m = cls(task, seed=seed, n_threads=n_threads, **params)
        with time_limit(deadline):
            m.fit(X[train], y[train])
        tmp = mdir / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        m.save(tmp)
        shutil.rmtree(mdir / name, ignore_errors=True)
        tmp.rename(mdir / name)
    write_json(mdir / layout.FINAL, record)
