"""Fine-tuning probe of the pretrained D-MPNN encoder (issue 18, probe B): the `dmpnn` learner with its default
settings started from pretrained weights vs the same learner from scratch (same seed), on TDC ADMET
train -> valid splits (never the test sets). Resumable: finished (task, seed, variant) entries are kept.

    python benchmarks/pretrain/finetune_dmpnn.py --weights runs/pt_dmpnn_desc/checkpoint.pt --seeds 1 2 3 4 5 \
        --out benchmarks/pretrain/results/finetune_dmpnn

Writes OUT.json (every score, seconds, command line, commit) and OUT.md (5-seed means, the criterion count).
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
sys.path.insert(0, str(ROOT / "benchmarks" / "pretrain"))

from probe import TASKS, load_train_val  # noqa: E402

from uniqsar.data import tdc  # noqa: E402
from uniqsar.metrics import get_metric, score  # noqa: E402


def fit_score(task: str, smiles, y, tr, va, seed: int, weights, threads: int, params: dict | None = None) -> float:
    """Score of the dmpnn learner (defaults + ``params``; ``weights``: its pretrained start, None = scratch)."""
    from uniqsar.models.dmpnn import DMPNN

    info = tdc.task_info(task)
    fwd = (lambda v: np.log10(v + 1)) if info.log_scale else (lambda v: v)
    inv = (lambda v: 10 ** v - 1) if info.log_scale else (lambda v: v)
    params = {**(params or {}), **({"weights": weights} if weights else {})}
    m = DMPNN(task=info.task, seed=seed, n_threads=threads, **params)
    m.fit([smiles[i] for i in tr], fwd(y[tr]))
    pred = m.predict([smiles[i] for i in va])
    return float(score(info.metric, y[va], pred if info.task == "binary" else inv(pred)))


def report(res: dict) -> str:
    lines = ["# D-MPNN fine-tuning probe: pretrained encoder vs from scratch (TDC train -> valid, never test)", "",
             f"Command: `{res['command']}` (commit {res['commit']})", "",
             *[f"Merged from `{m['file']}`: `{m['command']}` (commit {m['commit']})\n" for m in res.get("merged", [])],
             *([f"Pretrained variant parameters: `{json.dumps(res['params'])}`\n"] if res.get("params") else []),
             *[f"Earlier invocation: `{r['command']}` (commit {r['commit']})\n" for r in res.get("earlier_runs", [])],
             "| task | metric | scratch | pretrained | seeds | pretrained better |", "|---|---|---|---|---|---|"]
    wins = n = 0
    for task, r in res["tasks"].items():
        seeds = sorted(set(r.get("scratch", {})) & set(r.get("pretrained", {})))
        if not seeds:
            continue
        a = np.mean([r["scratch"][s] for s in seeds])
        b = np.mean([r["pretrained"][s] for s in seeds])
        better = (b > a) if get_metric(r["metric"]).greater_is_better else (b < a)
        wins, n = wins + better, n + 1
        lines.append(f"| {task} | {r['metric']} | {a:.3f} | {b:.3f} | {len(seeds)} | {'yes' if better else 'no'} |")
    lines += ["", f"Pretrained better on **{wins} of {n}** tasks (means over the seeds both variants finished)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from benchmarks.tdc.run import git_commit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="pretrained checkpoint (or 'default'); needed unless --merge")
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "tdc_admet_group"))
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                    help="only merge these result files (e.g. a seed run in parallel into its own --out) into OUT: "
                    "entries OUT lacks are copied with their seconds, and the command of each is kept")
    ap.add_argument("--params", type=json.loads, default={}, metavar="JSON",
                    help='extra dmpnn parameters of the pretrained variant, e.g. \'{"standardize_encoder": true}\'')
    ap.add_argument("--only", choices=["scratch", "pretrained"],
                    help="fit one variant only (e.g. scratch in one process, pretrained in another; then --merge)")
    a = ap.parse_args(argv)
    if not a.weights and not a.merge and a.only != "scratch":
        ap.error("--weights is required (or --merge to only merge result files, or --only scratch)")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.with_suffix(".json")
    res = json.loads(path.read_text()) if path.exists() else {"tasks": {}}
    if a.merge:
        res.setdefault("command", "python " + " ".join(sys.argv))  # a new OUT made by merging only
        res.setdefault("commit", git_commit())
        for other in map(Path, a.merge):
            o = json.loads(other.read_text())
            for key in ("weights", "params"):  # the pretrained variant's, from the file that ran it
                if o.get(key) and any("pretrained" in r for r in o["tasks"].values()):
                    res.setdefault(key, o[key])
            for task, r in o["tasks"].items():
                mine = res["tasks"].setdefault(task, {"metric": r["metric"]})
                for key, vals in r.items():
                    if isinstance(vals, dict):
                        mine.setdefault(key, {}).update({k: v for k, v in vals.items() if k not in mine.get(key, {})})
            res.setdefault("merged", []).append({"file": other.name, "command": o["command"], "commit": o["commit"]})
        path.write_text(json.dumps(res, indent=1))
        out.with_suffix(".md").write_text(report(res))
        print(report(res))
        return 0
    if "command" in res:  # a resumed file keeps every invocation that filled it (code may differ between them)
        res.setdefault("earlier_runs", []).append({"command": res["command"], "commit": res["commit"]})
    res.update(command="python " + " ".join(sys.argv), commit=git_commit(), weights=a.weights, params=a.params)
    for seed in a.seeds:  # seed-major: every task gets seed 1 before any gets seed 2
        for task in a.tasks:
            train_val, smiles, y = load_train_val(a.data_dir, task)
            tr, va = tdc.train_valid_split(train_val, seed)
            r = res["tasks"].setdefault(task, {"metric": tdc.task_info(task).metric})
            for variant, w in (("scratch", None), ("pretrained", a.weights)):
                if str(seed) in r.get(variant, {}) or a.only not in (None, variant):
                    continue
                t0 = time.time()
                r.setdefault(variant, {})[str(seed)] = fit_score(task, smiles, y, tr, va, seed, w, a.threads,
                                                                 a.params if w else None)
                r.setdefault("seconds", {})[f"{variant}/{seed}"] = round(time.time() - t0, 1)
                print(f"{task} seed {seed} {variant}: {r[variant][str(seed)]:.4f} ({time.time() - t0:.0f}s)",
                      file=sys.stderr, flush=True)
                path.write_text(json.dumps(res, indent=1))
                out.with_suffix(".md").write_text(report(res))
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
