"""Shared harness of the two 3D-sensitive benchmarks (`qm9/run.py`, `compas/run.py`; issue 20 item 4).

Protocol, per seed k:
1. The dataset's molecules, standardized the way `uniqsar fit` does by default ("canonical"); rows that fail
   are dropped and counted. `--pool N` first draws a fixed random pool of N molecules (seed 0, the same pool
   for every seed).
2. Murcko-scaffold split 80/10/10: `uniqsar.data.split.scaffold_folds(smiles, 10, seed=k)` (uniqsar's own CV
   split, size-balanced and grouped by scaffold); a seeded permutation of the ten folds names one fold test,
   one validation and eight train.
3. Subsets for CPU time: `--n-train` molecules drawn (seeded) from the train part, `--n-valid` from the
   validation part and `--n-test` from the test part (0 = all). Every arm of a seed sees the same molecules.
4. Arms, all with fixed hyperparameters (no tuning; the validation part is used only for early stopping of
   the torch learners and never by LightGBM):
   - `lgbm_fp`: uniqsar's `lightgbm` learner (its defaults) on `morgan_count` + `rdkit_desc`, one per target;
   - `lgbm_unimol2`: the same learner on the `unimol2` featurizer (shipped default weights, CLS, 1 conformer);
   - `unimol2_ft`: uniqsar's `unimol2` learner fine-tuned from the shipped default weights;
   - `unimol2_scratch`: the same learner from a seeded random init of the same architecture;
   - `dmpnn`: uniqsar's `dmpnn` learner (its defaults: chemprop's settings, 50 epochs).
   The torch learners fit all targets jointly (task "multitask", one network, masked loss).
5. MAE per target on the test molecules, in the dataset's units.

Each (arm, seed) writes `results/<arm>_seed<k>.json` (command line, commit, versions, sizes, seconds, MAE per
target); a finished file is skipped unless `--force`. `--summarize` writes `results/table.md`.

Features and conformers are cached under `--cache-dir` (default `~/.cache/uniqsar/bench3d`), apart from the
user's own uniqsar cache, because `--embed-timeout` (COMPAS) changes which conformers get computed.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from uniqsar.util import source_commit

ARMS = ("lgbm_fp", "lgbm_unimol2", "unimol2_ft", "unimol2_scratch", "dmpnn")
TORCH_ARMS = ("unimol2_ft", "unimol2_scratch", "dmpnn")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Dataset:
    """What a benchmark script supplies."""

    name: str
    smiles: list  # raw SMILES, one per molecule
    Y: np.ndarray  # (n, T) targets
    targets: list  # column names of Y
    unit: dict  # target -> unit
    source: str
    paper: dict = field(default_factory=dict)  # Uni-Mol2 paper MAEs: {model: {target or group: value}}
    paper_note: str = ""
    groups: dict = field(default_factory=dict)  # name -> targets averaged into one number (QM9 HOMO/LUMO/gap)


# ------------------------------------------------------------------------------------------ provenance
def git_commit() -> str | None:
    """The commit of the uniqsar code that produced a result ("+dirty": uncommitted changes in uniqsar/)."""
    return source_commit()


def versions() -> dict:
    from uniqsar.io.artifacts import package_versions

    return package_versions()


def machine() -> dict:
    """Thread budget, niceness and load: this harness runs on a shared machine (house rule 6)."""
    return {"cpus": os.cpu_count(), "nice": os.nice(0), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "torch_threads": 1, "lightgbm_threads": 1, "load_avg_1m": round(os.getloadavg()[0], 2)}


# ------------------------------------------------------------------------------------------ data + split
def standardize(ds: Dataset, pool: int) -> tuple[list, np.ndarray, dict]:
    """Canonical SMILES (uniqsar's default mode) of the valid rows, optionally a fixed pool of them."""
    from uniqsar.data.standardize import DEFAULT_MODE, standardize_many

    idx = np.arange(len(ds.smiles))
    if pool and pool < len(idx):
        idx = np.sort(np.random.default_rng(0).choice(len(idx), pool, replace=False))
    smiles, reasons = standardize_many([ds.smiles[i] for i in idx], mode=DEFAULT_MODE)
    keep = np.array([s is not None and np.all(np.isfinite(ds.Y[i])) for s, i in zip(smiles, idx)])
    info = {"n_rows": len(ds.smiles), "n_pool": int(len(idx)), "n_dropped": int((~keep).sum()),
            "standardize": DEFAULT_MODE}
    return [s for s, k in zip(smiles, keep) if k], ds.Y[idx[keep]], info


def split(smiles: list, seed: int, cache: Path | None = None) -> np.ndarray:
    """Role per molecule: 0 train, 1 validation, 2 test (80/10/10 by scaffold folds, seeded)."""
    from uniqsar.data.split import scaffold_folds

    folds = None
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if int(z["n"]) == len(smiles):
                folds = z["folds"]
    if folds is None:
        folds = scaffold_folds(smiles, 10, seed)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, folds=folds, n=len(smiles))
    perm = np.random.default_rng(seed).permutation(10)
    roles = np.zeros(len(smiles), np.int64)
    roles[folds == perm[0]] = 2
    roles[folds == perm[1]] = 1
    return roles


