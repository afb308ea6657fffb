"""Run uniqsar on the TDC ADMET benchmark group (22 tasks x 5 seeds) and score it officially.

    python benchmarks/tdc/run.py --tasks all --seeds 1 2 3 4 5 --preset maplight \
        --out benchmarks/tdc/results/maplight [--data-dir DIR] [--n-jobs N] [--keep-runs] \
        [--protocol train_val|train]

Protocol (see README.md): for each task and seed, uniqsar fits on the whole ``train_val.csv``
(``--protocol train_val``, default; its internal CV uses seed = the TDC seed) or on the seed's
official train part (``--protocol train``), predicts every row of ``test.csv`` in order and
scores it with ``uniqsar.data.tdc.evaluate``. The test set is never passed to ``fit``.
Writes ``OUT/<task>/seed<k>.json`` (skipped if present: the run is resumable) and, after every
task, ``OUT/summary.json`` and ``OUT/summary.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import report  # noqa: E402  (benchmarks/tdc/report.py)
from ablation import predict_without_elimination  # noqa: E402  (benchmarks/tdc/ablation.py)

from uniqsar import __version__  # noqa: E402
from uniqsar.data.dataset import standardize_column  # noqa: E402
from uniqsar.data.standardize import MODES  # noqa: E402
from uniqsar.data.tdc import ENV_VAR, TASKS, evaluate, load_task, resolve_data_dir, train_valid_split  # noqa: E402
from uniqsar.io.artifacts import read_json  # noqa: E402
from uniqsar.pipeline.fit import FitOptions, fit  # noqa: E402
from uniqsar.pipeline.predict import Run  # noqa: E402
from uniqsar.util import source_commit  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "tdc_admet_group"


def data_dir(arg: str | None) -> Path:
    """--data-dir, else $UNIQSAR_TDC_DIR, else ../shared/data/tdc_admet_group next to the repo."""
    if arg is None and not os.environ.get(ENV_VAR) and DEFAULT_DATA.is_dir():
        arg = str(DEFAULT_DATA)
    return resolve_data_dir(arg)


def target_transform(preset: str, task: str) -> str:
    """MapLight (and the maplight_cv diagnostic) log-scale exactly its 4 log tasks; uniqsar
    presets choose by themselves."""
    if Path(preset).stem in ("maplight", "maplight_cv"):
        return "log10p1" if TASKS[task].log_scale else "none"
    return "auto"


def git_commit() -> str | None:
    """The commit of the uniqsar code that produced a result ("+dirty": uncommitted changes in uniqsar/)."""
    return source_commit()


class LeakyPretraining(ValueError):
    """The preset uses a representation whose pretraining is not declared TDC-clean."""


def leaky_pretraining(preset: str) -> list[dict]:
    """The featurizers and learner inits of `preset` that are not declared TDC-clean: pretraining that may have
    seen TDC ADMET test molecules, or whose provenance is unknown (uniqsar/models/provenance.py)."""
    from uniqsar.config import load_recipe
    from uniqsar.models.provenance import leaky, recipe_representations, used_specs

    recipe = load_recipe(preset)
    reps = recipe_representations(recipe, used_specs(recipe), seed=1)
    return [{"representation": name, "key": r["key"], "weights": r["weights"], "sha256": r["sha256"],
             "note": r["provenance"].get("note")} for name, r in leaky(reps).items()]


def check_pretraining(preset: str, allow: bool) -> list[dict]:
    """The leaky representations of `preset` (recorded in every seed JSON); refuses them unless `allow`."""
    found = leaky_pretraining(preset)
    if found and not allow:
        what = "; ".join(f"{x['representation']} ({x['key']}, weights {x['weights']}): {x['note']}" for x in found)
        raise LeakyPretraining(f"preset {preset!r} uses representations not declared TDC-clean, so its TDC scores "
                               f"could be inflated by pretraining on test molecules: {what}. Refusing to run; pass "
                               f"--allow-leaky-pretraining to run anyway (every result is then marked).")
    return found


def progress(msg: str) -> None:
    print(f"[tdc {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def learner_evidence(leaderboard: Path) -> tuple[dict[str, float], dict[str, float]]:
    """From the run's leaderboard: the best cross-validated (OOF) score of each learner x feature set, and
    for each one the ensemble holds, the nested-CV score of the ensemble rebuilt without it (what it adds).
    The per-learner evidence for why an ensemble wins or loses; empty for runs without CV (maplight)."""
    if not leaderboard.is_file():
        return {}, {}
    lb = pd.read_csv(leaderboard)
    if not {"rank_in_study", "weight", "ensemble_cv_without_model"} <= set(lb.columns):
        return {}, {}  # no cross-validation in this run (maplight): nothing out-of-fold to report
    lb = lb[lb["candidate"] != "ENSEMBLE"]
    best = {f"{r.learner}__{r.features}": round(float(r.cv_score), 4)
            for r in lb[lb["rank_in_study"] == 1].itertuples()}
    used = lb[(lb["weight"] > 0) & lb["ensemble_cv_without_model"].notna()]
    without = {r.candidate: round(float(r.ensemble_cv_without_model), 4) for r in used.itertuples()}
    return best, without


def run_one(task: str, seed: int, args, root: Path) -> dict:
    info = TASKS[task]
    train_val, test = load_task(task, root)
    if args.protocol == "train":
        train_idx, _ = train_valid_split(train_val, seed)
        train = train_val.iloc[train_idx].reset_index(drop=True)
    else:
        train = train_val
    train = train[["Drug", "Y"]]
    transform = target_transform(args.preset, task)
    opts = FitOptions(targets=("Y",), smiles_col="Drug", task=info.task, preset=args.preset, seed=seed,
                      n_jobs=args.n_jobs, cache_dir=args.cache_dir, metric={"Y": info.metric},
                      target_transform=transform, standardize=args.standardize)
    if args.keep_runs:
        run_dir = Path(args.out) / "runs" / task / f"seed{seed}"
        if run_dir.exists():  # a previous attempt died before writing its JSON
            shutil.rmtree(run_dir)
        tmp_root = None
    else:
        tmp_root = Path(tempfile.mkdtemp(prefix=f"uniqsar_tdc_{task}_s{seed}_"))
        run_dir = tmp_root / "run"
    t0 = time.time()
    try:
        fit(train, run_dir, opts)  # the test frame is never passed to fit
        t_fit = time.time() - t0
        run = Run(run_dir, cache_dir=args.cache_dir, n_jobs=args.n_jobs)
        # Predict every test row in order; test is not deduplicated against train.
        std = standardize_column(test, "Drug", n_jobs=args.n_jobs, mode=run.standardize)
        ok = (std["error"] == "").to_numpy()
        canonical = std["canonical"][ok].tolist()
        raw = run.predict_canonical(canonical)["Y"] if canonical else np.zeros(0)
        pred = np.full(len(test), np.nan)
        pred[ok] = raw
        # Fallback for molecules uniqsar cannot standardize (or NaN predictions): the training
        # mean (regression) or positive rate (binary) on the rows fitted.
        fallback_value = float(train["Y"].astype(float).mean())
        bad = ~np.isfinite(pred)
        pred[bad] = fallback_value
        seconds = time.time() - t0
        metrics = read_json(run_dir / "metrics.json")["Y"]
        manifest = read_json(run_dir / "manifest.json")
        data_rep = read_json(run_dir / "data_report.json")
        train_canon = set(pd.read_csv(run_dir / "oof.csv")["smiles"])  # canonical SMILES fitted
        n_overlap = int(sum(s in train_canon for s in canonical))
        learner_cv, ensemble_cv_without = learner_evidence(run_dir / "leaderboard.csv")
        # the same run's ensemble before backward elimination, on the same test rows (None: nothing dropped)
        before = predict_without_elimination(run_dir, canonical, seed, args.cache_dir) if canonical else None
        if before is not None:
            pred_before = np.full(len(test), fallback_value)
            pred_before[ok] = np.where(np.isfinite(before), before, fallback_value)
    finally:
        if tmp_root is not None:
            shutil.rmtree(tmp_root, ignore_errors=True)
    score = evaluate(task, test["Y"].to_numpy(), pred)
    score_before = evaluate(task, test["Y"].to_numpy(), pred_before) if before is not None else None
    return {
        "task": task, "seed": seed, "preset": args.preset, "metric": info.metric, "score": score,
        "seconds": round(seconds, 2), "seconds_fit": round(t_fit, 2),
        "protocol": args.protocol, "standardize": run.standardize,
        "target_transform": manifest["targets"]["Y"].get("transform", transform),
        "n_train_rows": int(len(train)), "n_train": int(metrics.get("n_train", 0)),
        "n_invalid_train": int(data_rep.get("n_invalid", 0)),
        "n_test": int(len(test)), "n_fallback": int(bad.sum()), "fallback_value": fallback_value,
        "n_test_canonical_in_train": n_overlap,
        "cv_score": metrics.get("cv_score_ensemble"), "cv_score_best_single": metrics.get("cv_score_best_single"),
        "best_single": metrics.get("best_single"), "learner_cv": learner_cv,
        "ensemble_cv_without": ensemble_cv_without, "dropped_models": metrics.get("dropped_models", []),
        "score_without_elimination": score_before,
        "uniqsar_version": __version__, "git_commit": git_commit(),
        "command": " ".join(["python", *sys.argv]),
        "machine": {"cpus": sorted(os.sched_getaffinity(0)), "nice": os.nice(0), "n_jobs": args.n_jobs},
        "versions": manifest.get("versions"),
        "run_dir": str(run_dir) if args.keep_runs else None,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["all"], help="'all' or task names (leaderboard names)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--preset", default="maplight", help="fast | default | best | maplight | path to a recipe TOML")
    ap.add_argument("--data-dir", default=None, help=f"TDC admet_group dir (default: ${ENV_VAR}, else {DEFAULT_DATA})")
    ap.add_argument("--out", required=True, help="result dir: <task>/seed<k>.json, summary.json, summary.md")
    ap.add_argument("--n-jobs", type=int, default=1, help="uniqsar n_jobs (parallel tuning workers)")
    ap.add_argument("--protocol", choices=["train_val", "train"], default="train_val",
                    help="fit on all of train_val (default) or on the seed's official train part")
    ap.add_argument("--cache-dir", default=None, help="feature cache (default: uniqsar's; shared across seeds)")
    ap.add_argument("--standardize", choices=MODES, default=None,
                    help="override the preset's [data] standardize (canonical: salts and charges kept)")
    ap.add_argument("--keep-runs", action="store_true", help="keep run dirs under OUT/runs/<task>/seed<k>")
    ap.add_argument("--allow-leaky-pretraining", action="store_true",
                    help="run a preset whose pretrained representations are not declared TDC-clean; every seed "
                         "JSON lists them under leaky_pretraining and report.py marks their rows with a dagger")
    args = ap.parse_args(argv)
    try:
        args.leaky_pretraining = check_pretraining(args.preset, args.allow_leaky_pretraining)
    except ValueError as exc:  # a refused preset (LeakyPretraining) or an unreadable one: one line, no traceback
        print(f"run.py: error: {exc}", file=sys.stderr)
        return 2
    if args.leaky_pretraining:
        progress("WARNING: --allow-leaky-pretraining: results are marked; not TDC-clean: "
                 + ", ".join(x["representation"] for x in args.leaky_pretraining))

    tasks = list(TASKS) if [t.lower() for t in args.tasks] == ["all"] else [t.lower() for t in args.tasks]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        ap.error(f"unknown tasks {unknown}; known: {', '.join(TASKS)}")
    root = data_dir(args.data_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress(f"data {root}; preset {args.preset}; protocol {args.protocol}; tasks {len(tasks)}; seeds {args.seeds}")
    failures = 0
    for task in tasks:
        (out / task).mkdir(exist_ok=True)
        for seed in args.seeds:
            path = out / task / f"seed{seed}.json"
            if path.exists():
                progress(f"{task} seed {seed}: exists, skipped")
                continue
            try:
                rec = run_one(task, seed, args, root)
                rec["leaky_pretraining"] = args.leaky_pretraining  # non-empty: not comparable to clean entries
            except Exception as exc:  # keep going; the missing JSON makes a rerun retry it
                failures += 1
                progress(f"{task} seed {seed}: FAILED {type(exc).__name__}: {exc}")
                continue
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(rec, indent=2) + "\n")
            os.replace(tmp, path)
            cv = rec["cv_score"]
            progress(f"{task} seed {seed}: {rec['metric']} {rec['score']:.3f} in {rec['seconds']:.1f} s"
                     + (f" (cv {cv:.3f})" if cv is not None else "")
                     + (f", {rec['n_fallback']} fallback" if rec["n_fallback"] else ""))
        summary = report.write_summary(out)
        if task in summary:
            s = summary[task]
            progress(f"{task}: {s['mean']:.3f} ± {s['std']:.3f} over {s['n_seeds']} seeds")
    summary = report.write_summary(out)
    if Path(args.preset).stem == "maplight" and summary:
        (out / "vs_maplight.md").write_text(report.bar_markdown(summary, "maplight"))
    progress(f"done; summary in {out / 'summary.md'}" + (f"; {failures} failures" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
