"""The fit orchestrator: data -> per-target tuning/stacking -> a complete run directory."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.config import dump_toml
from uniqsar.data import transform as target_transform
from uniqsar.data.dataset import prepare, read_table
from uniqsar.featurize.cache import FeatureCache
from uniqsar.featurize.matrix import FeatureStore
from uniqsar.io import layout
from uniqsar.io.artifacts import FORMAT_VERSION, package_versions, read_json, write_json
from uniqsar.io.verify import weights_digests
from uniqsar.metrics import get_metric
from uniqsar.models.provenance import recipe_representations
from uniqsar.pipeline.budget import Budget, plan_budget
from uniqsar.pipeline.joint import plan_joint
from uniqsar.pipeline.options import check_class_counts, resolve_metrics, resolve_recipe, target_metrics
from uniqsar.pipeline.rundir import continue_or_restart, mark_failed, prepare_out
from uniqsar.pipeline.target import TargetContext, fit_target, target_folds
from uniqsar.pipeline.worker import write_run_spec
from uniqsar.uncertainty.calibration import LEVELS, calibrate_target
from uniqsar.util import log, n_cores


@dataclass(frozen=True)
class FitOptions:
    targets: tuple[str, ...]
    smiles_col: str | None = None
    task: str = "auto"
    preset: str = "default"  # preset name or path to a recipe TOML
    seed: int = 1
    n_jobs: int = 1
    time_budget: float | None = None  # seconds for the whole fit
    cache_dir: str | None = None
    use_cache: bool = True
    learners: tuple[str, ...] = ()  # these learners only (one the preset lacks comes from `best`: options.py)
    metric: dict | str = field(default_factory=dict)  # target -> metric name or alias (a str: every target)
    storage: str | None = None  # Optuna storage URL; default: journal file in the run dir
    resume: bool = False
    target_transform: str = "auto"  # none | log10p1 | auto (regression only)
    standardize: str | None = None  # full | canonical; None: the recipe's ([data] standardize)
    drop_conflicting: bool | None = None  # None: the recipe's ([data] drop_conflicting)
    joint_targets: bool | None = None  # None: the recipe's ([data] joint_targets; pipeline/joint.py)


def _fingerprint(ds, recipe, options: FitOptions) -> str:
    """Identity of what a run computes: training data, recipe, seed and the options that change
    results. A resumed run must match it."""
    h = hashlib.sha256()
    for name, t in ds.targets.items():
        h.update(f"{name}|{t.task}|".encode())
        h.update("\n".join(t.smiles).encode())
        h.update(np.ascontiguousarray(t.y).tobytes())
    h.update(json.dumps([recipe.to_dict(), options.seed, options.metric, options.target_transform],
                        sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _featurize(store: FeatureStore, targets: dict, aliases: list[str], budget: Budget) -> None:
    """Compute every feature matrix before tuning, so the time budget is split over what is left."""
    t0 = time.time()
    for data in targets.values():
        for alias in aliases:
            store.get(alias, data.smiles)
    seconds = time.time() - t0
    if not budget.limited:
        return
    log(f"featurization took {seconds:.1f} s; {budget.left():.0f} s of the time budget left")
    if seconds > 0.5 * budget.seconds:
        log(f"WARNING: featurization used {seconds / budget.seconds:.0%} of the {budget.seconds:.0f} s time budget; "
            "little or no time is left to tune learners (features are cached: a rerun with the same cache skips this)")


def fit(data, out, options: FitOptions) -> Path:
    """Run the whole AutoML on ``data`` (path or DataFrame) and write the run to ``out``. A fit that stops early
    marks ``out`` failed (``pipeline/rundir.py``), so the same call can be repeated."""
    budget = Budget.starting_now(options.time_budget)
    out = Path(out)
    recipe = resolve_recipe(options.preset, options.learners, options.standardize, options.drop_conflicting,
                            options.joint_targets)
    given = resolve_metrics(options.metric, options.targets)
    if options.task != "auto":  # a metric that does not fit the task fails before any data is read
        target_metrics(given, {t: options.task for t in options.targets})
    options = replace(options, metric={t: get_metric(name).name for t, name in given.items()})
    n_jobs = n_cores() if options.n_jobs in (0, -1) else max(1, options.n_jobs)
    previous = prepare_out(out, options.resume)
    try:
        return _fit_in(data, out, options, recipe, n_jobs, previous, budget)
    except BaseException as exc:
        mark_failed(out, exc)
        raise


def _fit_in(data, out: Path, options: FitOptions, recipe, n_jobs: int, previous: dict | None,
            budget: Budget) -> Path:
    """The fit once ``out`` is ready (``previous``: the manifest of a failed attempt found there, or None)."""
    df = read_table(data)
    log(f"read {len(df)} rows; standardizing molecules ({recipe.standardize})")
    ds = prepare(df, list(options.targets), options.smiles_col, options.task, n_jobs=n_jobs,
                 standardize=recipe.standardize, drop_conflicting=recipe.drop_conflicting)
    rep = ds.report
    log(f"{rep['n_valid']} valid molecules, {rep['n_invalid']} invalid"
        + (f" (e.g. row {rep['invalid_examples'][0]['row']}: {rep['invalid_examples'][0]['reason']})" if rep["n_invalid"] else ""))
    for name, t in rep["targets"].items():
        if t["n_excluded"]:
            log(f"target {name!r}: {t['n_excluded']} cell(s) left out ("
                + ", ".join(f"{k} {r}" for r, k in t["excluded_by_reason"].items()) + "; listed in data_report.json)")
        if t["n_duplicates_merged"] or t["n_conflicting"]:
            log(f"target {name!r}: merged {t['n_duplicates_merged']} duplicate rows, {t['n_conflicting']} molecules with "
                f"conflicting labels" + (" (left out: drop_conflicting)" if t["conflicts_dropped"] else ""))
    target_metric = target_metrics(options.metric, {n: d.task for n, d in ds.targets.items()})  # before any featurization
    check_class_counts(ds.targets, recipe.n_folds)
    fingerprint = _fingerprint(ds, recipe, options)
    if continue_or_restart(out, previous, fingerprint):
        options = replace(options, resume=True)
    if options.resume and (out / layout.MANIFEST).exists():
        old = read_json(out / layout.MANIFEST).get("fingerprint")
        if old != fingerprint:
            raise ValueError(f"cannot resume {out}: it was started with different data, targets, recipe or seed")
    write_json(out / layout.DATA_REPORT, rep)
    (out / layout.RECIPE).write_text(f"# resolved recipe of this run (preset {options.preset!r})\n" + dump_toml(recipe.to_dict()))

    used = sorted({a for m in recipe.models for a in m.features})
    specs = {a: {"key": recipe.featurizer(a).key, "params": recipe.featurizer(a).params} for a in used}
    store = FeatureStore(specs, FeatureCache(options.cache_dir, enabled=options.use_cache), n_jobs=n_jobs)
    plan = None
    if budget.limited and recipe.n_folds:  # a fallback first; featurizers that cannot pay off skipped
        recipe, specs, plan = plan_budget(recipe, specs, store, ds.targets, budget, n_jobs)
        used = sorted(specs)

    manifest = {
        "format_version": FORMAT_VERSION, "status": "running", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "versions": package_versions(), "preset": options.preset, "recipe": recipe.name, "seed": options.seed,
        "fingerprint": fingerprint, "standardize": recipe.standardize, "smiles_col": ds.smiles_col,
        "n_jobs": n_jobs, "time_budget_s": options.time_budget, **({"budget_plan": plan} if plan else {}),
        "targets": {n: {"task": d.task, "metric": target_metric[n],
                        "dir": layout.target_dir_name(n), "classes": d.classes} for n, d in ds.targets.items()},
    }
    representations = recipe_representations(recipe, specs, options.seed)  # weights identity + provenance of each
    if representations:
        manifest["representations"] = representations
    write_json(out / layout.MANIFEST, manifest)

    transforms = {n: target_transform.choose(options.target_transform, d.y, d.task) for n, d in ds.targets.items()}
    folds = {n: target_folds(recipe, d, options.seed) if recipe.n_folds else None for n, d in ds.targets.items()}
    joint = plan_joint(recipe, ds.targets, options.seed)
    if joint is not None:  # joint targets share folds of their pooled molecules (pipeline/joint.py)
        joint.transforms = {n: transforms[n] for n in joint.targets}
        folds.update({n: joint.target_folds(n) for n in joint.targets})
        manifest["joint_targets"] = {"targets": joint.targets, "models": [m.id for m in joint.models]}
    write_run_spec(out, recipe, options.seed, ds.targets, folds, manifest, transforms, specs, fingerprint)

    _featurize(store, ds.targets, used, budget)
    if joint is not None:
        _tune_joint(joint, out, recipe, manifest, options, n_jobs, fingerprint, budget)
    rows, metrics, timings = [], {}, {}
    n_targets = len(ds.targets)
    for i, (name, data_t) in enumerate(ds.targets.items()):
        t0 = time.time()
        tune_deadline, final_deadline = budget.target_deadlines(i, n_targets)
        transform = transforms[name]
        manifest["targets"][name]["transform"] = transform
        recipe_t = recipe.for_size(len(data_t.y))
        for m in recipe.models:
            if m not in recipe_t.models:
                log(f"target {name!r}: {m.id} left out ({len(data_t.y)} molecules > its max_molecules {m.max_molecules})")
        ctx = TargetContext(out, recipe_t, manifest["targets"][name]["metric"], options.seed, n_jobs, store,
                            options.storage, tune_deadline, final_deadline, transform, options.resume,
                            fingerprint, joint)
        res = fit_target(ctx, data_t, folds[name])
        rows += res["rows"]
        ens = res["ensemble"]
        metrics[name] = {"metric": ens["metric"], "cv_score_ensemble": ens["cv_score_nested"],
                         "cv_score_best_single": ens["best_single"]["cv_score"], "best_single": ens["best_single"]["id"],
                         "dropped_models": ens.get("dropped_models", []), "n_train": int(len(data_t.y))}
        cal = calibrate_target(out / manifest["targets"][name]["dir"], ens)
        if cal.get("available"):
            metrics[name]["oof_coverage"] = {str(c): cal["oof_coverage"][str(c)]["coverage"] for c in LEVELS}
            metrics[name]["domain_threshold"] = cal["domain"]["threshold"]
        timings[name] = round(time.time() - t0, 2)

    board = pd.DataFrame(rows)
    board.to_csv(out / layout.LEADERBOARD, index=False)
    oofs = [pd.read_csv(out / m["dir"] / layout.OOF).assign(target=n)[["target", "smiles", "y", "fold", "ensemble_nested"]]
            for n, m in manifest["targets"].items()]
    pd.concat(oofs).to_csv(out / layout.OOF, index=False)
    write_json(out / layout.METRICS, metrics)
    write_json(out / layout.FEATURIZERS, {a: {**s, "dim": store.dims.get(a), **store.notes.get(a, {})}
                                          for a, s in specs.items()})
    manifest.update(status="complete", featurizers=specs, weights_sha256=weights_digests(store),
                    timings={"total_s": round(time.time() - budget.start, 2), "per_target_s": timings})
    write_json(out / layout.MANIFEST, manifest)
    if budget.exhausted():  # the report is a view: never worth overrunning for
        log(f"time budget: report.html not written (no time left); `uniqsar report {out}` writes it")
    else:
        _write_report(out)
    log(f"done in {time.time() - budget.start:.1f} s -> {out}")
    return out


def _tune_joint(joint, out: Path, recipe, manifest: dict, options: FitOptions, n_jobs: int, run_id: str,
                budget: Budget) -> None:
    """The joint studies, before the per-target ones; under a time budget they get their share of the tuning time
    (their trials against all trials of the run)."""
    from uniqsar.pipeline.joint import tune_joint, write_plan_record
    from uniqsar.tune.study import storage_for

    n_joint = sum(m.n_trials for m in joint.models)
    n_all = n_joint + sum(m.n_trials for m in recipe.models if m not in joint.models) * len(manifest["targets"])
    joint_deadline = budget.joint_deadline(n_joint, n_all)
    metrics = {n: manifest["targets"][n]["metric"] for n in joint.targets}
    tune_joint(joint, out, recipe, metrics, options.seed, n_jobs, storage_for(out, options.storage),
               run_id if options.storage else "", joint_deadline)
    write_plan_record(joint, out)


def _write_report(out: Path) -> None:
    """report.html of the finished run; a failure here is logged, the run directory stays complete."""
    from uniqsar.report.html import write_report

    try:
        write_report(out)
    except Exception as exc:  # noqa: BLE001 - the report is a view of the run, never a reason to lose it
        log(f"WARNING: report.html not written ({type(exc).__name__}: {exc}); `uniqsar report {out}` retries")
