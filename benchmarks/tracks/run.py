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

TRACKS = ["fingerprints", "dmpnn", "smiles", "unimol2"]


def track_of(model: dict) -> str:
    feats = set(model.get("features", []))
    if model["learner"] == "dmpnn":
        return "dmpnn"
    if model["learner"] == "smiles_transformer" or "smiles_emb" in feats:
        return "smiles"
    if model["learner"] == "unimol2" or "unimol2_emb" in feats:
        return "unimol2"
    return "fingerprints"


def subset_recipe(recipe: dict, tracks: list[str]) -> dict:
    sub = dict(recipe, name=f"{recipe['name']}_{'+'.join(tracks)}")
    sub["models"] = [m for m in recipe["models"] if track_of(m) in tracks]
    return sub


def test_score(run_dir: Path, task: str, test, fallback: float) -> tuple[float, int]:
    run = Run(run_dir)
    std = standardize_column(test, "Drug", mode=run.standardize)
    ok = (std["error"] == "").to_numpy()
    pred = np.full(len(test), np.nan)
    pred[ok] = run.predict_canonical(std["canonical"][ok].tolist())["Y"]
    bad = ~np.isfinite(pred)
    pred[bad] = fallback
    return evaluate(task, test["Y"].to_numpy(), pred), int(bad.sum())


def best_single_per_track(run_dir: Path, higher_is_better: bool) -> dict:
    """Best single candidate's CV score per track, from the full run's leaderboard."""
    import pandas as pd

    board = pd.read_csv(run_dir / "leaderboard.csv")
    board = board[board["candidate"] != "ENSEMBLE"]
    out = {}
    for track in TRACKS:
        rows = board[[track_of({"learner": r.learner, "features": str(r.features).split("+")}) == track
                      for r in board.itertuples()]]
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
    (work / "all.toml").write_text(dump_toml(recipe))
    fit(train, full, options(work / "all.toml", resume=(full / "manifest.json").exists()))
    out = {"task": task, "seed": seed, "metric": info.metric, "n_train": len(train), "n_test": len(test),
           "seconds_full_fit": round(time.time() - t0, 1), "subsets": []}
    out["leaderboard_full"] = read_json(full / "metrics.json")
    out["best_single_per_track"] = best_single_per_track(full, get_metric(info.metric).greater_is_better)

    for k in range(1, len(TRACKS) + 1):
        tracks = TRACKS[:k]
        sub = subset_recipe(recipe, tracks)
        if k == len(TRACKS):
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
            "seconds_restack": None if k == len(TRACKS) else round(time.time() - t1, 1)})
        print(f"[tracks] {task} seed {seed} {'+'.join(tracks)}: CV {ens['cv_score_nested']:.4f} "
              f"test {score:.4f} ({ens['method']}, {len(ens['members'])} members)", flush=True)
    return out


def write_table(out_dir: Path) -> None:
    rows = ["| task | seed | metric | " + " | ".join(f"+{t} CV / test" if i else f"{t} CV / test"
                                                    for i, t in enumerate(TRACKS)) + " | full fit s |",
            "|---|---|---|" + "---|" * len(TRACKS) + "---|"]
    for f in sorted(out_dir.glob("*_seed*.json")):
        r = json.loads(f.read_text())
        cells = [f"{s['cv_nested']:.3f} / **{s['test']:.3f}**" for s in r["subsets"]]
        rows.append(f"| {r['task']} | {r['seed']} | {r['metric']} | " + " | ".join(cells)
                    + f" | {r['seconds_full_fit']:.0f} |")
    singles = ["| task | seed | metric | " + " | ".join(TRACKS) + " |", "|---|---|---|" + "---|" * len(TRACKS)]
    for f in sorted(out_dir.glob("*_seed*.json")):
        r = json.loads(f.read_text())
        b = r.get("best_single_per_track", {})
        singles.append(f"| {r['task']} | {r['seed']} | {r['metric']} | "
                       + " | ".join(f"{b[t]['cv']:.3f} (`{b[t]['candidate']}`)" if t in b else "-" for t in TRACKS)
                       + " |")
    (out_dir / "table.md").write_text(
        "# Stacked-ensemble gain per representation track (TDC test sets; CV = nested 5-fold scaffold CV on "
        "train_val)\n\nColumns are cumulative: each adds one track's models to the candidates the stacker "
        "chooses from.\n\n" + "\n".join(rows) + "\n\n## Best single model per track (plain 5-fold scaffold "
        "CV on train_val)\n\n" + "\n".join(singles) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["caco2_wang", "bbb_martins", "hia_hou", "herg"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--recipe", default=str(HERE / "tracks.toml"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--work", default="/tmp/uniqsar_tracks", help="run dirs (resumable: rerun to continue)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        dst = out_dir / f"{task}_seed{args.seed}.json"
        if dst.exists():
            print(f"[tracks] {dst} exists, skipped", flush=True)
            continue
        res = run_task(task, args.seed, args)
        dst.write_text(json.dumps(res, indent=1, default=float))
        write_table(out_dir)
    write_table(out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
