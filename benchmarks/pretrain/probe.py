"""Linear / LightGBM probe of pretrained embeddings (Uni-Mol2; the SMILES transformer with
`--model smiles_transformer`; the D-MPNN encoder with `--model dmpnn_emb`) on TDC ADMET train/valid splits
(never the test sets).

For every weights spec given, embeds the train_val molecules of each task (the `unimol2` or
`smiles_transformer` featurizer, so conformers and embeddings are disk-cached), then for each split seed fits ridge (logistic regression for
binary tasks) and LightGBM on the seed's train part and scores the official metric on its valid part.
A pretrained checkpoint is compared with a random initialisation of the *same* architecture (`--random`).
A Morgan-count fingerprint row gives the scale of what a plain 2D baseline reaches.

    python benchmarks/pretrain/probe.py --weights small=runs/pt_small/export --random small \
        --seeds 1 2 3 4 5 --out benchmarks/pretrain/results/probe_small
    python benchmarks/pretrain/probe.py --model smiles_transformer --weights smiles=runs/pt_smiles_small \
        --random smiles --seeds 1 2 3 4 5 --out benchmarks/pretrain/results/probe_smiles
    python benchmarks/pretrain/probe.py --model dmpnn_emb --weights desc=runs/pt_dmpnn_desc --random desc \
        --pooling checkpoint mean --seeds 1 2 3 4 5 --out benchmarks/pretrain/results/probe_dmpnn

Writes OUT.json (every score) and OUT.md (seed-1 table, the issue's criterion, plus the 5-seed means).
Resumable: rerun the same command and the tasks already in OUT.json are kept.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from uniqsar.data import tdc  # noqa: E402
from uniqsar.data.standardize import standardize_many  # noqa: E402
from uniqsar.featurize.cache import FeatureCache  # noqa: E402
from uniqsar.metrics import get_metric, score  # noqa: E402
from uniqsar.registry import get_featurizer  # noqa: E402

TASKS = ["caco2_wang", "hia_hou", "pgp_broccatelli", "bioavailability_ma", "bbb_martins", "half_life_obach",
         "vdss_lombardo", "herg", "dili"]


def arch_of(model: str, path: str) -> dict:
    """The architecture of a checkpoint, as the featurizer's `arch` overrides of a random init."""
    if model == "dmpnn_emb":
        from uniqsar.models.dmpnn.pretrained import identity

        return dict(identity(path)["config"])
    if model == "smiles_transformer":
        from uniqsar.models.smiles.pretrained import read_checkpoint, resolve_checkpoint

        cfg = read_checkpoint(resolve_checkpoint(path))["config"]
        return {k: cfg[k] for k in ("d_model", "n_layers", "n_heads", "ffn_dim", "max_len")}
    from uniqsar.models.unimol2.weights import load_model

    cfg = load_model(path).cfg
    return {k: getattr(cfg, k) for k in ("layers", "embed_dim", "heads", "ffn_dim", "pair_dim", "pair_hidden")}


def embed(model: str, spec: dict, smiles: list[str], pooling: str, n_jobs: int) -> np.ndarray:
    feat = get_featurizer(model, weights=spec["weights"], arch=spec.get("arch"), pooling=pooling)
    return FeatureCache().get(feat, smiles, n_jobs=n_jobs)


def load_train_val(data_dir, task: str, n_jobs: int = 1) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """A task's train_val table (test.csv is never read), its standardized SMILES (raw where that fails), labels."""
    train_val = pd.read_csv(tdc.resolve_data_dir(data_dir) / task / "train_val.csv")
    canonical, _ = standardize_many(train_val["Drug"].tolist(), n_jobs=n_jobs)
    return train_val, [c or s for c, s in zip(canonical, train_val["Drug"])], train_val["Y"].to_numpy(float)


def probe_predictions(task: str, X: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray,
                      seed: int) -> dict[str, np.ndarray]:
    """Ridge (logistic regression for binary tasks) and LightGBM fitted on the train rows; their predictions
    on the valid rows (probability of class 1, or the value on the original scale)."""
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    info = tdc.task_info(task)
    ok_tr = tr[~np.isnan(X[tr]).any(1)]
    Xva = np.nan_to_num(X[va])
    gbm = dict(n_estimators=300, learning_rate=0.05, num_leaves=15, subsample=0.8, subsample_freq=1,
               colsample_bytree=0.5, random_state=seed, n_jobs=1, verbose=-1)
    if info.task == "binary":
        lin = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 2, 13), max_iter=3000))
        gb = lgb.LGBMClassifier(**gbm)
        models = (("ridge", lin), ("lightgbm", gb))
        return {name: m.fit(X[ok_tr], y[ok_tr]).predict_proba(Xva)[:, 1] for name, m in models}
    fwd = (lambda v: np.log10(v + 1)) if info.log_scale else (lambda v: v)
    inv = (lambda v: 10 ** v - 1) if info.log_scale else (lambda v: v)
    lin = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 15)))
    gb = lgb.LGBMRegressor(**gbm)
    return {name: inv(m.fit(X[ok_tr], fwd(y[ok_tr])).predict(Xva)) for name, m in (("ridge", lin), ("lightgbm", gb))}


