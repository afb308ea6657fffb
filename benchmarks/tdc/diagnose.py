"""Why does a uniqsar preset lose to MapLight on a task? Per-learner out-of-fold evidence.

    python benchmarks/tdc/diagnose.py benchmarks/tdc/results/fast \
        --maplight benchmarks/tdc/results/maplight --maplight-cv benchmarks/tdc/results/maplight_cv \
        --out benchmarks/tdc/results/fast/vs_maplight_why.md

For every task where the preset's mean test score is worse than MapLight's (our `maplight` run, same
seeds), the table gives the test scores of both and, from the preset's own 5-fold scaffold CV on
train_val (`learner_cv` in its seed JSONs; mean over seeds): the ensemble's nested-CV score, the best
single learner x features and its CV score, and, if `--maplight-cv` is given, MapLight's model scored on
the same folds (`maplight_cv.toml`, same TDC seeds). Verdict:

* ``MapLight better in CV``: CatBoost on MapLight's features beats uniqsar's ensemble (its nested-CV score)
  on the same folds, so the loss is the learners/feature sets, not chance.
* ``uniqsar >= MapLight in CV``: on the same folds uniqsar's ensemble is at least as good; the test loss is
  the CV-to-test gap (scaffold shift, small test set).

Caveat on the comparison: MapLight's score is one untuned configuration (honest). uniqsar's ensemble score
is nested with respect to the stacking step only: its learners' hyperparameters were tuned by Optuna on
these same folds, so it is optimistic by the selection over trials (more so on small data); the best single
learner's CV (shown for information) is the best of its trials, more optimistic still. A "uniqsar >=
MapLight in CV" verdict with a test loss is therefore consistent with tuning overfit to the folds as well as
with chance.
* ``no same-fold MapLight CV``: not measured for this task.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (benchmarks/tdc/report.py)

from uniqsar.data.tdc import TASKS  # noqa: E402


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else float("nan")


def learner_cv_means(recs: list[dict]) -> dict[str, float]:
    names = sorted({k for r in recs for k in r.get("learner_cv", {})})
    return {n: _mean([r.get("learner_cv", {}).get(n) for r in recs]) for n in names}


def diagnose(preset_dir, maplight_dir, maplight_cv_dir=None) -> tuple[list[dict], int]:
    """(rows for the tasks the preset loses, number of tasks compared)."""
    ours, ml = report.load_seeds(preset_dir), report.load_seeds(maplight_dir)
    mlcv = report.load_seeds(maplight_cv_dir) if maplight_cv_dir else {}
    rows, n = [], 0
    for task in TASKS:
        if task not in ours or task not in ml:
            continue
        seeds = sorted({r["seed"] for r in ours[task]} & {r["seed"] for r in ml[task]})
        if not seeds:
            continue
        n += 1
        o = [r for r in ours[task] if r["seed"] in seeds]
        m = [r for r in ml[task] if r["seed"] in seeds]
        t_ours, t_ml = _mean([r["score"] for r in o]), _mean([r["score"] for r in m])
        if not report.better(task, t_ml, t_ours):
            continue
        lcv = learner_cv_means(o)
        pick = min if report.lower_is_better(task) else max
        best = pick(lcv, key=lcv.get) if lcv else None
        ml_seeds = {r["seed"] for r in mlcv.get(task, [])} & set(seeds)
        cv_ml = _mean([r.get("cv_score") for r in mlcv.get(task, []) if r["seed"] in ml_seeds])
        cv_ens = _mean([r.get("cv_score") for r in o])
        cv_ens_paired = _mean([r.get("cv_score") for r in o if r["seed"] in ml_seeds])  # same seeds = same folds
        if np.isnan(cv_ml):
            verdict = "no same-fold MapLight CV"
        elif report.better(task, cv_ml, cv_ens_paired):
            verdict = "MapLight better in CV"
        else:
            verdict = "uniqsar >= MapLight in CV"
        rows.append({"task": task, "metric": TASKS[task].metric, "seeds": seeds, "test_ours": t_ours,
                     "test_maplight": t_ml, "cv_ensemble": cv_ens, "best_learner": best,
                     "cv_best_learner": lcv.get(best, float("nan")), "cv_maplight": cv_ml,
                     "cv_ensemble_paired": cv_ens_paired, "seeds_cv_maplight": sorted(ml_seeds),
                     "learner_cv": lcv, "verdict": verdict})
    return rows, n


def markdown(rows: list[dict], n: int, name: str) -> str:
    f = lambda x: "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"  # noqa: E731
    lines = [f"`{name}` is worse than our MapLight run (mean over the same seeds) on {len(rows)} of {n} tasks.",
             "CV = 5-fold scaffold CV on train_val of the same seeds (MapLight CV: `maplight_cv.toml`, same folds).",
             "", "| task | metric | seeds | test ours | test MapLight | CV ensemble | best learner (CV) | "
             "CV MapLight vs ours, same folds | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        arrow = "↓" if report.lower_is_better(r["task"]) else "↑"
        sd = r["seeds_cv_maplight"]
        cvml = (f"{f(r['cv_maplight'])} vs ours {f(r['cv_ensemble_paired'])} (seeds {','.join(map(str, sd))})"
                if sd else "—")
        lines.append(f"| {r['task']} | {r['metric']} {arrow} | {len(r['seeds'])} | {f(r['test_ours'])} | "
                     f"{f(r['test_maplight'])} | {f(r['cv_ensemble'])} | {r['best_learner']} "
                     f"({f(r['cv_best_learner'])}) | {cvml} | {r['verdict']} |")
    lines += ["", "Per-learner CV (mean over seeds) on those tasks:", ""]
    for r in rows:
        lines.append(f"- {r['task']}: " + ", ".join(f"{k} {f(v)}" for k, v in r["learner_cv"].items()))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset_dir", help="result dir of a uniqsar preset (run.py)")
    ap.add_argument("--maplight", required=True, help="result dir of the maplight preset")
    ap.add_argument("--maplight-cv", help="result dir of benchmarks/tdc/maplight_cv.toml (same seeds)")
    ap.add_argument("--out", help="write the Markdown here (default: stdout)")
    a = ap.parse_args(argv)
    rows, n = diagnose(a.preset_dir, a.maplight, a.maplight_cv)
    report.emit(markdown(rows, n, Path(a.preset_dir).name), a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
