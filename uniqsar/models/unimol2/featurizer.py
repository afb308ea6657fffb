"""Uni-Mol2 embeddings as a featurizer (`unimol2`): canonical SMILES -> (n, D) float32, NaN rows on failure.

Conformers come from the on-disk conformer cache (conformer_cache.py); the embeddings themselves are cached
by the usual feature cache, keyed by `cache_id`, which includes the weights identity (file sha256, or
config + seed of a random init), so new weights never reuse stale embeddings.

"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from uniqsar.featurize.base import PretrainedFeaturizer
from uniqsar.registry import register_featurizer

POOLINGS = ("cls", "cls+mean")


@register_featurizer
class UniMol2Embedding(PretrainedFeaturizer):
    key = "unimol2"
    version = "2"  # 2: conformers with the ETKDG timeout (conformer protocol etkdg-mmff-v2)
    defaults: dict[str, Any] = {
        "weights": "default",  # see pretrained.py: default | random[:size] | size name | path
        "arch": None,  # UniMol2Config overrides for random inits (tests)
        "pooling": "cls",  # cls -> D; cls+mean -> 2D
        "n_conformers": 1,  # > 1: embeddings of conformers seed..seed+K-1 averaged
        "conformer_seed": 42,  # conformer k uses conformer_seed + k (k = 0: the unimol_tools conformer)
        "batch_size": 32,
        "max_atoms": 128,
        "seed": 0,  # random-init seed and crop seed
        "device": "cpu",
    }
    seconds_per_molecule = 0.05  # ETKDG + MMFF conformer and a forward pass of the small model, 1 CPU core
    # batch_size / device do not change the output (masked, batch-independent forward)
    _not_identity = ("batch_size", "device")
    pretrained_module = "uniqsar.models.unimol2.pretrained"
    _weights_params = ("weights",)  # arch stays in the hashed params (cache ids of earlier versions kept)
    embed_name = "unimol2"  # uniqsar embed --model unimol2
    test_params: dict[str, Any] = {"weights": "random", "pooling": "cls+mean",
                                   "arch": {"layers": 2, "embed_dim": 32, "heads": 2, "pair_dim": 16, "pair_hidden": 4}}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["pooling"] not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.params['pooling']!r}")
        if int(self.params["n_conformers"]) < 1:
            raise ValueError("n_conformers must be >= 1")
        self._model = None

    def dim(self) -> int:
        return self.model().cfg.embed_dim * (2 if self.params["pooling"] == "cls+mean" else 1)

    def model(self):
        if self._model is None:
            from .pretrained import load_backbone

            self._model = load_backbone(self.params["weights"], int(self.params["seed"]), self.params["arch"])
        return self._model

    def notes(self, smiles: Sequence[str]) -> dict:
        """What a run should record about these molecules: how many are cropped to ``max_atoms`` heavy atoms."""
        from rdkit import Chem

        limit = int(self.params["max_atoms"])
        mols = (Chem.MolFromSmiles(s) for s in smiles)
        return {"max_atoms": limit, "n_cropped": sum(1 for m in mols if m is not None and m.GetNumHeavyAtoms() > limit)}

    def compute(self, smiles: Sequence[str], n_jobs: int = 1, return_reasons: bool = False):
        import torch

        from uniqsar.models.torch_trainer import resolve_device

        from .conformer_cache import cached_featurize
        from .embed import embed_features

        smiles = list(smiles)
        p = self.params
        verbose = True  # throttled progress lines from the first molecules on
        n_cropped = self.notes(smiles)["n_cropped"]
        if n_cropped:
            from uniqsar.util import log

            log(f"Uni-Mol2: {n_cropped} of {len(smiles)} molecule(s) have more than {p['max_atoms']} heavy atoms: "
                f"each is embedded from a seeded random subset of {p['max_atoms']} of its atoms")
        feats, reasons = cached_featurize(smiles, n_jobs=max(1, n_jobs), seed=int(p["conformer_seed"]),
                                          n_conformers=int(p["n_conformers"]), max_atoms=int(p["max_atoms"]),
                                          crop_seed=int(p["seed"]), verbose=verbose)
        old = torch.get_num_threads()
        torch.set_num_threads(max(1, n_jobs))
        try:
            X = embed_features(self.model(), feats, batch_size=int(p["batch_size"]), pooling=p["pooling"],
                               device=resolve_device(p["device"]), verbose=verbose)
        finally:
            torch.set_num_threads(old)
        X = np.asarray(X, dtype=np.float32)
        return (X, reasons) if return_reasons else X
