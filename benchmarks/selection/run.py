"""Fit the selection superset once per TDC task and seed, keeping what every candidate design needs.

    python benchmarks/selection/run.py --tasks hia_hou herg ... --seeds 1 2 --out benchmarks/selection/results/raw \
        [--recipe benchmarks/selection/superset.toml]

For each task and seed: the seed's official TDC **train** split is fitted with ``superset.toml`` (the TDC
**valid** split is never seen by fit; the test set is never read). Every finished trial's out-of-fold
predictions on train and its prediction on the valid split (the mean of its five fold models, computed while
the trial runs: no extra fits) are written to ``OUT/<task>/seed<k>.npz`` with the folds, the targets and the
trial states. ``simulate.py`` scores candidate ``default`` designs from these files without refitting. The
superset's final refits are skipped (no design is scored by them). Resumable: a finished task-seed is skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

import uniqsar.pipeline.target as target_mod  # noqa: E402
import uniqsar.tune.folds as folds_mod  # noqa: E402
import uniqsar.tune.study as study_mod  # noqa: E402
from uniqsar.util import source_commit  # noqa: E402
from uniqsar.data import transform as target_transform  # noqa: E402
from uniqsar.data.dataset import standardize_column  # noqa: E402
from uniqsar.data.tdc import TASKS, load_task, resolve_data_dir, train_valid_split  # noqa: E402
from uniqsar.featurize.matrix import FeatureStore  # noqa: E402
from uniqsar.pipeline.fit import FitOptions, fit  # noqa: E402
from uniqsar.registry import get_learner_class  # noqa: E402
from uniqsar.util import time_limit  # noqa: E402

SUPERSET = HERE / "superset.toml"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "tdc_admet_group"


class _Capture:
    """Benchmark-only hooks: the valid rows' matrix beside each training matrix, and each trial's valid
    predictions beside its OOF file."""

    valid_smiles: list[str] = []
    n_train = 0
    matrices: dict[int, np.ndarray] = {}
    valid: dict[str, list] = {}  # parameter set -> its fold models' valid predictions (fitted scale)
    by_oof: dict[int, np.ndarray] = {}  # id(OOF array) -> the trial's valid predictions
    folds0: np.ndarray | None = None  # the target's CV folds: valid predictions are kept for these only


_orig_matrix = FeatureStore.matrix
_orig_save = study_mod.atomic_save_npy
_orig_batch_oof = study_mod.batch_oof


def _matrix(self, aliases, smiles):
    X = _orig_matrix(self, aliases, smiles)
    smiles = list(smiles)
    if aliases and len(smiles) == _Capture.n_train and smiles != _Capture.valid_smiles:
        _Capture.matrices[id(X)] = (X, _orig_matrix(self, aliases, _Capture.valid_smiles))
    return X


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _fit_fold(learner_key, task, params, seed, n_threads, X, y_fit, test, deadline):
    """``uniqsar.tune.folds.fit_fold`` that also predicts the valid rows with the fold model (kept per
    parameter set: equal parameters give equal models)."""
    cls = get_learner_class(learner_key)
    model = cls(task, seed=seed, n_threads=n_threads, **params)
    with time_limit(deadline):
        model.fit(X[~test], y_fit[~test])
    _, Xv = _Capture.matrices[id(X)]
    _Capture.valid.setdefault(_key(params), []).append(model.predict(Xv))
    return model.predict(X[test])


def _batch_oof(learner_key, task, params_list, X, y, folds, seed, n_threads, pool, **kw):
    """``uniqsar.tune.study.batch_oof`` (folds in this process: one process per core) remembering each
    complete set's valid predictions (mean over its fold models, original scale) by its OOF array."""
    assert pool.n_jobs == 1, "the selection benchmark fits folds in this process"
    _Capture.valid = {}
    oofs, status, seconds = _orig_batch_oof(learner_key, task, params_list, X, y, folds, seed, n_threads, pool, **kw)
    if _Capture.folds0 is not None and not np.array_equal(folds, _Capture.folds0):
        return oofs, status, seconds  # an extra partition of [cv] repeats: scored by the study, not kept
    extra = {"n_classes": kw["n_classes"]} if task == "multiclass" else {}
    for oof, st, params in zip(oofs, status, params_list):
        if st is None:
            preds = _Capture.valid[_key({**extra, **params})]
            valid = np.mean([target_transform.inverse(kw.get("transform", "none"), v) for v in preds], axis=0)
            _Capture.by_oof[id(oof)] = valid
    return oofs, status, seconds


def _save(path, arr):
    _orig_save(path, arr)
    valid = _Capture.by_oof.pop(id(arr), None)
    if valid is not None:
        _orig_save(Path(str(path)[:-4] + ".valid.npy"), valid)


def install_hooks() -> None:
    FeatureStore.matrix = _matrix
    folds_mod.fit_fold = _fit_fold
    study_mod.batch_oof = _batch_oof
    study_mod.atomic_save_npy = _save
    # designs are scored on the valid split, not by refits: the members' folders stay empty
    target_mod._fit_finals = lambda ctx, data, todo, folds: [mdir.mkdir(parents=True, exist_ok=True) for _, mdir in todo]
    target_mod.member_digests = lambda mdir: {}


