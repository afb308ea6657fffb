"""On-disk feature cache keyed by featurizer identity + canonical SMILES.

Layout: ``<root>/<featurizer.cache_id>/<shard>.npz`` with arrays ``smiles`` (unicode) and ``X``
(float32). Only missing molecules are computed; new rows go to a new shard written atomically
(temp file + rename), so a killed run leaves no half-written shard and concurrent processes
can share a cache (the worst case is a molecule computed twice).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from uniqsar.featurize.base import Featurizer


def default_cache_dir() -> Path:
    env = os.environ.get("UNIQSAR_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "uniqsar" / "features"


class FeatureCache:
    def __init__(self, root=None, enabled: bool = True):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.last_hits = 0
        self.last_misses = 0

    def _load(self, folder: Path) -> dict[str, np.ndarray]:
        table: dict[str, np.ndarray] = {}
        if not folder.is_dir():
            return table
        for shard in sorted(folder.glob("*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as z:
                    for s, row in zip(z["smiles"].tolist(), z["X"]):
                        table[s] = row
            except Exception:  # a corrupt shard is ignored and recomputed
                continue
        return table

    def _write(self, folder: Path, smiles: list[str], X: np.ndarray) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256("\n".join(smiles).encode()).hexdigest()[:16]
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, smiles=np.asarray(smiles, dtype=str), X=X.astype(np.float32))
        os.replace(tmp, folder / f"{name}.npz")

    def rate(self, featurizer: Featurizer) -> float | None:
        """Seconds per molecule recorded the last time this featurizer computed molecules here (None: never)."""
        try:
            return float(json.loads((self.root / "rates.json").read_text())[featurizer.cache_id])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def record_rate(self, featurizer: Featurizer, seconds: float, n: int) -> None:
        """Remember how fast ``featurizer`` computed ``n`` molecules (per process; for time-budget planning)."""
        if not self.enabled or n < 20:
            return
        path = self.root / "rates.json"
        try:
            rates = json.loads(path.read_text()) if path.is_file() else {}
            rates[featurizer.cache_id] = seconds / n
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(rates, fh, indent=1)
            os.replace(tmp, path)
        except (OSError, ValueError):  # a rate is a planning hint, never worth failing a fit for
            pass

    def missing(self, featurizer: Featurizer, smiles: Sequence[str]) -> list[str]:
        """The distinct molecules of ``smiles`` that :meth:`get` would compute (all of them when disabled)."""
        table = self._load(self.root / featurizer.cache_id) if self.enabled else {}
        return list(dict.fromkeys(s for s in smiles if s not in table))

    def get(self, featurizer: Featurizer, smiles: Sequence[str], n_jobs: int = 1) -> np.ndarray:
        """Features for ``smiles`` (canonical), computing and storing only the missing ones."""
        smiles = list(smiles)
        if not self.enabled:
            self.last_hits, self.last_misses = 0, len(smiles)
            return featurizer.compute(smiles, n_jobs=n_jobs)
        folder = self.root / featurizer.cache_id
        table = self._load(folder)
        missing = list(dict.fromkeys(s for s in smiles if s not in table))
        self.last_hits = len(smiles) - sum(1 for s in smiles if s not in table)
        self.last_misses = len(missing)
        if missing:
            t0 = time.time()
            X_new = featurizer.compute(missing, n_jobs=n_jobs)
            self.record_rate(featurizer, (time.time() - t0) * max(1, n_jobs), len(missing))
            if X_new.shape[1] > 0:
                self._write(folder, missing, X_new)
            table.update(zip(missing, X_new))
        dims = {row.shape[0] for row in table.values() if row.shape[0] > 0}
        dim = max(dims) if dims else 0
        out = np.full((len(smiles), dim), np.nan, dtype=np.float32)
        for i, s in enumerate(smiles):
            row = table[s]
            if row.shape[0] == dim:
                out[i] = row
        return out
