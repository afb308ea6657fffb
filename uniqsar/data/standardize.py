"""Parse and standardize SMILES. Every input gets either a canonical SMILES or a reason.

Standardization (RDKit MolStandardize): cleanup/normalize functional groups, keep the largest
organic fragment (drops counter-ions and solvents of salts), neutralize charges where a neutral
form exists (quaternary N and zwitterion-free permanent charges stay), canonical isomeric SMILES
(stereo and isotopes are kept: deuteration changes metabolism).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

MAX_HEAVY_ATOMS = 1000  # beyond this a "molecule" is almost surely a polymer/crystal record


@lru_cache(maxsize=1)
def _tools():
    from rdkit import RDLogger
    from rdkit.Chem.MolStandardize import rdMolStandardize as ms

    RDLogger.DisableLog("rdApp.*")
    return ms.LargestFragmentChooser(preferOrganic=True), ms.Uncharger(canonicalOrder=True)


def _isna(value) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def standardize_one(smiles) -> tuple[str | None, str | None]:
    """Return ``(canonical_smiles, None)`` or ``(None, reason)``; never raises."""
    from rdkit import Chem
    from rdkit.Chem.MolStandardize import rdMolStandardize as ms

    if smiles is None or (not isinstance(smiles, (str, bytes, list, tuple, dict)) and _isna(smiles)):
        return None, "empty SMILES"
    if not isinstance(smiles, str):
        return None, f"invalid SMILES: not a string ({type(smiles).__name__})"
    smiles = smiles.strip()
    if not smiles:
        return None, "empty SMILES"
    chooser, uncharger = _tools()
    try:
        mol = Chem.MolFromSmiles(smiles)
    except Exception:  # pragma: no cover - RDKit returns None rather than raising
        mol = None
    if mol is None:
        return None, "invalid SMILES: could not parse"
    if mol.GetNumAtoms() == 0:
        return None, "invalid SMILES: no atoms"
    try:
        mol = ms.Cleanup(mol)
        mol = chooser.choose(mol)
        mol = uncharger.uncharge(mol)
        Chem.SanitizeMol(mol)
        n_heavy = mol.GetNumHeavyAtoms()
        if n_heavy == 0:
            return None, "invalid SMILES: no heavy atoms after standardization"
        if n_heavy > MAX_HEAVY_ATOMS:
            return None, f"molecule too large ({n_heavy} heavy atoms > {MAX_HEAVY_ATOMS})"
        out = Chem.MolToSmiles(mol)
    except Exception as exc:  # sanitization problems after cleanup
        return None, f"standardization failed: {type(exc).__name__}"
    if not out or Chem.MolFromSmiles(out) is None:
        return None, "standardization failed: canonical SMILES does not re-parse"
    return out, None


def _chunk(smiles: Sequence) -> list[tuple[str | None, str | None]]:
    return [standardize_one(s) for s in smiles]


def standardize_many(smiles: Sequence, n_jobs: int = 1) -> tuple[list, list]:
    """Standardize a sequence; returns (canonical list with None, reason list with None)."""
    smiles = list(smiles)
    size = 500
    chunks = [smiles[i : i + size] for i in range(0, len(smiles), size)]
    if n_jobs == 1 or len(chunks) <= 1:
        parts = [_chunk(c) for c in chunks]
    else:
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=n_jobs)(delayed(_chunk)(c) for c in chunks)
    pairs = [p for part in parts for p in part]
    return [p[0] for p in pairs], [p[1] for p in pairs]
