"""SMILES-transformer embeddings as a featurizer (`smiles_transformer`): canonical SMILES -> (n, 2d) float32.

The pretrained encoder (``weights``: "default" | "random" | checkpoint path, see pretrained.py) runs in eval
mode; a molecule's vector is the pooled final hidden states (``cls+mean``: CLS and the mean over real tokens,
2 x d_model; ``cls`` / ``mean``: d_model). ``n_augment > 1`` averages the vectors of the canonical SMILES and
``n_augment - 1`` randomized SMILES (seeds from (seed, canonical SMILES, k): batch-independent). Unparsable /
untokenizable SMILES give NaN rows. The feature cache key (``cache_id``) includes the weights identity (file
sha256, or config + seed of a random init, and the vocabulary sha256), so new weights never reuse stale
embeddings; ``batch_size`` and ``device`` are not part of it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from uniqsar.featurize.base import PretrainedFeaturizer
from uniqsar.registry import register_featurizer


@register_featurizer
class SmilesTransformerEmbedding(PretrainedFeaturizer):
    key = "smiles_transformer"
    version = "1"
    defaults: dict[str, Any] = {
        "weights": "default",  # see pretrained.py: default | random | checkpoint path
        "arch": None,  # SmilesTransformerConfig overrides for random inits (tests)
        "pooling": "cls+mean",  # cls+mean -> 2d; cls / mean -> d
        "n_augment": 1,  # > 1: average over the canonical + n_augment - 1 randomized SMILES
        "seed": 0,  # random-init seed and randomized-SMILES seed
        "batch_size": 64,
        "device": "cpu",
    }
    pretrained_module = "uniqsar.models.smiles.pretrained"
    embed_name = "smiles_transformer"  # uniqsar embed --model smiles_transformer
    test_params: dict[str, Any] = {"weights": "random", "arch": {"d_model": 32, "n_layers": 1, "n_heads": 2}}
    _not_identity = ("batch_size", "device")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        from .model import POOLINGS

        if self.params["pooling"] not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.params['pooling']!r}")
        if int(self.params["n_augment"]) < 1:
            raise ValueError("n_augment must be >= 1")
        self._loaded = None

    def model(self):
        """(SmilesEncoder in eval mode, SmilesTokenizer), loaded once per instance."""
        if self._loaded is None:
            from .pretrained import load_mlm

            mlm, tok = load_mlm(self.params["weights"], int(self.params["seed"]), self.params["arch"])
            self._loaded = (mlm.encoder.eval(), tok)
        return self._loaded

    def dim(self) -> int:
        d = self.model()[0].cfg.d_model
        return 2 * d if self.params["pooling"] == "cls+mean" else d

    def compute(self, smiles: Sequence[str], n_jobs: int = 1) -> np.ndarray:
        import torch
        from rdkit import Chem, RDLogger

        from uniqsar.featurize.smiles_tokens import randomized_smiles, smiles_seed
        from uniqsar.models.torch_trainer import batches, resolve_device

        from .learner import pad_batch
        from .model import pool

        RDLogger.DisableLog("rdApp.*")
        smiles = list(smiles)
        encoder, tok = self.model()
        p = self.params
        pairs: list[tuple[int, list[int]]] = []
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(str(s)) if s else None
            if mol is None or mol.GetNumAtoms() == 0:
                continue
            can = Chem.MolToSmiles(mol)
            mol = Chem.MolFromSmiles(can)  # canonical atom order: randomized SMILES depend on it
            texts = [can] + [randomized_smiles(mol, 1, seed=smiles_seed(can, int(p["seed"]), k))[0]
                             for k in range(1, int(p["n_augment"]))]
            for text in texts:
                try:
                    pairs.append((i, tok.encode(text, max_len=encoder.cfg.max_len)))
                except ValueError:
                    pass
        dim = self.dim()
        out = np.zeros((len(smiles), dim), np.float64)
        count = np.zeros(len(smiles), np.int64)
        device = resolve_device(str(p["device"]))
        old = torch.get_num_threads()
        torch.set_num_threads(max(1, n_jobs))
        try:
            encoder.to(device)
            with torch.inference_mode():
                for idx in batches([len(ids) for _, ids in pairs], int(p["batch_size"]), None):
                    tokens = pad_batch([pairs[j][1] for j in idx])["tokens"].to(device)
                    vec = pool(encoder(tokens), tokens, p["pooling"]).float().cpu().numpy()
                    for row, j in enumerate(idx):
                        out[pairs[j][0]] += vec[row]
                        count[pairs[j][0]] += 1
        finally:
            encoder.cpu()
            torch.set_num_threads(old)
        X = (out / np.maximum(count, 1)[:, None]).astype(np.float32)
        X[count == 0] = np.nan
        return X
