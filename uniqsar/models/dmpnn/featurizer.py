"""Frozen D-MPNN encoder vectors as a featurizer (`dmpnn_emb`): canonical SMILES -> (n, hidden) float32.

The encoder (``weights``: "default" | "random" | checkpoint path, see pretrained.py) runs in eval mode on the
molecular graph; a molecule's vector is its readout (the checkpoint's aggregation: "norm" = sum over atoms / 100
for the shipped weights; ``pooling = "mean"`` divides by the atom count instead). Molecules are encoded one batch
at a time, but nothing crosses molecules (no batch norm, no padding), so a vector does not depend on its batch.
Unparsable SMILES give NaN rows. The cache id includes the weights identity (file sha256, or config + seed of a
random init).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from uniqsar.featurize.base import PretrainedFeaturizer
from uniqsar.registry import register_featurizer

POOLINGS = ("checkpoint", "mean")


@register_featurizer
class DMPNNEmbedding(PretrainedFeaturizer):
    key = "dmpnn_emb"
    version = "1"
    defaults: dict[str, Any] = {
        "weights": "default",  # default | random | checkpoint path (pretrained.py)
        "arch": None,  # architecture overrides for random inits (tests)
        "pooling": "checkpoint",  # checkpoint: the readout the encoder was trained with; mean: per-atom mean
        "seed": 0,  # random-init seed
        "batch_size": 256,
    }
    pretrained_module = "uniqsar.models.dmpnn.pretrained"
    embed_name = "dmpnn"  # uniqsar embed --model dmpnn
    test_params: dict[str, Any] = {"weights": "random", "arch": {"hidden_size": 16, "depth": 2}}
    _not_identity = ("batch_size",)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["pooling"] not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.params['pooling']!r}")
        self._loaded = None

    def encoder(self):
        if self._loaded is None:
            from .pretrained import load_encoder

            self._loaded = load_encoder(self.params["weights"], int(self.params["seed"]), self.params["arch"])
        return self._loaded

    def dim(self) -> int:
        return int(self.encoder()[1]["hidden_size"])

    def compute(self, smiles: Sequence[str], n_jobs: int = 1) -> np.ndarray:
        return encode_smiles(self.encoder()[0], smiles, int(self.params["batch_size"]), n_jobs,
                             mean=self.params["pooling"] == "mean")


def encode_smiles(encoder, smiles: Sequence[str], batch_size: int = 256, n_threads: int = 1,
                  mean: bool = False) -> np.ndarray:
    """(n, hidden) float32 readouts of ``encoder`` (a DMPNNModel); NaN rows where a SMILES does not parse."""
    import torch

    from uniqsar.featurize.graph import collate_graphs, smiles_to_graphs

    smiles = [str(s) for s in smiles]
    out = np.full((len(smiles), encoder.W_h.in_features), np.nan, np.float32)
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, n_threads))
    try:
        with torch.inference_mode():
            for start in range(0, len(smiles), batch_size):
                graphs = smiles_to_graphs(smiles[start:start + batch_size])
                rows = [j for j, g in enumerate(graphs) if g is not None]
                if not rows:
                    continue
                b = {k: torch.from_numpy(v) for k, v in collate_graphs([graphs[j] for j in rows]).items()}
                z = encoder.encode_batch(b)
                if mean and encoder.aggregation != "mean":  # undo the sum / norm readout, divide by atom count
                    scale = encoder.aggregation_norm if encoder.aggregation == "norm" else 1.0
                    z = z * scale / b["n_atoms"].clamp(min=1).unsqueeze(1).to(z.dtype)
                out[start + np.asarray(rows)] = z.float().numpy()
    finally:
        torch.set_num_threads(old)
    return out
