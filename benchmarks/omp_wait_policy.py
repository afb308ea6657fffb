"""LightGBM fit time with OpenMP's default (spinning) wait policy vs PASSIVE, with and without
a competing busy process. Run: python benchmarks/omp_wait_policy.py  -> benchmarks/results/omp_wait_policy.json"""
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import time, sys, numpy as np, lightgbm as lgb
rng = np.random.default_rng(0)
X = rng.random((1000, 512)).astype(np.float32); y = X[:, :10].sum(1) + rng.normal(0, .1, 1000)
times = []
for _ in range(3):
    t = time.time()
    lgb.train({"objective": "regression", "num_threads": 2, "verbose": -1, "seed": 0}, lgb.Dataset(X, y), 200)
    times.append(time.time() - t)
print(min(times))
"""


def run(policy: str | None, busy: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    finally:
        if hog:
            hog.kill()
    return float(out.stdout.strip())


if __name__ == "__main__":
    res = {f"{p or 'default'}{'+busy_core' if b else ''}": round(run(p, b), 3)
           for b in (False, True) for p in (None, "PASSIVE")}
    print(json.dumps(res, indent=2))
    out = Path(__file__).parent / "results" / "omp_wait_policy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seconds_min_of_3": res, "note": "2 LightGBM threads, 1000x512, 200 trees"}, indent=2))
