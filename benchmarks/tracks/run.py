"""What the stacked ensemble gains from each representation track, on TDC ADMET tasks.

    python benchmarks/tracks/run.py --tasks caco2_wang bbb_martins hia_hou herg --seed 1 \
        --out benchmarks/tracks/results [--n-jobs 1] [--recipe benchmarks/tracks/tracks.toml]

Per task: one uniqsar fit of `tracks.toml` (every track) on the task's whole ``train_val.csv`` (internal
5-fold scaffold CV, seed = the TDC seed); the test set is never passed to fit. Then, for each cumulative
subset of tracks (fingerprints -> + D-MPNN -> + SMILES encoder -> + Uni-Mol2), a copy of that run is
restacked: ``fit --resume`` with a recipe holding only the subset's models. The copy's manifest is removed
first so the resume accepts the smaller recipe (the data, seed and folds are the same by construction);
its finished Optuna trials, their out-of-fold predictions and any fitted final models are reused, so
every subset stacks exactly the same candidates and only the ensemble differs. Each subset's run then
predicts the test set, scored with the official metric.

A model may name its track with a ``track`` key (removed before the recipe reaches fit); without one it is
classified by learner and features (``track_of``). ``--subsets default default+dmpnn_emb ...`` restacks the given
'+'-joined track sets instead of the cumulative ones (the last must hold every track: it is the full run):

    python benchmarks/tracks/run.py --recipe benchmarks/tracks/default_dmpnn.toml \
        --subsets default default+dmpnn_emb default+dmpnn_ft default+dmpnn_emb+dmpnn_ft --out DIR

Writes OUT/<task>_seed<k>.json (CV and test score, members and weights, seconds per subset) and OUT/table.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "tdc"))

from run import data_dir  # noqa: E402  (benchmarks/tdc/run.py)

from uniqsar.config import dump_toml  # noqa: E402
from uniqsar.data.dataset import standardize_column  # noqa: E402
from uniqsar.data.tdc import TASKS, evaluate, load_task  # noqa: E402
from uniqsar.io.artifacts import read_json  # noqa: E402
from uniqsar.metrics import get_metric  # noqa: E402
from uniqsar.pipeline.fit import FitOptions, fit  # noqa: E402
from uniqsar.pipeline.predict import Run  # noqa: E402
from uniqsar.util import source_commit  # noqa: E402

def track_of(model: dict) -> str:
    feats = set(model.get("features", []))
    if model["learner"] == "dmpnn":
        return "dmpnn"
    if model["learner"] == "smiles_transformer" or "smiles_emb" in feats:
        return "smiles"
    if model["learner"] == "unimol2" or "unimol2_emb" in feats:
        return "unimol2"
    return "fingerprints"


def model_track(model: dict) -> str:
    return model.get("track") or track_of(model)


def model_id(model: dict) -> str:
    return model.get("name") or f"{model['learner']}__{'+'.join(model.get('features', [])) or 'smiles'}"


def subset_recipe(recipe: dict, tracks: list[str]) -> dict:
    sub = dict(recipe, name=f"{recipe['name']}_{'+'.join(tracks)}")
    sub["models"] = [{k: v for k, v in m.items() if k != "track"} for m in recipe["models"]
                     if model_track(m) in tracks]
    return sub


def plan_subsets(recipe: dict, subsets: list[str] | None) -> list[list[str]]:
    """Track sets to restack: the given ones, or cumulative in the order the tracks first appear."""
    tracks = list(dict.fromkeys(model_track(m) for m in recipe["models"]))
    if not subsets:
        return [tracks[:k] for k in range(1, len(tracks) + 1)]
    plan = [s.split("+") for s in subsets]
    unknown = {t for p in plan for t in p} - set(tracks)
    if unknown:
        raise SystemExit(f"--subsets names unknown track(s) {sorted(unknown)}; the recipe has {tracks}")
    if set(plan[-1]) != set(tracks):
        raise SystemExit(f"the last of --subsets must hold every track {tracks} (it is the full run)")
    return plan


def test_score(run_dir: Path, task: str, test, fallback: float) -> tuple[float, int]:
    run = Run(run_dir)
    std = standardize_column(test, "Drug", mode=run.standardize)
    ok = (std["error"] == "").to_numpy()
    pred = np.full(len(test), np.nan)
    pred[ok] = run.predict_canonical(std["canonical"][ok].tolist())["Y"]
    bad = ~np.isfinite(pred)
    pred[bad] = fallback
    return evaluate(task, test["Y"].to_numpy(), pred), int(bad.sum())


def best_single_per_track(run_dir: Path, recipe: dict, higher_is_better: bool) -> dict:
    """Best single candidate's CV score per track, from the full run's leaderboard."""
    import pandas as pd

    board = pd.read_csv(run_dir / "leaderboard.csv")
    board = board[board["candidate"] != "ENSEMBLE"]
    track_by_id = {model_id(m): model_track(m) for m in recipe["models"]}
    tracks = list(dict.fromkeys(track_by_id.values()))
    out = {}
    for track in tracks:
        rows = board[[track_by_id.get(str(r.candidate).split("#")[0]) == track for r in board.itertuples()]]
        if len(rows):
            best = rows.loc[rows["cv_score"].idxmax() if higher_is_better else rows["cv_score"].idxmin()]
            out[track] = {"candidate": best["candidate"], "cv": float(best["cv_score"])}
    return out


def run_task(task: str, seed: int, args) -> dict:
    info = TASKS[task]
    train_val, test = load_task(task, data_dir(args.data_dir))
    train = train_val[["Drug", "Y"]]
    fallback = float(train["Y"].astype(float).mean())
    recipe = tomllib.loads(Path(args.recipe).read_text())
    work = Path(args.work) / f"{task}_seed{seed}"
    work.mkdir(parents=True, exist_ok=True)

    def options(preset: Path, resume: bool) -> FitOptions:
        return FitOptions(targets=("Y",), smiles_col="Drug", task=info.task, preset=str(preset), seed=seed,
                          n_jobs=args.n_jobs, metric={"Y": info.metric}, resume=resume)

    full = work / "all"
    t0 = time.time()
    plan = plan_subsets(recipe, args.subsets)
    (work / "all.toml").write_text(dump_toml(subset_recipe(recipe, plan[-1])))
    fit(train, full, options(work / "all.toml", resume=(full / "manifest.json").exists()))
    out = {"task": task, "seed": seed, "metric": info.metric, "n_train": len(train), "n_test": len(test),
           "seconds_full_fit": round(time.time() - t0, 1), "subsets": []}
    out["leaderboard_full"] = read_json(full / "metrics.json")
    out["best_single_per_track"] = best_single_per_track(full, recipe, get_metric(info.metric).greater_is_better)

    for k, tracks in enumerate(plan, start=1):
        sub = subset_recipe(recipe, tracks)
        if k == len(plan):
            run_dir = full
        else:
            run_dir = work / "+".join(tracks)
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.copytree(full, run_dir)
            (run_dir / "manifest.json").unlink()
            (work / f"{run_dir.name}.toml").write_text(dump_toml(sub))
            t1 = time.time()
            fit(train, run_dir, options(work / f"{run_dir.name}.toml", resume=True))
        ens = read_json(run_dir / "targets" / "Y" / "ensemble.json")
        score, n_fallback = test_score(run_dir, task, test, fallback)
        out["subsets"].append({
            "tracks": tracks, "n_models": len(sub["models"]), "method": ens["method"],
            "cv_nested": ens["cv_score_nested"], "test": score, "n_fallback": n_fallback,
            "members": {m["id"]: round(m["weight"], 3) for m in ens["members"]},
            "seconds_restack": None if k == len(plan) else round(time.time() - t1, 1)})
        print(f"[tracks] {task} seed {seed} {'+'.join(tracks)}: CV {ens['cv_score_nested']:.4f} "
              f"test {score:.4f} ({ens['method']}, {len(ens['members'])} members)", flush=True)
    return out


def write_table(out_dir: Path) -> None:
    results = [json.loads(f.read_text()) for f in sorted(out_dir.glob("*_seed*.json"))]
    if not results:
        return
    names = ["+".join(s["tracks"]) for s in results[0]["subsets"]]
    rows = ["| task | seed | metric | " + " | ".join(f"{n} CV / test" for n in names) + " | full fit s |",
            "|---|---|---|" + "---|" * len(names) + "---|"]
    for r in results:
        cells = [f"{s['cv_nested']:.3f} / **{s['test']:.3f}**" for s in r["subsets"]]
        rows.append(f"| {r['task']} | {r['seed']} | {r['metric']} | " + " | ".join(cells)
                    + f" | {r['seconds_full_fit']:.0f} |")
    # the joining rule: each subset's nested-CV score against the first subset's, sign-adjusted relative gain
    rule = ["| subset | nested-CV wins vs " + names[0] + " | mean relative gain | test wins (reported only) |",
            "|---|---|---|---|"]
    for j, name in enumerate(names[1:], start=1):
        gains, test_wins = [], 0
        for r in results:
            sign = 1.0 if get_metric(r["metric"]).greater_is_better else -1.0
            base, cand = r["subsets"][0], r["subsets"][j]
            gains.append(sign * (cand["cv_nested"] - base["cv_nested"]) / abs(base["cv_nested"]))
            test_wins += sign * (cand["test"] - base["test"]) > 0
        rule.append(f"| {name} | {sum(g > 0 for g in gains)} of {len(gains)} | {100 * np.mean(gains):+.2f}% "
                    f"| {test_wins} of {len(results)} |")
    tracks = list(dict.fromkeys(t for r in results for t in r.get("best_single_per_track", {})))
    singles = ["| task | seed | metric | " + " | ".join(tracks) + " |", "|---|---|---|" + "---|" * len(tracks)]
    for r in results:
        b = r.get("best_single_per_track", {})
        singles.append(f"| {r['task']} | {r['seed']} | {r['metric']} | "
                       + " | ".join(f"{b[t]['cv']:.3f} (`{b[t]['candidate']}`)" if t in b else "-" for t in tracks)
                       + " |")
    commands = sorted({r.get("command", "?") + f" (commit {r.get('commit')})" for r in results})
    (out_dir / "table.md").write_text(
        "# Stacked-ensemble gain per representation track (TDC test sets; CV = nested 5-fold scaffold CV on "
        "train_val)\n\nEach column restacks the same candidates restricted to the named tracks.\n\n"
        + "\n".join(rows) + "\n\n## Each subset against the first (nested CV decides; test reported only)\n\n"
        + "\n".join(rule) + "\n\n## Best single model per track (plain 5-fold scaffold CV on train_val)\n\n"
        + "\n".join(singles) + "\n\nProduced by:\n\n" + "\n".join(f"- `{c}`" for c in commands) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["caco2_wang", "bbb_martins", "hia_hou", "herg"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--recipe", default=str(HERE / "tracks.toml"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--work", default="/tmp/uniqsar_tracks", help="run dirs (resumable: rerun to continue)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--subsets", nargs="+", default=None,
                    help="'+'-joined track sets to restack (default: cumulative in recipe order)")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        dst = out_dir / f"{task}_seed{args.seed}.json"
        if dst.exists():
            print(f"[tracks] {dst} exists, skipped", flush=True)
            continue
        res = run_task(task, args.seed, args)
        res["command"] = " ".join([Path(sys.argv[0]).name] + sys.argv[1:])
        res["commit"] = source_commit()
        dst.write_text(json.dumps(res, indent=1, default=float))
        write_table(out_dir)
    write_table(out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
