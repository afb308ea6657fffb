"""Build a learner's input from the recipe's featurizers (through the disk cache)."""
from __future__ import annotations

import time

import numpy as np

from uniqsar.featurize.cache import FeatureCache
from uniqsar.registry import get_featurizer
from uniqsar.util import log


class FeatureStore:
    """Computes each featurizer alias once per set of molecules and stacks them on demand."""

    def __init__(self, specs: dict[str, dict], cache: FeatureCache, n_jobs: int = 1, verbose: bool = True):
        self.specs = specs  # alias -> {"key": ..., "params": {...}}
        self.cache = cache
        self.n_jobs = n_jobs
        self.verbose = verbose
        self._memo: dict[tuple[str, int], np.ndarray] = {}
        self.dims: dict[str, int] = {}
        self.notes: dict[str, dict] = {}  # alias -> what the featurizer reports about the molecules (e.g. crops)

    def featurizer(self, alias: str):
        spec = self.specs[alias]
        return get_featurizer(spec["key"], **spec.get("params", {}))

    def get(self, alias: str, smiles) -> np.ndarray:
        smiles = list(smiles)
        key = (alias, hash(tuple(smiles)))
        if key not in self._memo:
            t0 = time.time()
            feat = self.featurizer(alias)
            X = self.cache.get(feat, smiles, n_jobs=self.n_jobs)
            notes = dict(feat.notes(smiles)) if hasattr(feat, "notes") else {}
            failed = np.flatnonzero(np.isnan(X).all(axis=1)) if X.shape[1] else np.arange(0)
            if len(failed):  # a featurizer that failed on a molecule gives it a NaN row (cached like any row)
                notes.update(n_failed=int(len(failed)), failed_examples=[smiles[i] for i in failed[:5]])
            if notes:
                self.notes[alias] = notes
            if self.verbose:
                log(f"featurized {alias}: {len(smiles)} molecules, {X.shape[1]} features "
                    f"({self.cache.last_hits} from cache, {self.cache.last_misses} computed) in {time.time() - t0:.1f} s"
                    + (f"; {len(failed)} molecule(s) could not be featurized (all-NaN rows, missing values to the "
                       f"learners; e.g. {smiles[failed[0]]})" if len(failed) else ""))
            self.dims[alias] = X.shape[1]
            self._memo[key] = X
        return self._memo[key]

    def matrix(self, aliases, smiles) -> np.ndarray:
        if not aliases:  # learners that take SMILES themselves
            return np.asarray(list(smiles), dtype=object)
        return np.hstack([self.get(a, smiles) for a in aliases]).astype(np.float32, copy=False)
