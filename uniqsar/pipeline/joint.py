"""Joint targets (``[data] joint_targets = true`` / ``--joint``): the torch learners of a recipe (D-MPNN, Uni-Mol2,
SMILES transformer: learners with ``"multitask"`` in ``tasks``) fit all regression and binary targets at once with
one network, one output per target and a loss masked where a molecule has no label
(``torch_trainer.masked_multitask_loss``). Every other learner (GBDTs, linear) stays per target, and multiclass
targets stay per target.

How it fits the pipeline:

* the molecules of the joint targets are pooled (each with the labels it has) and split into scaffold folds once;
  every joint target uses those folds restricted to its molecules, for all its learners, so the stacking of
  per-target and joint candidates compares out-of-fold predictions made on the same folds;
* one Optuna study per joint model (``<run_id>:joint/<model id>``) tunes it; a trial's objective is the mean over
  the targets of a scale-free loss: ``1 - score`` for a higher-is-better metric (AUC, R2, Spearman), ``score /
  score of the constant predictor`` for a lower-is-better one (MAE, RMSE, log-loss), each on the target's own
  metric and out-of-fold rows;
* the best ``top_trials`` trials become stacking candidates of every joint target (their column for that target);
* a candidate that a target's ensemble keeps is fitted once, on all pooled molecules, into
  ``joint/<model>_t<trial>/`` and shared: each member's ``output`` names its column.

Regression targets are fitted on their target transform (``log10p1`` for skewed targets, as per target).
Distributed workers (``uniqsar worker``) do not join the joint studies: they run on the coordinator.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from uniqsar.data import transform as target_transform
from uniqsar.data.split import make_folds
from uniqsar.io import layout
from uniqsar.io.artifacts import read_json, write_json
from uniqsar.io.verify import member_digests
from uniqsar.metrics import METRICS, score
from uniqsar.models.base import JOINT, JOINT_TASKS
from uniqsar.registry import get_learner_class
from uniqsar.util import log, threads_per_job, time_limit

JOINT_DIR = layout.JOINT


@dataclass
class JointPlan:
    """The pooled data of the joint targets and what the joint studies found."""

    targets: list[str]  # the joint targets, in the order of the network's outputs
    tasks: list[str]
    smiles: np.ndarray  # pooled molecules (n,)
    Y: np.ndarray  # (n, T) labels, NaN where missing (original scale)
    folds: np.ndarray  # (n,) scaffold folds of the pooled molecules
    rows: dict[str, np.ndarray]  # target -> row of each of its molecules in the pool
    models: list = field(default_factory=list)  # ModelSpec of the joint models
    candidates: dict[str, list] = field(default_factory=dict)  # model id -> [(trial, value, params, oof, seconds)]
    fitted: dict[str, str] = field(default_factory=dict)  # candidate id -> member path (relative to the run)
    transforms: dict[str, str] = field(default_factory=dict)  # target -> its regression target transform

    def fit_targets(self) -> np.ndarray:
        """(n, T) labels on the scale the learners fit (each regression target's transform applied)."""
        return np.column_stack([target_transform.forward(self.transforms.get(n, "none"), self.Y[:, j])
                                for j, n in enumerate(self.targets)])

    def target_folds(self, name: str) -> np.ndarray:
        return self.folds[self.rows[name]]

    def output(self, name: str) -> int:
        return self.targets.index(name)


def joint_models(recipe) -> list:
    return [m for m in recipe.models if JOINT in get_learner_class(m.learner).tasks]


def plan_joint(recipe, targets: dict, seed: int) -> JointPlan | None:
    """The joint plan of a fit (None: the recipe does not ask for one, or there is nothing to fit jointly)."""
    if not getattr(recipe, "joint_targets", False):
        return None
    names = [n for n, d in targets.items() if d.task in JOINT_TASKS]
    models = joint_models(recipe)
    skipped = [n for n, d in targets.items() if d.task not in JOINT_TASKS]
    if skipped:
        log(f"joint targets: {', '.join(map(repr, skipped))} (multiclass) stay per target")
    if len(names) < 2 or not models or not recipe.n_folds:
        why = ("fewer than two regression / binary targets" if len(names) < 2 else
               "no learner in the recipe fits joint targets (dmpnn, unimol2, smiles_transformer)" if not models else
               "the recipe has no cross-validation (n_folds = 0)")
        log(f"joint targets: {why}; every target is fitted on its own")
        return None
    pool = list(dict.fromkeys(s for n in names for s in targets[n].smiles))
    index = {s: i for i, s in enumerate(pool)}
    Y = np.full((len(pool), len(names)), np.nan)
    rows = {}
    for j, n in enumerate(names):
        r = np.array([index[s] for s in targets[n].smiles], dtype=np.int64)
        Y[r, j] = targets[n].y
        rows[n] = r
    smiles = np.asarray(pool, dtype=object)
    folds = make_folds(list(smiles), recipe.n_folds, seed, recipe.split)
    log(f"joint targets {', '.join(names)}: {len(pool)} pooled molecules ({int(np.isfinite(Y).sum())} labels), "
        f"{len(np.unique(folds))} shared {recipe.split} folds; joint models: {', '.join(m.id for m in models)}")
    return JointPlan(names, [targets[n].task for n in names], smiles, Y, folds, rows, models)


# --------------------------------------------------------------------------- tuning
def _scale_free_loss(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    v = score(metric, y, p)
    if not np.isfinite(v):
        return np.inf
    if METRICS[metric].greater_is_better:
        return 1.0 - v
    base = score(metric, y, np.full(len(y), np.nanmean(y)))
    return v / base if np.isfinite(base) and base > 0 else v


def joint_objective(plan: JointPlan, metrics: dict[str, str], oof: np.ndarray) -> float:
    """Mean over the joint targets of the scale-free loss of their out-of-fold columns (module docstring)."""
    losses = [_scale_free_loss(metrics[n], plan.Y[:, j], oof[:, j]) for j, n in enumerate(plan.targets)]
    return float(np.mean(losses))


def joint_cross_val(plan: JointPlan, model, params: dict, seed: int, n_threads: int,
                    deadline: float | None = None) -> np.ndarray:
    """(n, T) out-of-fold predictions of one joint model (original scale)."""
    cls = get_learner_class(model.learner)
    Y_fit, transforms = plan.fit_targets(), plan.transforms
    oof = np.full(plan.Y.shape, np.nan)
    for f in np.unique(plan.folds):
        test = plan.folds == f
        m = cls(JOINT, seed=seed, n_threads=n_threads, target_tasks=plan.tasks, **params)
        with time_limit(deadline):
            m.fit(plan.smiles[~test], Y_fit[~test])
        pred = m.predict(plan.smiles[test])
        oof[test] = np.column_stack([target_transform.inverse(transforms.get(n, "none"), pred[:, j])
                                     for j, n in enumerate(plan.targets)])
    return oof


def tune_joint(plan: JointPlan, run_dir: Path, recipe, metrics: dict[str, str], seed: int, n_jobs: int, storage,
               run_id: str = "", deadline: float | None = None) -> None:
    """Run one study per joint model; fills ``plan.candidates``."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for model in plan.models:
        cls = get_learner_class(model.learner)
        name = f"{run_id}:{JOINT_DIR}/{model.id}" if run_id else f"{JOINT_DIR}/{model.id}"
        trials_dir = layout.trials_dir(run_dir, name)
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5))
        defaults = {k: v for k, v in cls.defaults.items() if v is not None and k not in model.params}
        if not study.trials and defaults and model.search and model.n_trials > 1:
            study.enqueue_trial(defaults, skip_if_exists=True)
        t0 = time.time()

        def objective(trial):
            params = {**(cls.search_space(trial, JOINT) if model.search else {}), **model.params}
            start = time.time()
            oof = joint_cross_val(plan, model, params, seed, threads_per_job(n_jobs), deadline)
            value = joint_objective(plan, metrics, oof)
            if not np.isfinite(value):
                raise optuna.TrialPruned()
            trials_dir.mkdir(parents=True, exist_ok=True)
            tmp = trials_dir / f".{trial.number}.npy.tmp"
            with open(tmp, "wb") as fh:
                np.save(fh, oof)
            os.replace(tmp, trials_dir / f"{trial.number}.npy")
            trial.set_user_attr("params", params)
            trial.set_user_attr("seconds", time.time() - start)
            log(f"  {name}: trial {trial.number} joint loss {value:.4f} in {time.time() - start:.1f} s")
            return value

        done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        left = model.n_trials - len(done)
        for _ in range(max(0, left)):
            if deadline is not None and time.time() >= deadline:
                log(f"  {name}: time budget reached; {len(study.trials)} trial(s) run")
                break
            study.optimize(objective, n_trials=1, catch=(ValueError, ArithmeticError, RuntimeError))
        complete = sorted((t for t in study.trials if t.state == TrialState.COMPLETE and t.value is not None),
                          key=lambda t: (t.value, t.number))
        best = []
        for t in complete:
            path = trials_dir / f"{t.number}.npy"
            if path.exists():
                best.append((t.number, float(t.value), dict(t.user_attrs["params"]), np.load(path, allow_pickle=False),
                             float(t.user_attrs.get("seconds", 0.0))))
            if len(best) >= recipe.top_trials:
                break
        plan.candidates[model.id] = best
        if best:
            log(f"  {model.id} (joint): best joint loss {best[0][1]:.4f} ({len(complete)} trials) in "
                f"{time.time() - t0:.1f} s")
        else:
            log(f"  {model.id} (joint): no complete trial - skipped")


def target_candidates(plan: JointPlan, name: str, metric: str) -> list[dict]:
    """Stacking candidates of target ``name`` from the joint studies (pipeline/target.py's candidate dicts)."""
    j, rows = plan.output(name), plan.rows[name]
    y = plan.Y[rows, j]
    out = []
    for model in plan.models:
        for number, _, params, oof, seconds in plan.candidates.get(model.id, []):
            col = oof[rows, j]
            out.append({"id": f"{model.id}#t{number}", "model": model, "trial": number, "params": params,
                        "oof": col, "cv": score(metric, y, col), "seconds": seconds, "joint": True})
    return out


# --------------------------------------------------------------------------- final fits
def fit_joint_member(plan: JointPlan, run_dir: Path, cand: dict, recipe, seed: int,
                     deadline: float | None = None) -> str:
    """Fit a joint candidate on all pooled molecules once (later targets reuse it); its folder, run-relative."""
    if cand["id"] in plan.fitted:
        return plan.fitted[cand["id"]]
    model = cand["model"]
    mdir = layout.joint_member_dir(run_dir, cand["id"])
    cls = get_learner_class(model.learner)
    Y_fit = plan.fit_targets()
    parts = [(f"fold{int(f)}", plan.folds != f) for f in np.unique(plan.folds)] if recipe.final == "folds" \
        else [("full", np.ones(len(plan.smiles), bool))]
    (mdir / layout.FINAL).unlink(missing_ok=True)
    for part, train in parts:
        m = cls(JOINT, seed=seed, n_threads=threads_per_job(1), target_tasks=plan.tasks, **cand["params"])
        with time_limit(deadline):
            m.fit(plan.smiles[train], Y_fit[train])
        tmp = mdir / f".{part}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        m.save(tmp)
        shutil.rmtree(mdir / part, ignore_errors=True)
        tmp.rename(mdir / part)
    write_json(mdir / layout.FINAL, {"candidate": cand["id"], "learner": model.learner, "targets": plan.targets,
                                     "params": cand["params"], "seed": seed})
    plan.fitted[cand["id"]] = str(mdir.relative_to(run_dir))
    return plan.fitted[cand["id"]]


def member_entry(plan: JointPlan, run_dir: Path, name: str, cand: dict, path: str, weight: float) -> dict:
    """The ``ensemble.json`` member of a joint candidate for target ``name``."""
    return {"id": cand["id"], "learner": cand["model"].learner, "features": list(cand["model"].features),
            "params": cand["params"], "weight": float(weight), "cv_score": cand["cv"], "path": path,
            "files": member_digests(run_dir / path), "output": plan.output(name), "joint_targets": plan.targets}


def read_plan_record(run_dir: Path) -> dict | None:
    path = run_dir / JOINT_DIR / layout.JOINT_PLAN
    return read_json(path) if path.is_file() else None


def write_plan_record(plan: JointPlan, run_dir: Path) -> None:
    write_json(run_dir / JOINT_DIR / layout.JOINT_PLAN, {
        "targets": plan.targets, "tasks": plan.tasks, "models": [m.id for m in plan.models],
        "n_molecules": int(len(plan.smiles)), "n_labels": int(np.isfinite(plan.Y).sum()),
        "fitted": plan.fitted})
