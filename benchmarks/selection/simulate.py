"""Score candidate `default` designs offline from the superset runs (benchmarks/selection/run.py).

    python benchmarks/selection/simulate.py --raw benchmarks/selection/results/raw \
        --out benchmarks/selection/results/designs.md
    python benchmarks/selection/simulate.py --raw benchmarks/selection/results/raw \
        --extra-raw benchmarks/selection/results/raw_catboost_speed --out benchmarks/selection/results/catboost_speed.md

``--extra-raw``: runs of another recipe on the same task-seeds (same folds); each of its models replaces the
MapLight member of S7 in a design of its own, and the report compares those designs with S7.
``--repeats-raw`` (with ``--extra-raw``, plan_repeats.md): runs of ``repeats.toml`` (default's tuned members with
``[cv] repeats = 3``); design S7R = those members (all their trials) + ``catboost_rsm0.1``, compared with
``S7_catboost_rsm0.1`` (today's default).

Each design is a choice of members, trials per study (the first k trials of the study: exactly what
``n_trials = k`` runs, same sampler seed), stacking candidates per model and a stacking rule. It is stacked
on the train split's out-of-fold predictions with uniqsar's own stacker and scored on the TDC **valid**
split (never the test set), with the members' valid predictions as their five fold models' mean. The
decision rule is fixed in ``plan.md`` before any result was seen.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from uniqsar.util import source_commit  # noqa: E402
from uniqsar.ensemble.backward import stack_models
from uniqsar.ensemble.greedy import fit_weights
from uniqsar.metrics import METRICS, score

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

LGBM = ("lightgbm__ecfp+desc", "lightgbm__avalon+erg+desc", "lightgbm__fcfp+maccs+desc")
UNIMOL = "lightgbm__unimol2_emb+desc"
LINEAR = "linear__ecfp+avalon+desc"
MAPLIGHT = "catboost__morgan1024+avalon+erg+desc"
CURRENT = (*LGBM, UNIMOL, LINEAR)
FEW = {20: 6, 15: 5, 8: 4, 1: 1}  # the "few trials" designs: about 30% of each study's trials


@dataclass(frozen=True)
class Design:
    name: str
    models: tuple[str, ...]
    few: bool = False  # first FEW[n] trials of each study instead of all
    top: int = 3  # best trials of each model kept as stacking candidates
    stack: str = "auto"  # auto (product: best nested CV of greedy/best/mean) | shrink | model_mean
    note: str = field(default="", compare=False)


DESIGNS = (
    Design("S0_current", CURRENT, note="today's default"),
    Design("S1_maplight", (*CURRENT, MAPLIGHT), note="+ MapLight CatBoost as a fixed member"),
    Design("S2_maplight_few", (*CURRENT, MAPLIGHT), few=True, note="S1 with ~30% of the trials"),
    Design("S3_maplight_top1", (*CURRENT, MAPLIGHT), top=1, note="S1, one candidate (best trial) per model"),
    Design("S4_maplight_shrink", (*CURRENT, MAPLIGHT), stack="shrink",
           note="S1, weights halfway between the stacker's and the equal-weight mean of each model's best trial"),
    Design("S5_maplight_no_unimol", (*LGBM, LINEAR, MAPLIGHT), note="S1 without Uni-Mol2 embeddings"),
    Design("S6_maplight_alone", (MAPLIGHT,), note="MapLight alone (5 fold models)"),
    Design("S7_lean", (*LGBM, LINEAR, MAPLIGHT), few=True, top=1, stack="shrink",
           note="S2+S3+S4+S5 together: the cheapest candidate"),
    Design("S8_model_mean", (*CURRENT, MAPLIGHT), stack="model_mean",
           note="equal-weight mean of each model's best trial, no stacker"),
)


def load(path: Path) -> tuple[dict, dict]:
    z = np.load(path, allow_pickle=False)
    meta = json.loads(bytes(z["meta"]).decode())
    return meta, {k: z[k] for k in z.files if k != "meta"}


def candidates(meta: dict, arrays: dict, design: Design):
    """(model id, trial number, oof, valid, cv value, seconds of the trials the design runs) per candidate."""
    higher = METRICS[meta["metric"]].greater_is_better
    out, seconds = [], 0.0
    for model in design.models:
        trials = meta["studies"][model]
        n_all = max(1, len([t for t in trials if t["state"] in ("COMPLETE", "PRUNED")]))
        k = FEW.get(n_all, max(1, round(0.3 * n_all))) if design.few else n_all
        ran = [t for t in trials if t["number"] < k or not design.few]
        seconds += sum(t["seconds"] or 0.0 for t in ran)
        done = [t for t in ran if t["value"] is not None]
        done.sort(key=lambda t: (-t["value"] if higher else t["value"], t["number"]))
        for t in done[:design.top]:
            out.append((model, t["number"], arrays[f"oof|{model}|{t['number']}"].astype(float),
                        arrays[f"valid|{model}|{t['number']}"].astype(float), t["value"]))
    return out, seconds


def evaluate(meta: dict, arrays: dict, design: Design) -> dict:
    metric = meta["metric"]
    y, folds, yv = arrays["y"], arrays["folds"], arrays["y_valid"]
    cands, seconds = candidates(meta, arrays, design)
    P = np.column_stack([c[2] for c in cands])
    V = np.column_stack([c[3] for c in cands])
    groups = [c[0] for c in cands]
    stack = stack_models(P, groups, y, folds, metric, ("greedy", "best", "mean"), 50, drop=False)
    w = np.zeros(len(cands))
    w[stack.columns] = fit_weights(stack.method, P[:, stack.columns], y, metric, 50)
    first = np.array([i == 0 or groups[i] != groups[i - 1] for i in range(len(cands))])  # each model's best
    mean_best = first / first.sum()
    if design.stack == "shrink":
        w = 0.5 * w + 0.5 * mean_best
    elif design.stack == "model_mean":
        w = mean_best
    return {"valid": score(metric, yv, V @ w), "nested_cv": stack.cv if design.stack == "auto" else None,
            "cv_in_sample": score(metric, y, P @ w), "seconds": seconds, "n_members": int((w > 0).sum())}


def s7_with(member: str) -> Design:
    """S7 with ``member`` in the MapLight CatBoost's place."""
    return Design(f"S7_{member}", (*LGBM, LINEAR, member), few=True, top=1, stack="shrink",
                  note=f"S7 with {member} instead of {MAPLIGHT}")


