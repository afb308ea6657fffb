"""Parallel tuning on one machine: wall time of the same fit with --n-jobs 1 vs 2, and trial
throughput of one process vs a coordinator + one `uniqsar worker` sharing a journal storage.

Run: python benchmarks/parallel/throughput.py [--rows 2000] [--trials 8]
Writes benchmarks/parallel/results/throughput.json. Needs an otherwise idle machine to mean much.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

RECIPE = """
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


def _fit(csv, recipe, out, *extra, env=None):
    cmd = [sys.executable, "-m", "uniqsar.cli", "-q", "fit", str(csv), "--target", "Y", "--smiles-col", "Drug",
           "--preset", str(recipe), "--seed", "1", "--out", str(out), *extra]
    return subprocess.Popen(cmd, env=env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--task", default="lipophilicity_astrazeneca")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="uq-throughput-"))
    src = ROOT.parent / "shared" / "data" / "tdc_admet_group" / a.task / "train_val.csv"
    csv = tmp / "data.csv"
    pd.read_csv(src).head(a.rows).to_csv(csv, index=False)
    recipe = tmp / "r.toml"
    recipe.write_text(RECIPE.format(trials=a.trials))
    env = {**__import__("os").environ, "UNIQSAR_CACHE_DIR": str(tmp / "cache")}
    # warm the feature cache so featurization does not count
    _fit(csv, recipe.parent / "r.toml", tmp / "warm", "--learners", "lightgbm", env=env).wait()
    res = {"rows": a.rows, "trials": a.trials, "task": a.task}
    for n_jobs in (1, 2):
        t0 = time.time()
        assert _fit(csv, recipe, tmp / f"jobs{n_jobs}", "--n-jobs", str(n_jobs), env=env).wait() == 0
        res[f"fit_seconds_n_jobs_{n_jobs}"] = round(time.time() - t0, 1)
    res["speedup_n_jobs_2"] = round(res["fit_seconds_n_jobs_1"] / res["fit_seconds_n_jobs_2"], 2)
    # coordinator + 1 worker process on a shared journal, each with 1 LightGBM thread
    url = f"journal://{tmp / 'shared.journal'}"
    one_env = {**env, "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    coord = _fit(csv, recipe, tmp / "dist", "--storage", url, env=one_env)
    spec = tmp / "dist" / "run_spec.json"
    while not spec.exists():
        time.sleep(0.2)
    worker = subprocess.Popen([sys.executable, "-m", "uniqsar.cli", "-q", "worker", str(spec), "--storage", url],
                              env=one_env)
    assert coord.wait() == 0 and worker.wait() == 0
    res["fit_seconds_coordinator_plus_worker"] = round(time.time() - t0, 1)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp / "shared.journal")))
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    res["trials_by_process"] = pd.Series([t.user_attrs["worker"].rsplit(":", 1)[0] for t in done]).value_counts().tolist()
    res["note"] = "fit wall time includes start-up, stacking and refit; features cached beforehand"
    out = HERE / "results" / "throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
