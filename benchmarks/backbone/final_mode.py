"""Final models: refit each ensemble member on all training data vs average its K fold models.

Same tuning (same seed -> identical trials and ensemble weights), only `final.mode` differs, so
the comparison isolates the final-model choice. TDC train_val -> test, official metric.
Run:  python benchmarks/backbone/final_mode.py [--tasks caco2_wang bbb_martins] [--seeds 1 2 3]
Writes benchmarks/backbone/results/final_mode.json (+ .md).
"""
import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from uniqsar.config import load_recipe, dump_toml
from uniqsar.data import tdc
from uniqsar.pipeline.fit import FitOptions, fit
from uniqsar.pipeline.predict import Run

HERE = Path(__file__).parent


def score_mode(task, seed, mode, preset, data_dir):
    tv, te = tdc.load_task(task, data_dir)
    info = tdc.TASKS[task]
    recipe = replace(load_recipe(preset), final=mode)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.toml"
        path.write_text(dump_toml(recipe.to_dict()))
        t0 = time.time()
        out = fit(tv, Path(tmp) / "run", FitOptions(targets=("Y",), smiles_col="Drug", task=info.task,
                                                     preset=str(path), seed=seed, metric={"Y": info.metric}))
        res = Run(out).predict_frame(te[["Drug"]], "Drug")
        col = "Y_prob" if info.task == "binary" else "Y_pred"
        pred = res[col].to_numpy(float)
        pred = np.where(np.isnan(pred), np.nanmean(pred), pred)
        return tdc.evaluate(task, te["Y"].to_numpy(), pred), time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["caco2_wang", "bbb_martins"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--data-dir", default=str(HERE.parents[2] / "shared" / "data" / "tdc_admet_group"))
    a = ap.parse_args()
    rows = []
    for task in a.tasks:
        for seed in a.seeds:
            for mode in ("refit", "folds"):
                s, sec = score_mode(task, seed, mode, a.preset, a.data_dir)
                rows.append({"task": task, "seed": seed, "mode": mode, "score": s, "seconds": round(sec, 1)})
                print(rows[-1], flush=True)
    out = HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "final_mode.json").write_text(json.dumps({"preset": a.preset, "rows": rows}, indent=2))
    lines = ["| task | metric | refit (mean over seeds) | folds | seeds |", "|---|---|---|---|---|"]
    for task in a.tasks:
        m = {mode: np.mean([r["score"] for r in rows if r["task"] == task and r["mode"] == mode])
             for mode in ("refit", "folds")}
        lines.append(f"| {task} | {tdc.TASKS[task].metric} | {m['refit']:.3f} | {m['folds']:.3f} | {len(a.seeds)} |")
    (out / "final_mode.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
