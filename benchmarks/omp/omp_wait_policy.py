"""LightGBM fit time under OpenMP's default (spinning) wait policy vs PASSIVE (uniqsar's default, set in
uniqsar/__init__.py), with 1 or 2 threads, with and without a competing busy process.

Why it matters: spinning threads make LightGBM 10-100x slower as soon as the cores are shared; passive
threads avoid that but make a second LightGBM thread a loss (wake-up cost), which is why
uniqsar.models.gbdt.lightgbm_threads uses one thread per fit under PASSIVE and gets parallelism from
parallel trials instead.

Run: python benchmarks/omp/omp_wait_policy.py  -> benchmarks/omp/results/omp_wait_policy.json (min of 3 fits)
"""
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import sys, time, numpy as np, lightgbm as lgb
rows, cols, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
X = (rng.random((rows, cols)) < 0.05).astype(np.float32) * rng.integers(1, 4, (rows, cols)).astype(np.float32)
X[:, -200:] = rng.normal(size=(rows, 200))  # count fingerprint + dense descriptors, like ecfp+desc
y = X[:, :20].sum(1) + X[:, -5:].sum(1) + rng.normal(0, .5, rows)
times = []
for _ in range(3):
    t = time.time()
    lgb.train({"objective": "regression", "num_threads": threads, "verbose": -1, "seed": 0, "learning_rate": 0.05},
              lgb.Dataset(X, y), 200)
    times.append(time.time() - t)
print(min(times))
"""


def run(policy: str | None, threads: int, busy: bool, rows: int, cols: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(rows), str(cols), str(threads)], env=env,
                             capture_output=True, text=True, check=True)
    finally:
        if hog:
            hog.kill()
    return round(float(out.stdout.strip()), 2)


if __name__ == "__main__":
    res = {}
    for rows, cols, busy in ((4000, 2265, False), (12000, 2265, False), (4000, 2265, True)):
        for policy in (None, "PASSIVE"):
            for threads in (1, 2):
                key = f"{rows}x{cols} {policy or 'default(spin)'} threads={threads}{' +busy core' if busy else ''}"
                res[key] = run(policy, threads, busy, rows, cols)
                print(f"{key}: {res[key]} s", flush=True)
    out = Path(__file__).parent / "results" / "omp_wait_policy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seconds_min_of_3": res, "note": "LightGBM 200 trees, lr 0.05, 31 leaves; "
                               f"{os.cpu_count()} cores; '+busy core': a spinning Python process runs beside"},
                              indent=2))
