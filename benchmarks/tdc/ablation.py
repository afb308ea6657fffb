"""Side-by-side test scores inside one TDC run: the ensemble uniqsar chose vs the same run's ensemble
before backward elimination (``ensemble.json`` -> ``without_elimination``), so the elimination step is
judged on the test set from the same tuned learners, without a second fit of the whole pipeline."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.data import transform as target_transform
from uniqsar.featurize.cache import FeatureCache
from uniqsar.featurize.matrix import FeatureStore
from uniqsar.io.artifacts import read_json, write_json
from uniqsar.io.layout import safe_name
from uniqsar.pipeline.predict import Run
from uniqsar.registry import get_learner_class


def predict_without_elimination(run_dir: Path, canonical: list[str], seed: int, cache_dir=None,
                                target: str = "Y") -> np.ndarray | None:
    """Predictions for ``canonical`` of the ensemble before backward elimination, or None when nothing was
    dropped. Members the final ensemble lacks are refitted on the run's training molecules (its ``oof.csv``)
    with their tuned parameters, exactly as the pipeline's ``final.mode = "refit"`` does, in a temporary
    copy of the run directory."""
    manifest = read_json(run_dir / "manifest.json")
    tdir = manifest["targets"][target]["dir"]
    ens = read_json(run_dir / tdir / "ensemble.json")
    before = ens.get("without_elimination")
    if not before:
        return None
    if ens["final"] != "refit":
        raise ValueError(f"{run_dir}: the elimination ablation supports final.mode = 'refit' only")
    copy = run_dir.parent / f"{run_dir.name}.without_elimination"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("optuna.journal*", "trials"))
    try:
        fitted = {m["id"]: m["path"] for m in ens["members"]}
        oof = pd.read_csv(run_dir / tdir / "oof.csv")
        smiles, y = oof["smiles"].tolist(), target_transform.forward(ens["transform"], oof["y"].to_numpy())
        store = FeatureStore(manifest["featurizers"], FeatureCache(cache_dir), n_jobs=1, verbose=False)
        members = []
        for m in before["members"]:
            path = fitted.get(m["id"])
            if path is None:
                path = f"{tdir}/learners_without_elimination/{safe_name(m['id'].replace('#', '_'))}"
                learner = get_learner_class(m["learner"])(ens["task"], seed=seed, n_threads=1, **m["params"])
                learner.fit(store.matrix(m["features"], smiles), y)
                learner.save(copy / path / "full")
            members.append({**m, "path": path})
        write_json(copy / tdir / "ensemble.json", {**ens, "members": members})
        return Run(copy, cache_dir=cache_dir).predict_canonical(canonical)[target]
    finally:
        shutil.rmtree(copy, ignore_errors=True)
