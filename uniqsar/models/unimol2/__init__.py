"""Uni-Mol2 (two-track molecular transformer): config, model, weights, features and embeddings.

Importing this package is cheap; RDKit is only needed by `features` / `embed`.
"""

from .config import SIZES, UniMol2Config, get_config, infer_config
from .model import UniMol2, init_bert_params
from .weights import (
    UniMol2CheckpointError,
    UniMol2WeightsNotFound,
    load_unimol2,
    random_unimol2,
    save_checkpoint,
)


def embed_smiles(*args, **kwargs):
    """See uniqsar.models.unimol2.embed.embed_smiles (imported lazily: it needs RDKit)."""
    from .embed import embed_smiles as _embed

    return _embed(*args, **kwargs)


__all__ = [
    "SIZES", "UniMol2Config", "get_config", "infer_config", "UniMol2", "init_bert_params", "load_unimol2",
    "random_unimol2", "save_checkpoint", "UniMol2WeightsNotFound", "UniMol2CheckpointError", "embed_smiles",
]
