"""Linear learner vs the constant predictor (issue 17 item 4): scaffold 5-fold CV MAE for a grid of alphas.

For each TDC task (first --n training molecules, canonical standardization, default-preset features ecfp + avalon +
desc) prints/records the CV MAE of the mean predictor (training-fold mean) and of the linear learner at each alpha,
for the current code and, with --ref COMMIT, for uniqsar/models/linear.py as it was at COMMIT (its own alpha scale).

    python benchmarks/linear/floor.py --tasks solubility_aqsoldb caco2_wang half_life_obach --n 1500 \
        --ref 1bc4358 --out benchmarks/linear/results/floor.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from uniqsar.util import source_commit  # noqa: E402

from uniqsar.data.split import make_folds  # noqa: E402
from uniqsar.data.standardize import standardize_many  # noqa: E402
from uniqsar.featurize.cache import FeatureCache  # noqa: E402
from uniqsar.featurize.matrix import FeatureStore  # noqa: E402
from uniqsar.metrics import score  # noqa: E402
from uniqsar.models.linear import Linear  # noqa: E402

DATA = Path("/work/shared/data/tdc_admet_group")
SPECS = {"ecfp": {"key": "morgan_count", "params": {"radius": 2, "n_bits": 2048}},
         "avalon": {"key": "avalon_count", "params": {"n_bits": 1024}}, "desc": {"key": "rdkit_desc", "params": {}}}
LOG_TASKS = {"half_life_obach", "vdss_lombardo", "clearance_hepatocyte_az", "clearance_microsome_az"}  # as `auto`


def ref_learner(commit: str):
    """The Linear class of ``commit`` (read with git show; its registry decorator is left out)."""
    src = subprocess.run(["git", "show", f"{commit}:uniqsar/models/linear.py"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.replace("@register_learner\n", "")
    mod = types.ModuleType("linear_ref")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(src)
    mod.__file__ = fh.name
    exec(compile(src, fh.name, "exec"), mod.__dict__)  # our own repository's code at an older commit
    return mod.Linear


def cv_mae(cls, alpha, X, y, folds):
    oof = np.zeros(len(y))
    for k in np.unique(folds):
        m = cls("regression", seed=0, alpha=alpha).fit(X[folds != k], y[folds != k])
        oof[folds == k] = m.predict(X[folds == k])
    return float(score("mae", y, oof))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=["solubility_aqsoldb", "caco2_wang", "half_life_obach"])
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--alphas", default="1e-3,1e-2,1e-1,1,10,100", help="current code (per-molecule penalty)")
    p.add_argument("--ref", help="commit whose linear.py to compare with")
    p.add_argument("--ref-alphas", default="1e-2,1e-1,1,10,100,1e3,1e4", help="the old search range [1e-2, 1e4]")
    p.add_argument("--noise", action="store_true", help="also each task with its target replaced by N(0, 1) noise")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    commit = source_commit()
    result = {"command": " ".join(["python", *sys.argv]), "commit": commit, "ref": a.ref, "tasks": {}}
    old = ref_learner(a.ref) if a.ref else None
    for task in a.tasks:
        df = pd.read_csv(DATA / task / "train_val.csv").head(a.n)
        canon, _ = standardize_many(df["Drug"], mode="canonical")
        keep = np.array([c is not None for c in canon])
        smiles = [c for c in canon if c]
        y0 = df["Y"].to_numpy(float)[keep]
        X = FeatureStore(SPECS, FeatureCache(None), verbose=False).matrix(["ecfp", "avalon", "desc"], smiles)
        folds = make_folds(smiles, 5, 1, "scaffold")
        variants = {task: np.log10(1 + y0) if task in LOG_TASKS else y0}
        if a.noise:
            variants[f"{task} (noise target)"] = np.random.default_rng(0).normal(size=len(y0))
        for name, y in variants.items():
            base = np.zeros(len(y))
            for k in np.unique(folds):
                base[folds == k] = y[folds != k].mean()
            t0 = time.time()
            row = {"n": len(y), "n_features": X.shape[1], "mean_predictor_mae": float(score("mae", y, base)),
                   "current": {al: cv_mae(Linear, float(al), X, y, folds) for al in a.alphas.split(",")}}
            if old is not None:
                row["ref"] = {al: cv_mae(old, float(al), X, y, folds) for al in a.ref_alphas.split(",")}
            row["seconds"] = round(time.time() - t0, 1)
            result["tasks"][name] = row
            print(name, json.dumps(row), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
