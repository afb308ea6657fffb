"""How much of the seed-1 probe verdict (pretrained vs random Uni-Mol2 weights) is sampling noise.

For the given weights and a random init of the same architecture, embeds each probe task's train_val
molecules (the `unimol2` featurizer, disk-cached), fits probe.py's ridge / LightGBM on the split seed's train
part (the same models and settings, so the point estimates equal probe.py's), and resamples the seed's valid
rows with replacement (paired: both embeddings scored on the same resample). Per task: the difference
(pretrained - random, sign-adjusted so > 0 means pretrained is better), its 95 % bootstrap interval and the
share of resamples in which pretrained wins; and the product of those shares, a rough chance that a
valid set of the same size shows a win on every task at once.

    python benchmarks/pretrain/probe_noise.py --weights uniqsar/models/unimol2/weights/default.pt \
        --out benchmarks/pretrain/results/probe_noise

Never reads a test set (train_val.csv only). Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from probe import TASKS, arch_of, embed, load_train_val, probe_predictions  # noqa: E402

from uniqsar.data import tdc  # noqa: E402
from uniqsar.metrics import get_metric, score  # noqa: E402


def paired_bootstrap(metric: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Sign-adjusted score(a) - score(b) on `n_boot` resamples of the rows (resamples with one class skipped)."""
    sign = 1.0 if get_metric(metric).greater_is_better else -1.0
    rng = np.random.default_rng(seed)
    binary = set(np.unique(y)) <= {0.0, 1.0}
    out = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if binary and len(np.unique(y[idx])) < 2:
            continue
        out.append(sign * (score(metric, y[idx], a[idx]) - score(metric, y[idx], b[idx])))
    return np.asarray(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="pretrained weights spec (path, folder or name)")
    ap.add_argument("--pooling", default="cls+mean", help="the presets' pooling (default.toml: cls+mean)")
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--seed", type=int, default=1, help="TDC split seed whose valid part is resampled")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--data-dir", default=str(HERE.parents[2] / "shared" / "data" / "tdc_admet_group"))
    ap.add_argument("--out", required=True, help="output path without extension")
    a = ap.parse_args(argv)

    specs = {"pretrained": {"weights": a.weights},
             "random": {"weights": "random", "arch": arch_of("unimol2", a.weights)}}
    res = {"weights": a.weights, "pooling": a.pooling, "seed": a.seed, "n_boot": a.n_boot, "tasks": {}}
    for task in a.tasks:
        t0 = time.time()
        train_val, smiles, y = load_train_val(a.data_dir, task, a.n_jobs)
        tr, va = tdc.train_valid_split(train_val, a.seed)
        metric = tdc.task_info(task).metric
        preds = {name: probe_predictions(task, embed("unimol2", spec, smiles, a.pooling, a.n_jobs), y, tr, va, a.seed)
                 for name, spec in specs.items()}
        res["tasks"][task] = {"metric": metric, "n_valid": int(len(va))}
        for model in ("ridge", "lightgbm"):
            p, r = preds["pretrained"][model], preds["random"][model]
            boot = paired_bootstrap(metric, y[va], p, r, a.n_boot, a.seed)
            sign = 1.0 if get_metric(metric).greater_is_better else -1.0
            res["tasks"][task][model] = {
                "pretrained": score(metric, y[va], p), "random": score(metric, y[va], r),
                "diff": sign * (score(metric, y[va], p) - score(metric, y[va], r)),
                "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
                "p_win": float((boot > 0).mean()), "n_boot_used": int(len(boot))}
        print(f"{task}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(report(res))
    print(report(res))
    return 0


def report(res: dict) -> str:
    lines = [f"# Probe noise: pretrained vs random Uni-Mol2 weights, seed-{res['seed']} valid sets, "
             f"paired bootstrap ({res['n_boot']} resamples)", "",
             f"Weights `{res['weights']}`, pooling `{res['pooling']}`. diff = pretrained - random, sign-adjusted "
             "(> 0: pretrained better); P(win) = share of resamples of the valid rows where pretrained wins.", ""]
    for model in ("ridge", "lightgbm"):
        lines += [f"## {model}", "", "| task | metric | n valid | pretrained | random | diff | 95 % interval | P(win) |",
                  "|---|---|---|---|---|---|---|---|"]
        p_all = 1.0
        for task, r in res["tasks"].items():
            m = r[model]
            p_all *= m["p_win"]
            lines.append(f"| {task} | {r['metric']} | {r['n_valid']} | {m['pretrained']:.3f} | {m['random']:.3f} | "
                         f"{m['diff']:+.3f} | [{m['ci95'][0]:+.3f}, {m['ci95'][1]:+.3f}] | {m['p_win']:.2f} |")
        wins = sum(r[model]["diff"] > 0 for r in res["tasks"].values())
        lines += ["", f"Wins at seed {res['seed']}: {wins}/{len(res['tasks'])}. Product of P(win) over tasks "
                  f"(rough chance that one valid set of these sizes shows a win on every task): {p_all:.3f}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
