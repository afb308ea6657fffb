"""Featurizer interface.

A featurizer is stateless: a registry ``key``, a ``version`` (bump it when the output changes),
and JSON-able ``params``. ``compute(smiles)`` maps standardized canonical SMILES to a float32
matrix ``(n, dim)``; a row that cannot be computed is all-NaN (never dropped). Subclasses either
implement ``featurize_mol`` (one RDKit molecule -> 1-D vector; parallelized here over molecules)
or override ``compute`` for batched work (e.g. neural embeddings).
"""
from __future__ import annotations

import hashlib
import importlib
import json
from typing import Any, ClassVar, Sequence

import numpy as np


class Featurizer:
    key: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    defaults: ClassVar[dict[str, Any]] = {}
    #: rows per process-pool task; featurizers that are fast per molecule want big chunks
    chunk_size: ClassVar[int] = 256
    #: rough CPU seconds per molecule, for planning a time budget before any rate is measured (0: unknown,
    #: measured on a few molecules; once computed, the measured rate is recorded in the feature cache)
    seconds_per_molecule: ClassVar[float] = 0.0
    #: the conformance tests build the class with these parameters (a tiny, fast configuration)
    test_params: ClassVar[dict[str, Any]] = {}
    #: True: the output comes from weights with an identity (``weights_identity``), recorded in the run manifest
    needs_weights: ClassVar[bool] = False
    #: an optional package imported inside the methods; the conformance tests skip the class where it is missing
    requires_package: ClassVar[str | None] = None
    #: parameters that do not change the output (batch size, device): left out of ``cache_id``
    _not_identity: ClassVar[tuple[str, ...]] = ()
    #: the name under ``uniqsar embed --model`` (None: not offered there)
    embed_name: ClassVar[str | None] = None

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"featurizer {self.key!r} got unknown parameter(s) {sorted(unknown)}; "
                f"allowed: {sorted(self.defaults)}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}

    # -- identity ---------------------------------------------------------------------------
    @property
    def cache_id(self) -> str:
        """Stable identity of the output: key + version + hash of the params (``_not_identity`` left out)."""
        params = {k: v for k, v in self.params.items() if k not in self._not_identity}
        blob = json.dumps(params, sort_keys=True, default=str)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
        return f"{self.key}-v{self.version}-{digest}"

    def weights_identity(self) -> dict | None:
        """JSON identity of the weights the output comes from: ``kind`` ("file" | "random"), ``name``,
        ``sha256`` (files), ``provenance`` (``uniqsar/models/provenance.py``). None: no weights."""
        return None

    def describe_weights(self, ident: dict) -> str:
        """One line about ``weights_identity()`` for ``uniqsar embed``."""
        return str(ident.get("path") or ident.get("name") or ident.get("kind"))

    def spec(self) -> dict[str, Any]:
        return {"key": self.key, "version": self.version, "params": dict(self.params)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    # -- computation ------------------------------------------------------------------------
    def featurize_mol(self, mol) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def dim(self) -> int:
        """Output width, found by featurizing a probe molecule (cached per instance)."""
        if getattr(self, "_dim", None) is None:
            from rdkit import Chem

            self._dim = int(np.asarray(self.featurize_mol(Chem.MolFromSmiles("CC(=O)Nc1ccccc1"))).shape[0])
        return self._dim

    def _compute_chunk(self, smiles: Sequence[str]) -> np.ndarray:
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        rows = []
        for smi in smiles:
            mol = Chem.MolFromSmiles(smi)
            if mol is None:
                rows.append(None)
                continue
            try:
                rows.append(np.asarray(self.featurize_mol(mol), dtype=np.float64))
            except Exception:  # a featurizer failing on one molecule must not kill the run
                rows.append(None)
        dim = next((r.shape[0] for r in rows if r is not None), None)
        if dim is None:
            dim = self.dim()
        out = np.full((len(smiles), dim), np.nan, dtype=np.float32)
        for i, r in enumerate(rows):
            if r is not None:
                with np.errstate(over="ignore", invalid="ignore"):
                    out[i] = np.clip(r, -3.0e38, 3.0e38)  # float32-safe; inf -> large, NaN kept
        return out

    def compute(self, smiles: Sequence[str], n_jobs: int = 1) -> np.ndarray:
        smiles = list(smiles)
        if not smiles:
            return np.zeros((0, 0), dtype=np.float32)
        size = self.chunk_size
        chunks = [smiles[i : i + size] for i in range(0, len(smiles), size)]
        if n_jobs == 1 or len(chunks) == 1:
            parts = [self._compute_chunk(c) for c in chunks]
        else:
            from joblib import Parallel, delayed

            parts = Parallel(n_jobs=n_jobs)(delayed(self._compute_chunk)(c) for c in chunks)
        dim = max(p.shape[1] for p in parts)
        parts = [p if p.shape[1] == dim else np.full((len(p), dim), np.nan, np.float32) for p in parts]
        return np.concatenate(parts, axis=0)


class PretrainedFeaturizer(Featurizer):
    """A featurizer that embeds with neural weights, chosen by the parameters ``weights``, ``seed`` and ``arch``
    and resolved by ``pretrained_module``, which provides ``identity(weights, seed, arch)``,
    ``identity_digest(identity)`` and ``describe(identity)``. ``cache_id`` holds the weights' digest in place of
    the ``_weights_params``, so cached features follow the weights, not the name they were given."""

    needs_weights = True
    pretrained_module: ClassVar[str] = ""
    _weights_params: ClassVar[tuple[str, ...]] = ("weights", "arch")

    def pretrained(self):
        return importlib.import_module(self.pretrained_module)

    def weights_identity(self) -> dict:
        return self.pretrained().identity(self.params["weights"], int(self.params["seed"]), self.params["arch"])

    def describe_weights(self, ident: dict) -> str:
        return self.pretrained().describe(ident)

    @property
    def cache_id(self) -> str:
        core = {k: v for k, v in self.params.items() if k not in self._not_identity and k not in self._weights_params}
        blob = json.dumps({"params": core, "weights": self.pretrained().identity_digest(self.weights_identity())},
                          sort_keys=True, default=str)
        return f"{self.key}-v{self.version}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
