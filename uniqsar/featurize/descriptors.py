"""RDKit 2D descriptors: the full ``Descriptors._descList`` (or a named subset)."""
from __future__ import annotations

import numpy as np

from uniqsar.featurize.base import Featurizer
from uniqsar.registry import register_featurizer


def descriptor_names() -> list[str]:
    from rdkit.Chem import Descriptors

    return [name for name, _ in Descriptors._descList]


@register_featurizer
class RDKitDescriptors(Featurizer):
    """All RDKit 2D descriptors. Values that overflow or fail are NaN (GBDTs handle NaN;
    linear learners impute). The list depends on the RDKit version, which the run records."""

    key = "rdkit_desc"
    chunk_size = 64

    def featurize_mol(self, mol):
        from rdkit.Chem import Descriptors

        out = np.empty(len(Descriptors._descList), dtype=np.float64)
        for i, (_, fn) in enumerate(Descriptors._descList):
            try:
                out[i] = fn(mol)
            except Exception:
                out[i] = np.nan
        out[~np.isfinite(out)] = np.nan
        return out