def subset(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    idx = np.flatnonzero(mask)
    if n and n < len(idx):
        idx = np.sort(rng.choice(idx, n, replace=False))
    return idx


# ------------------------------------------------------------------------------------------ arms
def _features(keys_params, smiles, n_jobs=1) -> np.ndarray:
    from uniqsar.featurize.cache import FeatureCache
    from uniqsar.registry import get_featurizer

    cache = FeatureCache()
    return np.hstack([cache.get(get_featurizer(k, **p), smiles, n_jobs=n_jobs) for k, p in keys_params])


FEATURES = {"lgbm_fp": [("morgan_count", {}), ("rdkit_desc", {})],
            "lgbm_unimol2": [("unimol2", {"weights": "default"})]}


def run_arm(arm: str, data: dict, targets: list, seed: int, epochs: int) -> tuple[np.ndarray, dict]:
    """Test predictions (n_test, T) of one arm and what it used."""
    from uniqsar.registry import get_learner_class

    tr, va, te = data["train"], data["valid"], data["test"]
    if arm in FEATURES:
        X_tr = _features(FEATURES[arm], tr[0])
        X_te = _features(FEATURES[arm], te[0])
        bad = ~np.isfinite(X_tr).any(axis=1)
        if bad.all():
            raise RuntimeError(f"{arm}: no training molecule could be featurized")
        L = get_learner_class("lightgbm")
        pred = np.column_stack([L("regression", seed=seed, n_threads=1).fit(X_tr, tr[1][:, t]).predict(X_te)
                                for t in range(len(targets))])
        return pred, {"learner": "lightgbm", "params": "defaults", "features": FEATURES[arm],
                      "n_features": int(X_tr.shape[1]), "per_target": True,
                      "n_unfeaturized": {"train": int(bad.sum()), "test": int((~np.isfinite(X_te).any(axis=1)).sum())}}
    joint = len(targets) > 1
    kw = {"task": "multitask" if joint else "regression", "seed": seed, "n_threads": 1}
    if joint:
        kw["target_tasks"] = ["regression"] * len(targets)
    if arm == "dmpnn":
        params = {}
        model = get_learner_class("dmpnn")(**kw, **params)
    else:
        params = {"weights": "default" if arm == "unimol2_ft" else "random", "epochs": epochs,
                  "n_conformers": 1}
        model = get_learner_class("unimol2")(**kw, **params)
    Y_tr, Y_va = (tr[1], va[1]) if joint else (tr[1][:, 0], va[1][:, 0])
    model.fit(np.array(tr[0], dtype=object), Y_tr, np.array(va[0], dtype=object), Y_va)
    pred = np.asarray(model.predict(np.array(te[0], dtype=object)), float).reshape(len(te[0]), -1)
    info = {"learner": model.key, "params": params or "defaults", "joint": joint,
            "best_epoch": getattr(model, "best_epoch_", None), "n_failed_train": getattr(model, "n_failed_", None)}
    if hasattr(model, "weights_identity"):
        ident = model.weights_identity()
        info["weights"] = {k: ident.get(k) for k in ("kind", "name", "sha256") if ident.get(k) is not None}
    return pred, info


# ------------------------------------------------------------------------------------------ main
def parse_args(argv, ds_name: str, defaults: dict) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=f"{ds_name}: 2D vs 3D (Uni-Mol2) arms on a scaffold split")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--n-train", type=int, default=defaults["n_train"], help="train subset size (0 = all)")
    ap.add_argument("--n-valid", type=int, default=defaults["n_valid"], help="validation subset (0 = all)")
    ap.add_argument("--n-test", type=int, default=defaults["n_test"], help="test subset size (0 = all)")
    ap.add_argument("--pool", type=int, default=defaults.get("pool", 0),
                    help="fixed random pool of molecules drawn before the split (0 = the whole set)")
    ap.add_argument("--epochs", type=int, default=defaults["epochs"], help="Uni-Mol2 fine-tuning epochs")
    ap.add_argument("--embed-timeout", type=int, default=defaults.get("embed_timeout", 0),
                    help="whole seconds after which an ETKDG embedding is abandoned (2D fallback); 0 = uniqsar's "
                         "default (uniqsar.models.unimol2.features.EMBED_TIMEOUT_S)")
    ap.add_argument("--cache-dir", default=os.path.expanduser("~/.cache/uniqsar/bench3d"))
    ap.add_argument("--out", default=str(Path(sys.argv[0]).resolve().parent / "results"))
    ap.add_argument("--force", action="store_true", help="rerun finished (arm, seed) pairs")
    ap.add_argument("--summarize", action="store_true", help="only write results/table.md")
    return ap.parse_args(argv)


