"""Count/bit fingerprints: Morgan (ECFP/FCFP), Avalon, ErG, MACCS."""
from __future__ import annotations

import numpy as np

from uniqsar.featurize.base import Featurizer
from uniqsar.registry import register_featurizer


@register_featurizer
class MorganCount(Featurizer):
    """Hashed Morgan count fingerprint (ECFP-like; ``features=True`` gives FCFP)."""

    key = "morgan_count"
    defaults = {"radius": 2, "n_bits": 2048, "features": False, "chirality": False}

    def featurize_mol(self, mol):
        from rdkit.Chem import rdFingerprintGenerator as G

        p = self.params
        gen = G.GetMorganGenerator(
            radius=p["radius"], fpSize=p["n_bits"], includeChirality=p["chirality"],
            atomInvariantsGenerator=G.GetMorganFeatureAtomInvGen() if p["features"] else None,
        )
        return gen.GetCountFingerprintAsNumPy(mol).astype(np.float32)


@register_featurizer
class AvalonCount(Featurizer):
    key = "avalon_count"
    defaults = {"n_bits": 1024}

    def featurize_mol(self, mol):
        from rdkit.Avalon import pyAvalonTools

        fp = pyAvalonTools.GetAvalonCountFP(mol, nBits=self.params["n_bits"])
        out = np.zeros(self.params["n_bits"], dtype=np.float32)
        for idx, v in fp.GetNonzeroElements().items():
            out[idx] = v
        return out


@register_featurizer
class ErG(Featurizer):
    """Extended reduced-graph pharmacophore fingerprint (315 floats)."""

    key = "erg"

    def featurize_mol(self, mol):
        from rdkit.Chem import rdReducedGraphs

        return np.asarray(rdReducedGraphs.GetErGFingerprint(mol), dtype=np.float32)


@register_featurizer
class MACCS(Featurizer):
    key = "maccs"

    def featurize_mol(self, mol):
        from rdkit.Chem import MACCSkeys

        return np.asarray(list(MACCSkeys.GenMACCSKeys(mol)), dtype=np.float32)
