"""Uncertainty on the TDC ADMET test sets: conformal interval / set coverage and applicability-domain flags.

    python benchmarks/uncertainty/run.py --tasks regression --seeds 1 2 3 4 5 --preset fast \
        --out benchmarks/uncertainty/results/fast [--raw /tmp/uq_raw] [--reevaluate] [--split valid]

``--split valid`` replaces the test set by the seed's TDC validation split (``tdc.train_valid_split``: fit on
the TDC *train* part of ``train_val.csv``, score the *valid* part): the held-out check on which a change of
the calibration method may be chosen, since the test sets may not choose designs.

For each task and seed: ``fit`` on the whole ``train_val.csv`` (the TDC harness's protocol; the test set
never reaches fit), then the run's own calibration (``targets/Y/calibration.json``, made by fit from the
OOF predictions) is applied to the test rows with the same functions ``uniqsar predict`` uses, at
confidence 0.9 (coverage also at 0.8 / 0.95). Raw per-row material (the target's ``oof.csv``,
``ensemble.json`` and test member predictions) is kept under ``--raw`` so that ``--reevaluate`` recomputes
every result from it (recalibrating from the stored OOF) without refitting.

Per task-seed JSON (``OUT/<task>/seed<k>.json``), regression: coverage, mean width, the width of a
constant-width interval around the same predictions with the same empirical coverage on the test set
(``2 x`` that quantile of |error|: the best constant interval in hindsight), their ratio, and MAE of
out-of-domain vs in-domain rows with the flagged share. Binary: set coverage, mean set size, and the same
domain numbers with |y - p| as the error. ``OUT/summary.md`` aggregates them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tdc"))

from run import data_dir, git_commit  # noqa: E402  (benchmarks/tdc/run.py)

from uniqsar.data.dataset import standardize_column  # noqa: E402
from uniqsar.data.tdc import TASKS, load_task, train_valid_split  # noqa: E402
from uniqsar.io.artifacts import package_versions, read_json  # noqa: E402
from uniqsar.pipeline.fit import FitOptions, fit  # noqa: E402
from uniqsar.pipeline.predict import Run  # noqa: E402
from uniqsar.uncertainty.calibration import _z, apply, calibrate, query_features  # noqa: E402
from uniqsar.uncertainty.conformal import K_NEIGHBOURS  # noqa: E402
from uniqsar.uncertainty.domain import fingerprints, neighbours  # noqa: E402

REGRESSION = [t for t, i in TASKS.items() if i.task == "regression"]
BINARY = [t for t, i in TASKS.items() if i.task == "binary"]
LEVELS = (0.8, 0.9, 0.95)


def progress(msg: str) -> None:
    print(f"[uq {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fit_one(task: str, seed: int, args, raw: Path) -> None:
    """Fit, then store the raw material of the evaluation under ``raw`` (oof.csv, ensemble.json, test.csv)."""
    train_val, test = load_task(task, data_dir(args.data_dir))
    if args.split == "valid":  # the seed's TDC train -> valid split; the test set is not read further
        tr, va = train_valid_split(train_val, seed)
        train_val, test = train_val.iloc[tr].reset_index(drop=True), train_val.iloc[va].reset_index(drop=True)
    opts = FitOptions(targets=("Y",), smiles_col="Drug", task=TASKS[task].task, preset=args.preset, seed=seed,
                      cache_dir=args.cache_dir, metric={"Y": TASKS[task].metric})
    tmp = Path(tempfile.mkdtemp(prefix=f"uq_{task}_s{seed}_"))
    try:
        t0 = time.time()
        fit(train_val[["Drug", "Y"]], tmp / "run", opts)
        seconds = time.time() - t0
        run = Run(tmp / "run", cache_dir=args.cache_dir)
        std = standardize_column(test, "Drug", mode=run.standardize)
        ok = (std["error"] == "").to_numpy()
        canonical = std["canonical"][ok].tolist()
        pred, M = run.predict_members(canonical)["Y"]
        ens = run.ensembles["Y"]
        cols = {"smiles": canonical, "y": test["Y"].to_numpy(float)[ok], "pred": pred}
        for j, m in enumerate(ens["members"]):
            cols[m["id"]] = M[:, j]
        raw.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(cols).to_csv(raw / "test.csv", index=False)
        shutil.copy(tmp / "run" / "targets" / "Y" / "oof.csv", raw / "oof.csv")
        shutil.copy(tmp / "run" / "targets" / "Y" / "ensemble.json", raw / "ensemble.json")
        (raw / "fit.json").write_text(json.dumps({"seconds_fit": round(seconds, 1), "n_test": int(len(test)),
                                                  "n_test_invalid": int((~ok).sum())}) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate_one(task: str, seed: int, raw: Path, args) -> dict:
    """Recalibrate from the stored OOF (the code fit runs) and score the stored test predictions."""
    oof, test = pd.read_csv(raw / "oof.csv"), pd.read_csv(raw / "test.csv")
    ens = read_json(raw / "ensemble.json")
    kind = TASKS[task].task
    ids = [m["id"] for m in ens["members"]]
    folds = oof["fold"].to_numpy()
    train_fps = fingerprints(oof["smiles"].tolist())
    knn = neighbours(train_fps, train_fps, K_NEIGHBOURS, folds, folds)
    cal, rows = calibrate(kind, oof["y"].to_numpy(), oof["ensemble_nested"].to_numpy(), oof[ids].to_numpy(float),
                          [m["weight"] for m in ens["members"]], folds, knn[0][:, 0], ens.get("transform", "none"),
                          knn)
    cal["members"] = ids
    y, pred = test["y"].to_numpy(float), test["pred"].to_numpy(float)
    sim, nb = query_features(fingerprints(test["smiles"].tolist()), train_fps, rows["abs_error"].to_numpy())
    M = test[ids].to_numpy(float)
    err = np.abs(y - pred)
    t = cal["transform"]
    err_model = np.abs(_z(t, y) - _z(t, pred))  # on the scale the learners fitted (log10(1 + y) if transformed)
    rec = {"task": task, "seed": seed, "kind": kind, "preset": args.preset, "split": args.split,
           "n_test_scored": int(len(y)),
           **json.loads((raw / "fit.json").read_text()), "transform": cal["transform"],
           "oof_coverage": {c: v["coverage"] for c, v in cal["oof_coverage"].items()},
           "domain_threshold": cal["domain"]["threshold"], "domain_rule": cal["domain"]["rule"]}
    for c in LEVELS:
        res = apply(cal, pred, M, sim, c, nb)
        key = f"{c:g}"
        if kind == "regression":
            lo, hi = res["lower"], res["upper"]
            cover = float(np.mean((y >= lo) & (y <= hi)))
            width = float(np.mean(hi - lo))
            k = max(1, int(round(cover * len(err))))
            const = float(2 * np.sort(err)[k - 1])  # constant-width interval with the same test coverage
            rec[key] = {"coverage": cover, "mean_width": width, "constant_width_same_coverage": const,
                        "width_ratio": width / const if const > 0 else None}
            if t != "none":  # the same comparison on the fitted scale
                wz = float(np.mean(_z(t, hi) - _z(t, lo)))
                cz = float(2 * np.sort(err_model)[k - 1])
                rec[key]["width_ratio_model_scale"] = wz / cz if cz > 0 else None
        else:
            hit = np.where(y == 1, res["in1"], res["in0"])
            size = res["in0"].astype(int) + res["in1"]
            rec[key] = {"coverage": float(np.mean(hit)), "mean_set_size": float(np.mean(size)),
                        "share_both": float(np.mean(size == 2))}
    ind = res["in_domain"]
    rec["share_out_of_domain"] = float(np.mean(~ind))
    rec["mae_in_domain"] = float(err[ind].mean()) if ind.any() else None
    rec["mae_out_of_domain"] = float(err[~ind].mean()) if (~ind).any() else None
    rec["ood_mae_ratio"] = (rec["mae_out_of_domain"] / rec["mae_in_domain"]
                            if rec["mae_in_domain"] and rec["mae_out_of_domain"] is not None else None)
    e_in, e_out = err_model[ind], err_model[~ind]
    rec["ood_mae_ratio_model_scale"] = float(e_out.mean() / e_in.mean()) if len(e_in) and len(e_out) else None
    rec["spearman_width_abs_error"] = None
    if kind == "regression":
        from scipy.stats import spearmanr

        res = apply(cal, pred, M, sim, 0.9, nb)
        rec["spearman_width_abs_error"] = float(spearmanr(res["upper"] - res["lower"], err).statistic)
    rec.update(git_commit=git_commit(), command=" ".join(sys.argv), versions=package_versions(),
               evaluated=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return rec


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else float("nan")


def summary(out: Path) -> str:
    recs = [json.loads(p.read_text()) for p in sorted(out.glob("*/seed*.json"))]
    splits = sorted({r.get("split", "test") for r in recs})
    where = "TDC test sets" if splits == ["test"] else "TDC valid splits (fit on the train part)"
    lines = [f"# Uncertainty on the {where} ({out.name})", "",
             "Regression: 90% conformal intervals; `const` = mean width of the constant-width interval with the same "
             "test coverage (ratio < 1: ours narrower); OOD = rows with `in_domain = false`.", "",
             "`(fitted scale)`: the same on log10(1 + y) for the tasks fitted on that scale (others: same as "
             "the original scale). rho: Spearman correlation of interval width with |error| on the test rows.", "",
             "| task | seeds | cover 0.8 | cover 0.9 | cover 0.95 | width/const 0.9 | width/const (fitted scale) | "
             "OOD share | OOD/ID MAE | OOD/ID MAE (fitted scale) | rho(width, abs err) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_task: dict[str, list] = {}
    for r in recs:
        by_task.setdefault(r["task"], []).append(r)
    reg, binr = [], []
    for task, rs in by_task.items():
        row = {"task": task, "n": len(rs), "seeds": sorted(r["seed"] for r in rs),
               "cov": {c: _mean([r[c]["coverage"] for r in rs]) for c in ("0.8", "0.9", "0.95")},
               "ood": _mean([r["share_out_of_domain"] for r in rs]), "ratio": _mean([r["ood_mae_ratio"] for r in rs])}
        row["ratio_z"] = _mean([r.get("ood_mae_ratio_model_scale", r["ood_mae_ratio"]) for r in rs])
        if rs[0]["kind"] == "regression":
            row["wr"] = _mean([r["0.9"]["width_ratio"] for r in rs])
            row["wr_z"] = _mean([r["0.9"].get("width_ratio_model_scale", r["0.9"]["width_ratio"]) for r in rs])
            row["rho"] = _mean([r["spearman_width_abs_error"] for r in rs])
            row["min_cov"] = min(r["0.9"]["coverage"] for r in rs)
            reg.append(row)
        else:
            row["size"] = _mean([r["0.9"]["mean_set_size"] for r in rs])
            binr.append(row)
    for r in reg:
        lines.append(f"| {r['task']} | {r['seeds']} | {r['cov']['0.8']:.3f} | {r['cov']['0.9']:.3f} | "
                     f"{r['cov']['0.95']:.3f} | {r['wr']:.3f} | {r['wr_z']:.3f} | {r['ood']:.3f} | {r['ratio']:.2f} | "
                     f"{r['ratio_z']:.2f} | {r['rho']:.2f} |")
    if reg:
        lines += ["", f"Regression, mean over tasks of the task means: coverage 0.9 = "
                  f"{np.mean([r['cov']['0.9'] for r in reg]):.3f} (lowest task mean "
                  f"{min(r['cov']['0.9'] for r in reg):.3f}, lowest task-seed {min(r['min_cov'] for r in reg):.3f}); "
                  f"width / constant width = {np.mean([r['wr'] for r in reg]):.3f} "
                  f"({np.mean([r['wr_z'] for r in reg]):.3f} on the fitted scale); OOD share = "
                  f"{np.mean([r['ood'] for r in reg]):.3f}; OOD/ID MAE = {np.nanmean([r['ratio'] for r in reg]):.2f} "
                  f"({np.nanmean([r['ratio_z'] for r in reg]):.2f} on the fitted scale) "
                  f"({len(reg)} tasks, {sum(r['n'] for r in reg)} task-seeds)"]
    if binr:
        lines += ["", "| binary task | seeds | cover 0.8 | cover 0.9 | cover 0.95 | mean set size 0.9 | OOD share | "
                  "OOD/ID mean abs(y - p) |", "|---|---|---|---|---|---|---|---|"]
        for r in binr:
            lines.append(f"| {r['task']} | {r['seeds']} | {r['cov']['0.8']:.3f} | {r['cov']['0.9']:.3f} | "
                         f"{r['cov']['0.95']:.3f} | {r['size']:.2f} | {r['ood']:.3f} | {r['ratio']:.2f} |")
        lines += ["", f"Binary, mean over tasks: set coverage 0.9 = {np.mean([r['cov']['0.9'] for r in binr]):.3f} "
                  f"({len(binr)} tasks, {sum(r['n'] for r in binr)} task-seeds)"]
    commits = sorted({r["git_commit"] for r in recs if r.get("git_commit")})
    lines += ["", f"Commits: {', '.join(commits)}. Command lines are in each seed JSON (`command`)."]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["regression"], help="'regression', 'binary' or task names")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--raw", default="/tmp/uq_raw", help="per task-seed raw material (oof, test predictions)")
    ap.add_argument("--reevaluate", action="store_true", help="only recompute the JSONs from --raw (no fitting)")
    ap.add_argument("--split", choices=("test", "valid"), default="test",
                    help="score the TDC test set (default) or the seed's TDC valid split (fit on its train part)")
    args = ap.parse_args(argv)
    tasks = []
    for t in args.tasks:
        tasks += REGRESSION if t == "regression" else BINARY if t == "binary" else [t]
    out = Path(args.out)
    for task in tasks:
        for seed in args.seeds:
            raw = Path(args.raw) / args.preset / ("" if args.split == "test" else "valid") / task / f"seed{seed}"
            path = out / task / f"seed{seed}.json"
            if path.exists() and not args.reevaluate:
                continue  # done (its raw material may live on another machine)
            if not (raw / "fit.json").is_file():
                if args.reevaluate:
                    continue
                progress(f"{task} seed {seed}: fitting")
                try:
                    fit_one(task, seed, args, raw)
                except Exception as exc:  # keep going; a rerun retries it
                    progress(f"{task} seed {seed}: FAILED {type(exc).__name__}: {exc}")
                    continue
            rec = evaluate_one(task, seed, raw, args)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(rec, indent=2) + "\n")
            os.replace(tmp, path)
            r9 = rec["0.9"]
            progress(f"{task} seed {seed}: cover0.9 {r9['coverage']:.3f} "
                     + (f"width/const {r9['width_ratio']:.3f} " if "width_ratio" in r9 else "")
                     + f"OOD {rec['share_out_of_domain']:.2f} ratio {rec['ood_mae_ratio']}")
        if out.exists():
            summary(out)
    if out.exists():
        print(summary(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
