"""Parallel tuning on one machine (issue 7), two measurements on an otherwise idle machine:

1. wall time of `uniqsar fit --preset default` on ~5,000 molecules with `--n-jobs 1` vs `--n-jobs 2`
   (the ratio). The feature cache is warmed first by a fit of the same featurizers with one cheap
   model, so both timed runs do the same work (tuning, stacking, refit); the featurization time is
   reported separately (cold with the default fresh cache; near zero with an already warm `--cache-dir`).
2. trial throughput of one study: one process (1 LightGBM thread) vs a coordinator + one `uniqsar
   worker` process (1 thread each) sharing a journal storage: trials per minute and trials per process.

Run:  python benchmarks/parallel/throughput.py [--task ld50_zhu --rows 5000 --preset default]
          [--trial-scale 0.25] [--skip-preset] [--throughput-trials 12] [--cache-dir DIR]
Writes benchmarks/parallel/results/throughput.json (and prints it); throughput_quarter_trials.json is a
--trial-scale 0.25 run, archive/throughput_before_lightgbm_thread_fix.json the same before one LightGBM thread per fit.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from uniqsar.config import dump_toml, load_recipe  # noqa: E402

THROUGHPUT_RECIPE = """
name = "throughput"
[cv]
n_folds = 5
[featurizers]
ecfp = {{ key = "morgan_count", radius = 2, n_bits = 1024 }}
desc = {{ key = "rdkit_desc" }}
[[models]]
learner = "lightgbm"
features = ["ecfp", "desc"]
n_trials = {trials}
params = {{ n_estimators = 300 }}
[tuning]
pruning = false
"""


def _fit(csv, recipe, out, *extra, env):
    cmd = [sys.executable, "-m", "uniqsar.cli", "-q", "fit", str(csv), "--target", "Y", "--smiles-col", "Drug",
           "--preset", str(recipe), "--seed", "1", "--out", str(out), *extra]
    return subprocess.Popen(cmd, env=env)


def _timed(csv, recipe, out, *extra, env) -> float:
    t0 = time.time()
    rc = _fit(csv, recipe, out, *extra, env=env).wait()
    if rc != 0:
        raise SystemExit(f"fit {out.name} failed with exit code {rc}")
    return round(time.time() - t0, 1)


def _scaled_recipe(preset: str, scale: float, path: Path) -> str:
    """The preset itself (scale 1), or the same models and featurizers with scale x its trial counts."""
    if scale == 1.0:
        return preset
    r = load_recipe(preset).scaled_trials(scale)
    d = r.to_dict()
    d["name"] = f"{r.name}_x{scale:g}"
    path.write_text(dump_toml(d))
    return str(path)


def _warm_recipe(preset: str, path: Path) -> Path:
    """The preset's featurizers, one single-trial linear model over all of them: featurizes everything."""
    d = load_recipe(preset).to_dict()
    aliases = sorted(d["featurizers"])
    d.update(name="warm_cache", models=[{"learner": "linear", "features": aliases, "n_trials": 1}])
    path.write_text(dump_toml(d))
    return path


def trial_seconds(run_dir: Path) -> dict:
    """Per study of a finished run: complete trials and their mean seconds (5 CV folds each)."""
    backend = optuna.storages.journal.JournalFileBackend(str(run_dir / "optuna.journal"))
    storage = optuna.storages.JournalStorage(backend)
    out = {}
    for name in optuna.get_all_study_names(storage):
        done = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.state.name == "COMPLETE"]
        out[name] = {"complete": len(done),
                     "mean_trial_seconds": round(sum(t.user_attrs["seconds"] for t in done) / max(1, len(done)), 1)}
    return out


