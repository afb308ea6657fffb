"""Build ``report.html`` from a run directory's plain files (figures inline; no external links)."""
from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.io import layout
from uniqsar.io.artifacts import read_json
from uniqsar.pipeline import oof as oof_columns
from uniqsar.report import figures

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#222;line-height:1.4}h1{font-size:24px;margin-bottom:4px}h2{font-size:20px;border-bottom:2px solid #ddd;
padding-bottom:4px;margin-top:32px}h3{font-size:16px;margin:18px 0 6px}table{border-collapse:collapse;margin:6px 0 12px;
font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.sub{color:#666;font-size:13px}.note{color:#8a6d3b;background:#fcf8e3;padding:6px 10px;
border-radius:4px;font-size:13px}.figs{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.figs img{max-width:100%}
.kpi{display:flex;gap:14px;flex-wrap:wrap;margin:8px 0}.kpi div{background:#f6f8fa;border:1px solid #e1e4e8;
border-radius:6px;padding:8px 14px}.kpi b{display:block;font-size:18px}"""


def _e(x) -> str:
    return html.escape(str(x))


def _num(v, digits=4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, (int, np.integer)):
        return str(v)
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}g}" if abs(v) >= 1e4 or (0 < abs(v) < 1e-3) else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return _e(v)


def _table(df: pd.DataFrame, left: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th class='{'l' if c in left else ''}'>{_e(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td class='{'l' if c in left else ''}'>{_num(v)}</td>"
                                    for c, v in zip(df.columns, row)) + "</tr>" for row in df.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


def _kpis(items: list[tuple[str, str]]) -> str:
    return "<div class='kpi'>" + "".join(f"<div><b>{_e(v)}</b>{_e(k)}</div>" for k, v in items) + "</div>"


def _data_section(rep: dict) -> str:
    out = ["<h2>Data</h2>", _kpis([("input rows", rep["n_rows"]), ("valid molecules", rep["n_valid"]),
                                   ("invalid rows", rep["n_invalid"]), ("standardization", rep.get("standardize", ""))])]
    ex = rep.get("invalid_examples") or []
    if ex:
        df = pd.DataFrame(ex)
        cols = [c for c in ("row", "smiles", "reason") if c in df.columns]
        out += [f"<h3>Invalid rows (first {len(ex)} of {rep['n_invalid']}; kept out of training)</h3>",
                _table(df[cols], left=("smiles", "reason"))]
    rows = [{"target": t, "task": d["task"], "training molecules": d.get("n_train"), "missing": d.get("n_missing"),
             "duplicates merged": d.get("n_duplicates_merged"), "conflicting": d.get("n_conflicting")}
            for t, d in rep.get("targets", {}).items()]
    if rows:
        out.append(_table(pd.DataFrame(rows), left=("target", "task")))
    return "\n".join(out)


def _fold_scores(oof: pd.DataFrame, metric: str, best: str | None, n_classes: int | None = None) -> pd.DataFrame:
    from uniqsar.metrics import score

    rows = []
    for f in sorted(oof["fold"].unique()):
        part = oof[oof["fold"] == f]
        row = {"fold": int(f), "molecules": len(part), f"ensemble (nested) {metric}":
               score(metric, part["y"], oof_columns.get(part, "ensemble_nested", n_classes))}
        if best and best in part:
            row[f"best single {metric}"] = score(metric, part["y"], oof_columns.get(part, best, n_classes))
        rows.append(row)
    return pd.DataFrame(rows)


def _target_section(run: Path, target: str, tm: dict, metrics: dict, board: pd.DataFrame) -> str:
    tdir = run / tm["dir"]
    ens = read_json(tdir / layout.ENSEMBLE)
    oof = pd.read_csv(tdir / layout.OOF)
    cal_path = tdir / layout.CALIBRATION
    cal = read_json(cal_path) if cal_path.is_file() else {"available": False, "reason": "no calibration.json"}
    task, metric = tm["task"], metrics.get("metric", tm.get("metric"))
    cv = metrics.get("cv_score_ensemble")
    kpis = [("task", task), ("training molecules", metrics.get("n_train", len(oof))),
            (f"ensemble nested-CV {metric}", _num(cv) if cv is not None else "no CV"),
            (f"best single {metric}", _num(metrics.get("cv_score_best_single")) or "-"),
            ("ensemble method", ens.get("method", "")), ("target transform", ens.get("transform", "none"))]
    if cal.get("available"):
        kpis += [("OOF coverage at 0.9", _num(cal["oof_coverage"]["0.9"]["coverage"], 3)),
                 ("domain threshold (NN Tanimoto)", _num(cal["domain"]["threshold"], 3))]
    out = [f"<h2>Target {_e(target)}</h2>", _kpis(kpis)]
    sub = board[board["target"] == target].drop(columns=["target"])
    keep = [c for c in ("candidate", "learner", "features", "cv_score", "n_trials", "weight",
                        "ensemble_cv_without_model") if c in sub.columns]
    out += ["<h3>Leaderboard and ensemble weights</h3><p class='sub'>cv_score: out-of-fold score of each candidate "
            "(the ENSEMBLE row: nested CV, weights fitted without the scored fold); ensemble_cv_without_model: the "
            "nested CV of the ensemble rebuilt without that model.</p>",
            _table(sub[keep], left=("candidate", "learner", "features"))]
    has_cv = (oof["fold"] >= 0).any() and oof["ensemble_nested"].notna().any()
    y = oof["y"].to_numpy(float)
    k = oof_columns.n_classes_of(ens)
    figs = [figures.target_distribution(y, task, target, ens.get("classes"))]
    if has_cv:
        pred = oof_columns.get(oof, "ensemble_nested", k)
        out += ["<h3>Per-fold scores</h3>", _table(_fold_scores(oof, metric, metrics.get("best_single"), k))]
        unc_path = tdir / layout.OOF_UNCERTAINTY
        unc = pd.read_csv(unc_path) if unc_path.is_file() else None
        if task == "multiclass":
            figs.append(figures.confusion(y, pred.argmax(axis=1), ens["classes"]))
        elif task == "binary":
            figs.append(figures.binary_curves(y, pred))
        else:
            lo = unc["lower_90"].to_numpy(float) if unc is not None else None
            hi = unc["upper_90"].to_numpy(float) if unc is not None else None
            figs.append(figures.parity(y, pred, lo, hi))
        out.append("<h3>Target distribution and out-of-fold predictions</h3><div class='figs'>" + "".join(figs) + "</div>")
        out.append(_uncertainty_section(cal, unc, task))
    else:
        out.append("<div class='figs'>" + "".join(figs) + "</div><p class='note'>This recipe has no "
                   "cross-validation (n_folds = 0): no out-of-fold predictions, scores, intervals or domain.</p>")
    return "\n".join(out)


def _uncertainty_section(cal: dict, unc: pd.DataFrame | None, task: str) -> str:
    if not cal.get("available") or unc is None:
        return f"<p class='note'>No calibration: {_e(cal.get('reason', ''))}</p>"
    levels = sorted(float(c) for c in cal["oof_coverage"])
    cover = [cal["oof_coverage"][f"{c:g}"]["coverage"] for c in levels]
    size_key = "mean_width" if task == "regression" else "mean_set_size"
    tab = pd.DataFrame({"confidence": levels, "OOF coverage": cover,
                        size_key.replace("_", " "): [cal["oof_coverage"][f"{c:g}"][size_key] for c in levels]})
    d = cal["domain"]
    err_label = "|y - p|" if task == "binary" else "1 - p(true class)" if task == "multiclass" else (
        "absolute error" + (" of log10(1 + y)" if d.get("error_scale") == "log10p1" else ""))
    err = (unc["abs_error"] if "abs_error" in unc else np.abs(unc["y"] - unc["pred"])).to_numpy(float)
    text = (f"Rule: {_e(d['rule'])}; threshold {_num(d['threshold'], 3)}; {d['oof_share_flagged']:.1%} of OOF rows "
            f"below it (mean {err_label} {_num(d.get('oof_mae_out'))} out of domain vs {_num(d.get('oof_mae_in'))} in).")
    return ("<h3>Uncertainty (calibrated on the OOF predictions)</h3>"
            f"<p class='sub'>{_e(cal['method'])}. Coverage is leave-one-fold-out: each fold's rows against the "
            "quantile of the other folds' scores.</p><div class='figs'>"
            + figures.coverage_curve(levels, cover)
            + figures.error_vs_similarity(unc["nn_similarity"].to_numpy(float), err, d["threshold"], err_label)
            + f"</div>{_table(tab)}<p class='sub'>Applicability domain: {text}</p>")


def build_html(run) -> str:
    run = Path(run)
    m = read_json(run / layout.MANIFEST)
    rep = read_json(run / layout.DATA_REPORT)
    metrics = read_json(run / layout.METRICS)
    board = pd.read_csv(run / layout.LEADERBOARD)
    v = m.get("versions", {})
    head = (f"<h1>uniqsar run report</h1><p class='sub'>{_e(run.resolve())} &middot; preset {_e(m.get('preset'))} "
            f"&middot; seed {_e(m.get('seed'))} &middot; uniqsar {_e(v.get('uniqsar', ''))} &middot; created "
            f"{_e(m.get('created', ''))} &middot; fit time {_num(m.get('timings', {}).get('total_s'), 1)} s</p>")
    parts = [head, _data_section(rep)]
    for t, tm in m["targets"].items():
        parts.append(_target_section(run, t, tm, metrics.get(t, {}), board))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>uniqsar report: {_e(run.name)}</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(parts) + "</body></html>\n")


def write_report(run, out=None) -> Path:
    """Write the report of a complete run directory to ``out`` (default ``RUN/report.html``)."""
    from uniqsar.io.artifacts import check_run_dir

    run = check_run_dir(run)
    out = Path(out) if out else Path(run) / layout.REPORT
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(build_html(run))
    tmp.replace(out)
    return out