def merge(meta: dict, arrays: dict, extra: Path) -> list[Design]:
    """Add the studies of ``extra`` (same task-seed, same folds) to ``meta`` / ``arrays``; their S7 designs."""
    meta2, arrays2 = load(extra)
    for k in ("y", "folds"):
        if not np.array_equal(arrays[k], arrays2[k]):
            sys.exit(f"{extra}: {k} differ from the superset run of the same task-seed")
    np.testing.assert_allclose(arrays["y_valid"], arrays2["y_valid"])
    meta["studies"].update(meta2["studies"])
    arrays.update({k: v for k, v in arrays2.items() if k.startswith(("oof|", "valid|"))})
    return [s7_with(m) for m in meta2["studies"]]


REPEATED = "@repeats"  # suffix of the repeats run's model ids once merged


def merge_repeats(meta: dict, arrays: dict, path: Path) -> Design:
    """Add the repeats run of this task-seed (same first partition) under suffixed ids; its design S7R."""
    meta2, arrays2 = load(path)
    for k in ("y", "folds"):
        if not np.array_equal(arrays[k], arrays2[k]):
            sys.exit(f"{path}: {k} differ from the superset run of the same task-seed")
    for model, trials in meta2["studies"].items():
        meta["studies"][model + REPEATED] = trials
    for k, v in arrays2.items():
        if k.startswith(("oof|", "valid|")):
            kind, model, number = k.split("|")
            arrays[f"{kind}|{model}{REPEATED}|{number}"] = v
    members = tuple(m + REPEATED for m in (*LGBM, LINEAR))
    return Design("S7R_repeats", (*members, "catboost_rsm0.1"), top=1, stack="shrink",
                  note="default's members tuned on the mean over 3 partitions + catboost_rsm0.1")


def score_file(path: Path, extra_raw: Path | None = None, repeats_raw: Path | None = None) -> list[dict]:
    meta, arrays = load(path)
    designs = DESIGNS
    if extra_raw is not None:
        extra = extra_raw / path.parent.name / path.name
        if not extra.is_file():
            print(f"[simulate] {extra} missing: task-seed left out", file=sys.stderr)
            return []
        designs = (next(d for d in DESIGNS if d.name == "S7_lean"), *merge(meta, arrays, extra))
        if repeats_raw is not None:
            rep_file = repeats_raw / path.parent.name / path.name
            if not rep_file.is_file():
                print(f"[simulate] {rep_file} missing: task-seed left out", file=sys.stderr)
                return []
            designs = (next(d for d in designs if d.name == "S7_catboost_rsm0.1"), merge_repeats(meta, arrays, rep_file))
    rows = [{"task": meta["task"], "seed": meta["seed"], "metric": meta["metric"], "design": d.name,
             **evaluate(meta, arrays, d), "note": d.note} for d in designs]
    print(f"[simulate] {meta['task']} seed {meta['seed']}: {len(rows)} designs scored", file=sys.stderr, flush=True)
    return rows


