"""Issue 21: `fit --preset default --time-budget 60` on 2,500 molecules with a cold feature cache must end
within the budget with a usable model. Writes results/cold_cache_<budget>s.json (command line, commit, timings,
the budget plan, the saved ensemble and its CV score).

    python benchmarks/budget/cold_cache.py [--budget 60] [--n 2500]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from uniqsar.util import source_commit

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "tdc_admet_group" / "lipophilicity_astrazeneca" / "train_val.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--n", type=int, default=2500)
    ap.add_argument("--preset", default="default")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="uq-budget-"))
    data = work / "data.csv"
    pd.read_csv(DATA).iloc[: a.n].to_csv(data, index=False)
    cmd = [sys.executable, "-m", "uniqsar.cli", "fit", str(data), "--target", "Y", "--preset", a.preset,
           "--time-budget", f"{a.budget:g}s", "--cache-dir", str(work / "cache"), "--out", str(work / "run")]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.time() - t0
    out = {"command": " ".join(sys.argv), "fit_command": " ".join(cmd[1:]),
           "commit": source_commit(),
           "n_molecules": a.n, "budget_s": a.budget, "wall_s": round(wall, 1), "returncode": r.returncode,
           "log": [ln for ln in r.stderr.splitlines() if ": trial " not in ln]}
    if r.returncode == 0:
        run = work / "run"
        m = json.loads((run / "manifest.json").read_text())
        ens = json.loads((run / "targets" / "Y" / "ensemble.json").read_text())
        out.update(fit_total_s=m["timings"]["total_s"], budget_plan=m.get("budget_plan"),
                   members=[{"id": x["id"], "weight": round(x["weight"], 3)} for x in ens["members"]],
                   ensemble_cv_mae=ens["cv_score_nested"])
        pred = subprocess.run([sys.executable, "-m", "uniqsar.cli", "-q", "predict", str(run), str(data), "--out",
                               str(work / "pred.csv"), "--cache-dir", str(work / "cache")], capture_output=True, text=True)
        p = pd.read_csv(work / "pred.csv") if pred.returncode == 0 else None
        out["predict_ok"] = pred.returncode == 0 and bool(p["Y_pred"].notna().all())
    else:
        out["stderr_tail"] = r.stderr[-2000:]
    dst = Path(__file__).parent / "results" / f"cold_cache_{a.budget:g}s.json"
    dst.parent.mkdir(exist_ok=True)
    dst.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
