"""Wall time of the two speed targets of issue 17, side by side with a baseline commit in the same run.

    python benchmarks/speed/run.py --case fast_example default_ld50 --baseline 9b2a6bc \
        --out benchmarks/speed/results/speed.json

Cases (each from a cold feature cache: a fresh cache directory per run):
- ``fast_example``: ``uniqsar fit examples/lipophilicity_1k.csv --target logD --preset fast`` (the README's
  first command; target <= 60 s on 2 cores);
- ``default_ld50``: ``uniqsar fit`` of TDC LD50 train_val (5,907 molecules) with ``--preset default``
  (target <= 10 min on 2 cores).

The baseline runs the same command line from a git worktree of ``--baseline`` (``PYTHONPATH`` points at it),
so both sides see the same machine at the same time; the current side runs this checkout. Each result records
the command line, both commits, the machine's load average before each run and the run's nested-CV score.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uniqsar.util import source_commit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LD50 = REPO.parent / "shared" / "data" / "tdc_admet_group" / "ld50_zhu" / "train_val.csv"


def case_args(case: str, n_jobs: int) -> list[str]:
    if case == "fast_example":
        return ["fit", str(REPO / "examples" / "lipophilicity_1k.csv"), "--target", "logD", "--preset", "fast",
                "--n-jobs", str(n_jobs)]
    if case == "default_ld50":
        return ["fit", str(LD50), "--target", "Y", "--smiles-col", "Drug", "--preset", "default",
                "--n-jobs", str(n_jobs)]
    raise SystemExit(f"unknown case {case!r}")


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def timed(src: Path, args: list[str], tmp: Path) -> dict:
    out, cache = tmp / "run", tmp / "cache"
    env = {**os.environ, "PYTHONPATH": str(src), "UNIQSAR_CACHE_DIR": str(cache)}
    load = os.getloadavg()[0]
    t0 = time.time()
    cli = "import sys; from uniqsar.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", cli, *args, "--out", str(out)], env=env, cwd=src,
                          capture_output=True, text=True)
    seconds = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{src}: uniqsar failed:\n{proc.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"seconds": round(seconds, 1), "load_before": round(load, 2),
            "cv_score_ensemble": {t: m["cv_score_ensemble"] for t, m in metrics.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", nargs="+", default=["fast_example"], choices=["fast_example", "default_ld50"])
    ap.add_argument("--baseline", default=None, help="git revision to time side by side (default: none)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--baseline-only", action="store_true",
                    help="time only the baseline (when the current side's file exists from an earlier call)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    head = source_commit()
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "commit": head,
              "baseline": args.baseline, "n_cores": os.cpu_count(), "cases": {}}
    tmp_root = Path(tempfile.mkdtemp(prefix="uniqsar_speed_"))
    try:
        sides = [] if args.baseline_only else [("current", REPO)]
        if args.baseline:
            wt = tmp_root / "baseline_src"
            git("worktree", "add", "--detach", "-f", str(wt), args.baseline)
            result["baseline_commit"] = git("rev-parse", "--short", "HEAD", cwd=wt)
            sides.append(("baseline", wt))
        for case in args.case:
            result["cases"][case] = {"args": case_args(case, args.n_jobs)}
            for name, src in sides:
                print(f"[speed {time.strftime('%H:%M:%S')}] {case} ({name})", flush=True)
                result["cases"][case][name] = timed(src, case_args(case, args.n_jobs), tmp_root / f"{case}_{name}")
                print(f"  {result['cases'][case][name]}", flush=True)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        if args.baseline:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp_root / "baseline_src")], cwd=REPO,
                           capture_output=True)
        shutil.rmtree(tmp_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