def git_commit() -> str | None:
    """The commit of the uniqsar code that produced a result ("+dirty": uncommitted changes in uniqsar/)."""
    return source_commit()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-jobs", type=int, default=1, help="task-seeds scored side by side (processes)")
    ap.add_argument("--extra-raw", default=None, help="runs of another recipe whose models replace S7's CatBoost")
    ap.add_argument("--repeats-raw", default=None, help="runs of repeats.toml (needs --extra-raw): S7R vs S7 with "
                    "catboost_rsm0.1 (plan_repeats.md)")
    args = ap.parse_args(argv)
    if args.repeats_raw and not args.extra_raw:
        ap.error("--repeats-raw needs --extra-raw (the catboost_rsm0.1 runs)")
    files = sorted(Path(args.raw).glob("*/seed*.npz"))
    if not files:
        sys.exit(f"no superset runs under {args.raw}")
    from joblib import Parallel, delayed

    extra = Path(args.extra_raw) if args.extra_raw else None
    repeats = Path(args.repeats_raw) if args.repeats_raw else None
    per_file = Parallel(n_jobs=args.n_jobs)(delayed(score_file)(f, extra, repeats) for f in files)
    rows = [r for rows in per_file for r in rows]
    if not rows:
        sys.exit("no task-seed scored")
    write_report(rows, Path(args.out), sorted({(r["task"], r["seed"]) for r in rows}), files[0].parent.parent,
                 base_name="S7_catboost_rsm0.1" if repeats else "S7_lean" if extra else "S0_current")
    return 0


def rel(metric: str, new: float, base: float) -> float:
    """Relative improvement of ``new`` over ``base`` (positive = better), sign-adjusted for the metric."""
    sign = 1 if METRICS[metric].greater_is_better else -1
    return sign * (new - base) / abs(base)


def write_report(rows: list[dict], out: Path, task_seeds, raw: Path, base_name: str = "S0_current") -> None:
    b0 = base_name.split("_")[0]
    base = {(r["task"], r["seed"]): r for r in rows if r["design"] == base_name}
    designs = list(dict.fromkeys((r["design"], r["note"]) for r in rows))
    lines = [f"# Selection designs on the TDC valid splits ({len(task_seeds)} task-seeds)", "",
             f"Produced by `python benchmarks/selection/simulate.py {' '.join(sys.argv[1:])}` at commit "
             f"{git_commit()} from the superset runs in `{raw}` (their commits are in each "
             f"file's meta). Rule: `plan.md`. `wins` = task-seeds where the design's valid score beats {b0}'s "
             f"(ties half); `rel` = mean relative improvement over {b0} (positive = better); `cost` = CV seconds "
             f"of the trials the design runs / {b0}'s.", "",
             f"| design | wins vs {b0} | rel vs {b0} | cost vs {b0} | note |", "|---|---|---|---|---|"]
    summary = {}
    for name, note in designs:
        mine = [r for r in rows if r["design"] == name]
        wins = sum(1.0 if rel(r["metric"], r["valid"], base[(r["task"], r["seed"])]["valid"]) > 1e-9 else
                   0.5 if abs(r["valid"] - base[(r["task"], r["seed"])]["valid"]) <= 1e-9 else 0.0 for r in mine)
        rels = [rel(r["metric"], r["valid"], base[(r["task"], r["seed"])]["valid"]) for r in mine]
        cost = sum(r["seconds"] for r in mine) / max(1e-9, sum(base[(r["task"], r["seed"])]["seconds"] for r in mine))
        summary[name] = {"wins": wins, "n": len(mine), "rel": float(np.mean(rels)), "cost": cost}
        lines.append(f"| {name} | {wins:g}/{len(mine)} | {100 * np.mean(rels):+.2f}% | {cost:.2f} | {note} |")
    lines += ["", "Per task-seed valid scores (nested CV of the stack on train in brackets where the design uses "
              "the product's stacker):", "",
              "| task | seed | metric | " + " | ".join(name for name, _ in designs) + " |",
              "|---|---|---|" + "---|" * len(designs)]
    for (task, seed), b in sorted(base.items()):
        cells = []
        for name, _ in designs:
            r = next(r for r in rows if r["design"] == name and r["task"] == task and r["seed"] == seed)
            cells.append(f"{r['valid']:.3f}" + (f" ({r['nested_cv']:.3f})" if r["nested_cv"] is not None else ""))
        lines.append(f"| {task} | {seed} | {b['metric']} | " + " | ".join(cells) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    record = {"command": " ".join(["python", "benchmarks/selection/simulate.py", *sys.argv[1:]]),
              "git_commit": git_commit(), "summary": summary, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    print("\n".join(lines[:6 + len(designs)]))


if __name__ == "__main__":
    sys.exit(main())