def preset_wall_time(a, tmp: Path, env: dict) -> dict:
    src = ROOT.parent / "shared" / "data" / "tdc_admet_group" / a.task / "train_val.csv"
    csv = tmp / "data.csv"
    pd.read_csv(src).sample(n=min(a.rows, sum(1 for _ in open(src)) - 1), random_state=0).to_csv(csv, index=False)
    preset = _scaled_recipe(a.preset, a.trial_scale, tmp / "preset.toml")
    res = {"task": a.task, "rows": a.rows, "preset": a.preset, "trial_scale": a.trial_scale,
           "trials": {f"{m.learner}:{'+'.join(m.features)}": m.n_trials for m in load_recipe(preset).models}}
    res["featurization_fit_seconds"] = _timed(csv, _warm_recipe(a.preset, tmp / "warm.toml"), tmp / "warm",
                                                   "--n-jobs", "2", env=env)
    for n_jobs in (1, 2):
        res[f"fit_seconds_n_jobs_{n_jobs}"] = _timed(csv, preset, tmp / f"jobs{n_jobs}", "--n-jobs", str(n_jobs),
                                                     env=env)
        metrics = json.loads((tmp / f"jobs{n_jobs}" / "metrics.json").read_text())
        res[f"ensemble_cv_n_jobs_{n_jobs}"] = {t: m["cv_score_ensemble"] for t, m in metrics.items()}
        res[f"trials_n_jobs_{n_jobs}"] = trial_seconds(tmp / f"jobs{n_jobs}")
    res["speedup_n_jobs_2"] = round(res["fit_seconds_n_jobs_1"] / res["fit_seconds_n_jobs_2"], 2)
    return res


def worker_throughput(a, tmp: Path, env: dict) -> dict:
    src = ROOT.parent / "shared" / "data" / "tdc_admet_group" / "lipophilicity_astrazeneca" / "train_val.csv"
    csv = tmp / "tp.csv"
    pd.read_csv(src).head(2000).to_csv(csv, index=False)
    recipe = tmp / "tp.toml"
    recipe.write_text(THROUGHPUT_RECIPE.format(trials=a.throughput_trials))
    one = {**env, "OMP_NUM_THREADS": "1"}
    _timed(csv, recipe, tmp / "tp_warm", "--learners", "lightgbm", env=one)  # featurize once
    res = {"task": "lipophilicity_astrazeneca", "rows": 2000, "trials": a.throughput_trials,
           "lightgbm_threads_per_process": 1}
    runs = {}
    for name, n_workers in (("one_process", 0), ("coordinator_plus_worker", 1)):
        journal = tmp / f"{name}.journal"
        url = f"journal://{journal}"
        out = tmp / name
        t0 = time.time()
        coord = _fit(csv, recipe, out, "--storage", url, "--n-jobs", "1", env=one)
        workers = []
        if n_workers:
            spec = out / "run_spec.json"
            while not spec.exists() and coord.poll() is None:
                time.sleep(0.2)
            workers = [subprocess.Popen([sys.executable, "-m", "uniqsar.cli", "-q", "worker", str(spec),
                                         "--storage", url], env=one) for _ in range(n_workers)]
        if coord.wait() != 0 or any(w.wait() != 0 for w in workers):
            raise SystemExit(f"{name} failed")
        seconds = time.time() - t0
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
        study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
        done = [t for t in study.trials if t.state.name == "COMPLETE"]
        tuning = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
        runs[name] = {"fit_seconds": round(seconds, 1), "complete_trials": len(done),
                      "tuning_seconds": round(tuning.total_seconds(), 1),
                      "trials_per_minute": round(60 * len(done) / tuning.total_seconds(), 2),
                      "trials_by_process": pd.Series([t.user_attrs["worker"].rsplit(":", 1)[0] for t in done])
                      .value_counts().tolist()}
    res.update(runs)
    res["throughput_ratio"] = round(runs["coordinator_plus_worker"]["trials_per_minute"]
                                    / runs["one_process"]["trials_per_minute"], 2)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="ld50_zhu")
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--trial-scale", type=float, default=1.0,
                    help="run the preset's models with this fraction of its trial counts (1 = the preset as is)")
    ap.add_argument("--skip-preset", action="store_true", help="only the worker-throughput measurement")
    ap.add_argument("--throughput-trials", type=int, default=12)
    ap.add_argument("--cache-dir", help="feature cache to use (default: a fresh one, so the first fit featurizes "
                                        "cold and its time is the cold featurization time)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="uq-throughput-"))
    env = {**os.environ, "UNIQSAR_CACHE_DIR": str(a.cache_dir or tmp / "cache")}
    res = {"machine": {"cores": os.cpu_count()}, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "cache": "given (--cache-dir)" if a.cache_dir else "fresh"}
    if not a.skip_preset:
        res["preset_n_jobs"] = preset_wall_time(a, tmp, env)
        print(json.dumps(res["preset_n_jobs"], indent=2), flush=True)
    res["worker_throughput"] = worker_throughput(a, tmp, env)
    res["note"] = ("fit wall times include start-up, standardization, stacking and refit; features are cached "
                   "beforehand (cold featurization reported separately); run on an otherwise idle machine")
    out = HERE / "results" / "throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