def _use_cache(args) -> None:
    root = Path(args.cache_dir)
    os.environ["UNIQSAR_CACHE_DIR"] = str(root / "features")
    tag = f"_timeout{args.embed_timeout}" if args.embed_timeout else ""
    os.environ["UNIQSAR_CONFORMER_DIR"] = str(root / f"conformers{tag}")
    if args.embed_timeout:
        _patch_embed_timeout(args.embed_timeout)


def _patch_embed_timeout(timeout: float) -> None:
    """uniqsar's conformer protocol with ETKDG abandoned after `timeout` seconds instead of the product's
    `features.EMBED_TIMEOUT_S` (in this process: conformers are computed here, `--n-jobs 1`). The conformer
    cache's folder name carries the timeout (`conformer_cache.protocol_id()`)."""
    from uniqsar.models.unimol2 import features

    features.EMBED_TIMEOUT_S = int(timeout)  # whole seconds (RDKit takes an unsigned int)


def main(ds: Dataset, argv=None, defaults: dict | None = None) -> None:
    args = parse_args(argv, ds.name, defaults or {})
    out = Path(args.out)
    if args.summarize:
        summarize(ds, out)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _use_cache(args)
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    smiles, Y, info = standardize(ds, args.pool)
    print(f"{ds.name}: {len(smiles)} molecules ({info['n_dropped']} dropped) in {time.time() - t0:.0f}s", flush=True)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    for seed in args.seeds:
        todo = [a for a in args.arms if args.force or not (out / f"{a}_seed{seed}.json").is_file()]
        if not todo:
            continue
        tag = f"pool{args.pool}" if args.pool else "all"
        roles = split(smiles, seed, Path(args.cache_dir) / "splits" / f"{ds.name}_{tag}_seed{seed}.npz")
        rng = np.random.default_rng(1000 + seed)
        parts = {name: subset(roles == r, n, rng) for name, r, n in
                 (("train", 0, args.n_train), ("valid", 1, args.n_valid), ("test", 2, args.n_test))}
        data = {k: ([smiles[i] for i in v], Y[v]) for k, v in parts.items()}
        sizes = {"split_sizes": {k: int((roles == r).sum()) for k, r in (("train", 0), ("valid", 1), ("test", 2))},
                 **{f"n_{k}": len(v) for k, v in parts.items()}}
        for arm in todo:
            t = time.time()
            print(f"{ds.name} seed {seed} {arm}: {sizes}", flush=True)
            pred, used = run_arm(arm, data, ds.targets, seed, args.epochs)
            err = np.abs(pred - data["test"][1])
            result = {
                "dataset": ds.name, "arm": arm, "seed": seed, "command": command, "git_commit": git_commit(),
                "versions": versions(), "machine": machine(), "source": ds.source, "data": info, **sizes,
                "epochs": args.epochs if arm in ("unimol2_ft", "unimol2_scratch") else None,
                "embed_timeout_s": args.embed_timeout or None, "used": used,
                "seconds": round(time.time() - t, 1),
                "mae": {tname: float(np.mean(err[:, j])) for j, tname in enumerate(ds.targets)},
                "units": ds.unit,
                "n_nan_predictions": int(np.isnan(pred).sum()),
            }
            for g, members in ds.groups.items():
                result["mae"][g] = float(np.mean([result["mae"][m] for m in members]))
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{arm}_seed{seed}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
            print(f"  {arm} seed {seed}: {result['seconds']}s  " +
                  "  ".join(f"{k} {v:.4g}" for k, v in result["mae"].items()), flush=True)
    summarize(ds, out)


