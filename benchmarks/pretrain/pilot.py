"""Pilot run of a pretraining recipe: runs `uniqsar pretrain` in a subprocess, then reads losses.csv and
reports the training throughput (molecules/s, steady state: the first `--skip` steps are excluded) and what a
given wall-clock budget would give.

    python benchmarks/pretrain/pilot.py --recipe small --limit 10000 --max-steps 40 --out /tmp/pilot_small
    -> benchmarks/pretrain/results/pilot_<recipe>.json
"""
import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="small")
    ap.add_argument("--corpus", default="/work/shared/data/moses/train.csv.gz")
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--max-steps", type=int, default=40)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip", type=int, default=3, help="warm-up steps excluded from the rate")
    ap.add_argument("--budget-h", type=float, default=2.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    cmd = [sys.executable, "-m", "uniqsar.cli", "pretrain", "--recipe", a.recipe, "--corpus", a.corpus,
           "--out", a.out, "--limit", str(a.limit), "--max-steps", str(a.max_steps), "--n-jobs", str(a.n_jobs)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    if Path(a.out, "ckpt", "last.pt").exists():
        cmd.append("--resume")
    t0 = time.time()
    subprocess.run(cmd, check=True)
    wall = time.time() - t0
    rows = list(csv.DictReader(open(Path(a.out) / "losses.csv")))
    steady = rows[a.skip:]
    dt = float(steady[-1]["elapsed_s"]) - float(rows[a.skip - 1]["elapsed_s"]) if a.skip else float(steady[-1]["elapsed_s"])
    mols = sum(int(r["mols"]) for r in steady)
    rate = mols / dt
    card = json.loads((Path(a.out) / "model_card.json").read_text())
    batch = card["recipe"]["train"]["batch_size"]
    res = {
        "recipe": a.recipe, "command": " ".join(cmd), "wall_s_total": round(wall, 1),
        "train_s": float(rows[-1]["elapsed_s"]), "steps": len(rows), "steady_steps": len(steady),
        "mol_per_s": round(rate, 2), "s_per_step": round(dt / len(steady), 2),
        "budget_h": a.budget_h, "molecules_in_budget": int(rate * a.budget_h * 3600),
        "steps_in_budget": int(rate * a.budget_h * 3600 / batch),
        "num_params": card["num_params"], "checkpoint_mb": round(os.path.getsize(Path(a.out) / "checkpoint.pt") / 2**20, 2),
        "mean_heavy_atoms": card["data"]["mean_heavy_atoms"], "threads": a.threads or card["recipe"]["train"]["threads"],
        "load_average_after": os.getloadavg(), "cpus": os.cpu_count(), "machine": platform.platform(),
        "first_losses": {k: rows[0][k] for k in ("loss", "mlm", "coord", "dist")},
        "last_losses": card["final_train_losses"], "final_val_losses": card["final_val_losses"],
    }
    dest = HERE / "results" / f"pilot_{a.recipe}{a.tag}.json"
    dest.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