def git_commit() -> str | None:
    """The commit of the uniqsar code that produced a result ("+dirty": uncommitted changes in uniqsar/)."""
    return source_commit()


def collect(run_dir: Path, study_names: list[str]) -> dict:
    """Per study: trial numbers, states, values, seconds, OOF and valid predictions of the complete trials."""
    import optuna

    storage = study_mod.storage_for(run_dir)
    out = {}
    for name in study_names:
        study = optuna.load_study(study_name=name, storage=storage)
        rows = []
        for t in study.trials:
            f = run_dir / "trials" / name / f"{t.number}.npy"
            complete = t.state.name == "COMPLETE" and f.is_file()
            rows.append({"number": t.number, "state": t.state.name, "value": t.value if complete else None,
                         "seconds": t.user_attrs.get("seconds"),
                         "oof": np.load(f) if complete else None,
                         "valid": np.load(str(f)[:-4] + ".valid.npy") if complete else None})
        out[name.split("/", 1)[1]] = rows
    return out


def run_one(task: str, seed: int, root: Path, out: Path, cache_dir: str | None, recipe_path: Path = SUPERSET) -> None:
    info = TASKS[task]
    train_val, _ = load_task(task, root)  # the test frame is discarded unread
    tr, va = train_valid_split(train_val, seed)
    train = train_val.iloc[tr].reset_index(drop=True)[["Drug", "Y"]]
    valid = train_val.iloc[va].reset_index(drop=True)[["Drug", "Y"]]
    std = standardize_column(valid, "Drug", n_jobs=1, mode="canonical")
    ok = (std["error"] == "").to_numpy()
    _Capture.valid_smiles = std["canonical"][ok].tolist()
    y_valid = valid["Y"].to_numpy(float)[ok]
    run_dir = Path(tempfile.mkdtemp(prefix=f"uniqsar_sel_{task}_s{seed}_")) / "run"
    opts = FitOptions(targets=("Y",), smiles_col="Drug", task=info.task, preset=str(recipe_path), seed=seed,
                      n_jobs=1, cache_dir=cache_dir, metric={"Y": info.metric}, target_transform="auto")
    t0 = time.time()
    import pandas as pd

    # fit() standardizes train itself; the matrix hook recognises the training matrices by their row count
    _Capture.n_train = -1
    orig_fit_target = target_mod.fit_target

    def fit_target(ctx, data, folds):
        _Capture.n_train = len(data.smiles)
        _Capture.folds0 = folds
        return orig_fit_target(ctx, data, folds)

    target_mod.fit_target = fit_target
    import uniqsar.pipeline.fit as fit_mod

    fit_mod.fit_target = fit_target
    fit(train, run_dir, opts)
    seconds = time.time() - t0
    oof_frame = pd.read_csv(run_dir / "targets" / "Y" / "oof.csv")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    from uniqsar.config import load_recipe

    recipe = load_recipe(str(recipe_path))
    studies = collect(run_dir, [f"Y/{m.id}" for m in recipe.models])
    arrays, meta = {}, {"task": task, "seed": seed, "metric": info.metric, "task_type": info.task,
                        "seconds": round(seconds, 1), "git_commit": git_commit(),
                        "command": " ".join([Path(sys.executable).name, *sys.argv]),
                        "transform": manifest["targets"]["Y"].get("transform"),
                        "n_train": int(len(oof_frame)), "n_valid": int(ok.sum()), "studies": {}}
    arrays["y"] = oof_frame["y"].to_numpy(float)
    arrays["folds"] = oof_frame["fold"].to_numpy(int)
    arrays["y_valid"] = y_valid
    for model_id, rows in studies.items():
        meta["studies"][model_id] = [{k: r[k] for k in ("number", "state", "value", "seconds")} for r in rows]
        for r in rows:
            if r["oof"] is not None:
                arrays[f"oof|{model_id}|{r['number']}"] = r["oof"].astype(np.float32)
                arrays[f"valid|{model_id}|{r['number']}"] = r["valid"].astype(np.float32)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path = out / task / f"seed{seed}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    import shutil

    shutil.rmtree(run_dir.parent, ignore_errors=True)
    n_kept = sum(k.startswith("oof|") for k in arrays)
    print(f"[sel {time.strftime('%H:%M:%S')}] {task} seed {seed}: {n_kept} trials kept in {seconds:.0f} s",
          flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--recipe", default=str(SUPERSET), help="the recipe fitted (default: superset.toml)")
    args = ap.parse_args(argv)
    root = resolve_data_dir(args.data_dir or (str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None))
    install_hooks()
    out = Path(args.out)
    for seed in args.seeds:
        for task in args.tasks:
            if (out / task / f"seed{seed}.npz").is_file():
                continue
            print(f"[sel {time.strftime('%H:%M:%S')}] {task} seed {seed}: fitting", flush=True)
            run_one(task, seed, root, out, args.cache_dir, Path(args.recipe))
    return 0


if __name__ == "__main__":
    sys.exit(main())