# ------------------------------------------------------------------------------------------ table
ARM_TEXT = {
    "lgbm_fp": "LightGBM, Morgan counts + RDKit descriptors (2D)",
    "lgbm_unimol2": "LightGBM, Uni-Mol2 embeddings (shipped weights)",
    "unimol2_ft": "Uni-Mol2 fine-tuned (shipped weights)",
    "unimol2_scratch": "Uni-Mol2 from random init",
    "dmpnn": "D-MPNN (2D)",
}


def load_results(out: Path) -> dict:
    res: dict = {}
    for f in sorted(out.glob("*_seed*.json")):
        r = json.loads(f.read_text())
        res.setdefault(r["arm"], {})[r["seed"]] = r
    return res


def summarize(ds: Dataset, out: Path) -> str:
    res = load_results(out)
    cols = list(ds.targets) + list(ds.groups)
    lines = [f"# {ds.name}: MAE on the scaffold test split (mean ± sd over seeds)", "",
             "Written by `--summarize` from the `*_seed*.json` files beside this table; the protocol is in "
             "`../README.md`.", "",
             "| arm | seeds | n_train | n_test | " + " | ".join(f"{c} ({ds.unit.get(c, ds.unit.get(ds.groups.get(c, [''])[0], ''))})"
                                                        for c in cols) + " | s per seed |",
             "|" + "---|" * (len(cols) + 5)]
    means: dict = {}
    for arm in ARMS:
        if arm not in res:
            continue
        runs = [res[arm][s] for s in sorted(res[arm])]
        cells = []
        for c in cols:
            v = np.array([r["mae"][c] for r in runs])
            means.setdefault(arm, {})[c] = float(v.mean())
            cells.append(f"{v.mean():.4g} ± {v.std(ddof=1):.2g}" if len(v) > 1 else f"{v.mean():.4g}")
        ntr = sorted({r["n_train"] for r in runs})
        nte = sorted({r["n_test"] for r in runs})
        secs = np.mean([r["seconds"] for r in runs])
        lines.append(f"| {arm} | {','.join(str(s) for s in sorted(res[arm]))} | {'/'.join(map(str, ntr))} | "
                     f"{'/'.join(map(str, nte))} | " + " | ".join(cells) + f" | {secs:.0f} |")
    for model, vals in ds.paper.items():
        lines.append(f"| paper: {model} | 3 | full | full | " +
                     " | ".join(f"{vals[c]:g}" if c in vals else "" for c in cols) + " | |")
    lines += ["", "Arms: " + "; ".join(f"`{a}` {ARM_TEXT[a]}" for a in ARMS if a in res) + "."]
    if ds.paper_note:
        lines += ["", ds.paper_note]
    verdict = conclusion(res, cols)
    if verdict:
        lines += ["", "**3D against 2D.** " + verdict]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    print(text)
    return text


def conclusion(res: dict, cols: list) -> str:
    """Per target: the best 3D arm against the best 2D arm (by mean MAE over seeds). It "wins" / "loses" only when
    it is better / worse on every seed both have run (the arms of a seed share their test molecules); otherwise
    the difference is within the seed-to-seed spread and is called a tie."""
    two = [a for a in ("lgbm_fp", "dmpnn") if a in res]
    three = [a for a in ("lgbm_unimol2", "unimol2_ft", "unimol2_scratch") if a in res]
    if not two or not three:
        return ""
    mean = lambda a, c: float(np.mean([r["mae"][c] for r in res[a].values()]))  # noqa: E731
    parts = []
    for c in cols:
        b2 = min(two, key=lambda a: mean(a, c))
        b3 = min(three, key=lambda a: mean(a, c))
        seeds = sorted(set(res[b2]) & set(res[b3]))
        diff = [res[b3][s]["mae"][c] - res[b2][s]["mae"][c] for s in seeds]
        word = ("wins" if all(d < 0 for d in diff) else "loses" if all(d > 0 for d in diff) else "ties") \
            if len(seeds) > 1 else ("is ahead" if diff and diff[0] < 0 else "is behind") + " (one seed)"
        rel = mean(b3, c) / mean(b2, c) - 1
        parts.append(f"{c}: 3D {word} (best 3D `{b3}` {mean(b3, c):.4g} vs best 2D `{b2}` {mean(b2, c):.4g}, "
                     f"{rel:+.0%}; {sum(d < 0 for d in diff)} of {len(seeds)} seeds better)")
    return "; ".join(parts) + "."