def probe_models(task: str, X: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray, seed: int) -> dict:
    metric = tdc.task_info(task).metric
    return {name: score(metric, y[va], pred) for name, pred in probe_predictions(task, X, y, tr, va, seed).items()}


#: what two result files must share to be resumed or merged into one
SETTINGS = ("model", "specs", "seeds", "pooling")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="unimol2", choices=["unimol2", "smiles_transformer", "dmpnn_emb"])
    ap.add_argument("--weights", nargs="+", default=[], metavar="NAME=SPEC",
                    help="checkpoint paths / folders (or any `weights` spec) to probe")
    ap.add_argument("--random", nargs="*", default=[], metavar="NAME",
                    help="also probe a random init with the architecture of these --weights entries")
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--pooling", nargs="+", default=["cls", "cls+mean"])
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "tdc_admet_group"))
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--report-only", action="store_true", help="rewrite OUT.md from an existing OUT.json")
    ap.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                    help="only merge these result files (same settings, other tasks; e.g. one process per core with "
                    "disjoint --tasks) into OUT.json and rewrite OUT.md")
    a = ap.parse_args(argv)

    if a.merge:
        parts = [json.loads(Path(f).read_text()) for f in a.merge]
        if any(any(q.get(k) != parts[0].get(k) for k in SETTINGS) for q in parts):
            raise SystemExit("--merge: the files were run with different settings (model, weights, seeds or pooling)")
        results = {**parts[0], "tasks": {}, "merged": [{"file": str(f), "command": q["command"], "commit": q["commit"]}
                                                      for f, q in zip(a.merge, parts)]}
        for q in parts:
            results["tasks"].update({t: r for t, r in q["tasks"].items() if t not in results["tasks"]})
        Path(a.out).with_suffix(".json").write_text(json.dumps(results, indent=1))
        a.report_only = True
    if a.report_only:
        results = json.loads(Path(a.out).with_suffix(".json").read_text())
        Path(a.out).with_suffix(".md").write_text(report(results))
        return 0
    specs = {}
    for item in a.weights:
        name, _, w = item.partition("=")
        specs[name] = {"weights": w}
    for name in a.random:
        specs[f"random({name})"] = {"weights": "random", "arch": arch_of(a.model, specs[name]["weights"])}
    from benchmarks.tdc.run import git_commit

    results = {"command": "python " + " ".join(sys.argv), "commit": git_commit(), "model": a.model, "tasks": {},
               "specs": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in specs.items()},
               "seeds": a.seeds, "pooling": a.pooling}
    old_path = Path(a.out).with_suffix(".json")
    if old_path.exists():  # resume: tasks finished by a run with the same settings are kept
        old = json.loads(old_path.read_text())
        same = all(old.get(k) == results[k] for k in SETTINGS)
        if not same:
            raise SystemExit(f"{old_path} holds a probe with other settings (model, weights, seeds or pooling): "
                             f"pick another --out, or delete it to start again")
        results["tasks"] = old["tasks"]
        results["resumed_from"] = old.get("resumed_from", []) + [{"command": old["command"], "commit": old["commit"]}]
    for task in a.tasks:
        if task in results["tasks"]:
            print(f"{task}: kept from {old_path}", file=sys.stderr, flush=True)
            continue
        t0 = time.time()
        train_val, smiles, y = load_train_val(a.data_dir, task, a.n_jobs)
        splits = {s: tdc.train_valid_split(train_val, s) for s in a.seeds}
        views = {"morgan_count": FeatureCache().get(get_featurizer("morgan_count"), smiles, n_jobs=a.n_jobs)}
        for name, spec in specs.items():
            for pooling in a.pooling:
                views[f"{name}|{pooling}"] = embed(a.model, spec, smiles, pooling, a.n_jobs)
        res = {view: {str(s): probe_models(task, X, y, *splits[s], seed=s) for s in a.seeds}
               for view, X in views.items()}
        results["tasks"][task] = {"metric": tdc.task_info(task).metric, "scores": res,
                                  "seconds": round(time.time() - t0, 1)}
        print(f"{task}: done in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    Path(a.out).with_suffix(".md").write_text(report(results))
    print(report(results))
    return 0


def report(results: dict) -> str:
    """One table per (probe model, pooling): rows = tasks, columns = views, seed 1 and the seed mean."""
    title = {"unimol2": "Uni-Mol2", "smiles_transformer": "SMILES-transformer",
             "dmpnn_emb": "D-MPNN encoder"}[results.get("model", "unimol2")]
    lines = [f"# {title} embedding probe (TDC train -> valid, never test)", "",
             f"Command: `{results['command']}` (commit {results['commit']})", "",
             *[f"Earlier tasks from: `{r['command']}` (commit {r['commit']})\n" for r in results.get("resumed_from", [])],
             *[f"Merged from `{m['file']}`: `{m['command']}` (commit {m['commit']})\n" for m in results.get("merged", [])]]
    tasks = results["tasks"]
    first = next(iter(tasks.values()))
    views = list(first["scores"])
    seeds = [str(s) for s in results["seeds"]]
    for model in ("ridge", "lightgbm"):
        for pooling in results["pooling"]:
            cols = ["morgan_count"] + [v for v in views if v.endswith("|" + pooling)]
            lines += [f"## {model}, pooling `{pooling}` (seed {seeds[0]}; mean over seeds {', '.join(seeds)})", "",
                      "| task | metric | " + " | ".join(c.split("|")[0] for c in cols) + " |",
                      "|---|---|" + "---|" * len(cols)]
            for task, r in tasks.items():
                cells = []
                for c in cols:
                    vals = [r["scores"][c][s][model] for s in seeds]
                    cells.append(f"{vals[0]:.3f} ({np.mean(vals):.3f})" if len(vals) > 1 else f"{vals[0]:.3f}")
                arrow = "↑" if get_metric(r["metric"]).greater_is_better else "↓"
                lines.append(f"| {task} | {r['metric']} {arrow} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += criterion(results)
    return "\n".join(lines)


def criterion(results: dict) -> list[str]:
    """The issue's bar: pretrained beats the same architecture with random weights on every task (seed 1),
    per probe model and pooling; also counted on the mean over seeds."""
    tasks = results["tasks"]
    seeds = [str(s) for s in results["seeds"]]
    specs = list(results["specs"])
    randoms = [x for x in specs if x.startswith("random(")]
    lines = ["## Pretrained vs random weights of the same architecture", "",
             "| weights | vs | probe | pooling | wins, seed 1 | wins, seed mean | seed-1 losses (difference) |",
             "|---|---|---|---|---|---|---|"]
    for spec in (x for x in specs if x not in randoms):
        for rnd in randoms:
            for model in ("ridge", "lightgbm"):
                for pooling in results["pooling"]:
                    w1 = wm = 0
                    losses = []
                    for task, r in tasks.items():
                        sign = 1 if get_metric(r["metric"]).greater_is_better else -1
                        a, b = r["scores"][f"{spec}|{pooling}"], r["scores"][f"{rnd}|{pooling}"]
                        d1 = sign * (a[seeds[0]][model] - b[seeds[0]][model])
                        dm = sign * (np.mean([a[s][model] for s in seeds]) - np.mean([b[s][model] for s in seeds]))
                        w1, wm = w1 + (d1 > 0), wm + (dm > 0)
                        if d1 <= 0:
                            losses.append(f"{task} ({d1:+.3f})")
                    lines.append(f"| {spec} | {rnd} | {model} | {pooling} | {w1}/{len(tasks)} | {wm}/{len(tasks)} | "
                                 f"{', '.join(losses) or '-'} |")
    lines += ["", "## Embeddings vs Morgan counts, same probe model (seed mean)", "",
              "| weights | probe | pooling | wins vs morgan_count |", "|---|---|---|---|"]
    for spec in specs:
        for model in ("ridge", "lightgbm"):
            for pooling in results["pooling"]:
                wins = 0
                for r in tasks.values():
                    sign = 1 if get_metric(r["metric"]).greater_is_better else -1
                    a, b = r["scores"][f"{spec}|{pooling}"], r["scores"]["morgan_count"]
                    wins += sign * (np.mean([a[x][model] for x in seeds]) - np.mean([b[x][model] for x in seeds])) > 0
                lines.append(f"| {spec} | {model} | {pooling} | {wins}/{len(tasks)} |")
    return lines + [""]


if __name__ == "__main__":
    raise SystemExit(main())
