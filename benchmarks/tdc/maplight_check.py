"""Diagnostic: MapLight's recipe done directly (no uniqsar pipeline) on one task/seed.

Isolates uniqsar-pipeline differences (SMILES standardization, duplicate merging, 217 vs 200
RDKit descriptors, no target StandardScaler) from environment differences (RDKit / CatBoost
versions) when ``run.py --preset maplight`` does not reproduce the published MapLight numbers.

    python benchmarks/tdc/maplight_check.py caco2_wang 1 [--desc maplight200|all] [--standardize] [--dedupe]

Recipe as described in tdc.md section 5 / arXiv 2310.00174: hashed Morgan counts r=2 1024 +
Avalon counts 1024 + ErG + RDKit descriptors on the raw TDC SMILES; CatBoost defaults with
random_strength=2, random_seed=seed; regression: MAE loss on y shifted by min(y, 0), log10(1+y)
for the 4 log tasks, then standardized.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import data_dir  # noqa: E402
from uniqsar.data.tdc import TASKS, evaluate, load_task  # noqa: E402

# The 200 RDKit descriptor names MapLight uses (RDKit 2022-era _descList minus nothing; the
# current _descList adds AvgIpc, BCUT2D_*, SPS, NumAmideBonds, ... and has 217).
_NOT_IN_MAPLIGHT_PREFIX = ("BCUT2D_",)
_NOT_IN_MAPLIGHT = {"AvgIpc", "SPS", "NumAmideBonds", "NumAtomStereoCenters", "NumBridgeheadAtoms",
                    "NumHeterocycles", "NumSpiroAtoms", "NumUnspecifiedAtomStereoCenters", "Phi"}


def maplight_descriptor_names() -> list[str]:
    from rdkit.Chem import Descriptors

    return [n for n, _ in Descriptors._descList
            if n not in _NOT_IN_MAPLIGHT and not n.startswith(_NOT_IN_MAPLIGHT_PREFIX)]


def features(smiles: list[str], desc: str) -> np.ndarray:
    from rdkit import Chem, DataStructs, RDLogger
    from rdkit.Avalon.pyAvalonTools import GetAvalonCountFP
    from rdkit.Chem import Descriptors, rdReducedGraphs
    from rdkit.Chem.rdMolDescriptors import GetHashedMorganFingerprint

    RDLogger.DisableLog("rdApp.*")
    names = maplight_descriptor_names() if desc == "maplight200" else [n for n, _ in Descriptors._descList]
    fns = dict(Descriptors._descList)
    rows = []
    for s in smiles:
        m = Chem.MolFromSmiles(s)
        if m is None:  # this RDKit cannot parse it: all features missing (CatBoost takes NaN)
            rows.append(None)
            continue
        parts = []
        for fp in (GetHashedMorganFingerprint(m, radius=2, nBits=1024), GetAvalonCountFP(m, nBits=1024)):
            a = np.zeros((0,), dtype=np.float64)
            DataStructs.ConvertToNumpyArray(fp, a)
            parts.append(a)
        parts.append(np.asarray(rdReducedGraphs.GetErGFingerprint(m), dtype=np.float64))
        parts.append(np.array([fns[n](m) for n in names], dtype=np.float64))
        rows.append(np.concatenate(parts))
    width = next(len(r) for r in rows if r is not None)
    return np.vstack([np.full(width, np.nan) if r is None else r for r in rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task")
    ap.add_argument("seed", type=int)
    ap.add_argument("--desc", choices=["maplight200", "all"], default="maplight200")
    ap.add_argument("--no-scaler", action="store_true", help="skip MapLight's target StandardScaler")
    ap.add_argument("--data-dir")
    args = ap.parse_args(argv)
    import catboost as cb

    info = TASKS[args.task]
    tv, test = load_task(args.task, data_dir(args.data_dir))
    t0 = time.time()
    n_desc = len(maplight_descriptor_names()) if args.desc == "maplight200" else None
    X, Xt = features(tv["Drug"].tolist(), args.desc), features(test["Drug"].tolist(), args.desc)
    y = tv["Y"].to_numpy(float)
    common = dict(random_strength=2, random_seed=args.seed, verbose=0, allow_writing_files=False)
    if info.task == "binary":
        model = cb.CatBoostClassifier(**common).fit(X, y)
        pred = model.predict_proba(Xt)[:, 1]
    else:
        off = min(y.min(), 0.0)
        z = y - off
        if info.log_scale:
            z = np.log10(z + 1.0)
        mu, sd = (0.0, 1.0) if args.no_scaler else (z.mean(), z.std())
        model = cb.CatBoostRegressor(loss_function="MAE", **common).fit(X, (z - mu) / sd)
        p = model.predict(Xt) * sd + mu
        if info.log_scale:
            p = 10.0 ** p - 1.0
        pred = p + off
    rec = {"task": args.task, "seed": args.seed, "desc": args.desc, "n_desc": n_desc, "scaler": not args.no_scaler,
           "n_features": int(X.shape[1]), "score": evaluate(args.task, test["Y"].to_numpy(), pred),
           "seconds": round(time.time() - t0, 1)}
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
