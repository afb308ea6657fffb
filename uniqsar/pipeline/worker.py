"""Distributed tuning: a worker on any machine joins a run through a shared Optuna storage.

``uniqsar fit ... --storage URL --out RUN`` writes ``RUN/run_spec.json``: the standardized
training data, CV folds, recipe, seed, metrics and target transforms — everything a trial
needs, so a worker needs neither the input file nor the coordinator's disk. A worker walks the
run's studies in order and contributes trials until each holds its recipe's trial count; the
coordinator counts everyone's trials, then stacks and refits. OOF predictions travel inside the
study (trial user attributes), so nothing is copied between machines; features come from the
worker's own content-keyed cache.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from uniqsar.io import layout
from uniqsar.io.artifacts import read_json, write_json
from uniqsar.util import log

SPEC_VERSION = 1


def write_run_spec(out: Path, recipe, seed: int, targets: dict, folds: dict, manifest: dict, transforms: dict,
                   featurizers: dict, run_id: str) -> Path:
    spec = {
        "spec_version": SPEC_VERSION, "run_id": run_id, "recipe": recipe.to_dict(), "seed": seed, "featurizers": featurizers,
        "targets": {
            name: {"task": d.task, "metric": manifest["targets"][name]["metric"], "transform": transforms[name],
                   "smiles": list(d.smiles), "y": [float(v) for v in d.y], "classes": d.classes,
                   "folds": None if folds[name] is None else [int(f) for f in folds[name]]}
            for name, d in targets.items()
        },
    }
    path = out / layout.RUN_SPEC
    write_json(path, spec)
    return path


def run_worker(spec_path, storage_url: str, n_jobs: int = 1, cache_dir=None) -> int:
    """Contribute trials to every study of a run; returns the number of studies visited."""
    from uniqsar.config import recipe_from_dict
    from uniqsar.featurize.cache import FeatureCache
    from uniqsar.featurize.matrix import FeatureStore
    from uniqsar.tune.study import storage_for

    if not storage_url:
        raise ValueError("a worker needs --storage (the URL the coordinator was started with)")
    spec = read_json(spec_path)
    if spec.get("spec_version") != SPEC_VERSION:
        raise ValueError(f"{spec_path}: run spec version {spec.get('spec_version')} is not supported")
    recipe = recipe_from_dict(spec["recipe"], name=spec["recipe"].get("name", "run"))
    store = FeatureStore(spec["featurizers"], FeatureCache(cache_dir), n_jobs=n_jobs)
    storage = storage_for(None, storage_url)
    worker_id = 1 + (os.getpid() % 997)  # distinct TPE seeds across worker processes
    scratch = Path(tempfile.mkdtemp(prefix="uniqsar-worker-"))
    try:
        visited = _visit_studies(spec, recipe, store, storage, storage_url, n_jobs, worker_id, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return visited


def _visit_studies(spec, recipe, store, storage, storage_url, n_jobs, worker_id, scratch) -> int:
    from uniqsar.data.dataset import TargetData
    from uniqsar.pipeline.target import TargetContext, study_spec
    from uniqsar.tune.study import create_study, run_trials

    visited = 0
    for name, t in spec["targets"].items():
        if t["folds"] is None:
            continue
        data = TargetData(name, t["task"], np.asarray(t["smiles"], dtype=object), np.asarray(t["y"], float),
                          t.get("classes"))
        folds = np.asarray(t["folds"])
        ctx = TargetContext(scratch, recipe, t["metric"], spec["seed"], n_jobs, store, storage_url,
                            transform=t["transform"], run_id=spec["run_id"])
        for model in recipe.models:
            sspec = study_spec(ctx, data, model, trials_dir=scratch / layout.TRIALS)
            create_study(sspec, storage)
            X = store.matrix(model.features, data.smiles)
            log(f"worker {worker_id}: study {sspec.name}")
            run_trials(sspec, storage, X, data.y, folds, worker=worker_id)
            visited += 1
    return visited
