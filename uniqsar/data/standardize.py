"""Parse and standardize SMILES. Every input gets either a canonical SMILES or a reason.

Standardization (RDKit MolStandardize): cleanup/normalize functional groups, keep the largest
organic fragment (drops counter-ions and solvents of salts), neutralize charges where a neutral
form exists (quaternary N and zwitterion-free permanent charges stay), canonical isomeric SMILES
(stereo and isotopes are kept: deuteration changes metabolism).

Mode ``"canonical"`` skips the standardization: the parsed molecule as written (salts, counter-ions
and charges kept) is only canonicalized. It is the pipeline's default (``DEFAULT_MODE``): a salt or a
charge state recorded with a measurement is information (solubility of a salt, the ionization class that
drives volume of distribution), and merging it into the neutral parent mixes different measurements.
``standardize_one``/``standardize_many`` default to ``"full"`` (the form used to match molecules across
data sets, e.g. pretraining-corpus exclusion).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

MAX_HEAVY_ATOMS = 1000  # beyond this a "molecule" is almost surely a polymer/crystal record
MODES = ("full", "canonical")
# What `uniqsar fit` does unless told otherwise. canonical since 2026-12-01: on the `fast` preset over the 22 TDC
# ADMET tasks x 5 seeds it was better than full on more tasks than worse, with a positive mean change (rule fixed
# before the run: benchmarks/tdc/results/standardize_plan.md; results/canonical_fast/vs_fast.md).
DEFAULT_MODE = "canonical"
# Runs saved before the mode was recorded in the manifest were standardized fully.
LEGACY_MODE = "full"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"standardize must be one of {MODES}, not {mode!r}")
    return mode


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


def standardize_one(smiles, mode: str = "full") -> tuple[str | None, str | None]:
    """Return ``(canonical_smiles, None)`` or ``(None, reason)``; never raises (except on a bad ``mode``)."""
    from rdkit import Chem
    from rdkit.Chem.MolStandardize import rdMolStandardize as ms

    check_mode(mode)
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
        if mode == "full":
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


def _chunk(smiles: Sequence, mode: str) -> list[tuple[str | None, str | None]]:
    return [standardize_one(s, mode) for s in smiles]


def standardize_many(smiles: Sequence, n_jobs: int = 1, mode: str = "full") -> tuple[list, list]:
    """Standardize a sequence; returns (canonical list with None, reason list with None)."""
    check_mode(mode)
    smiles = list(smiles)
    size = 500
    chunks = [smiles[i : i + size] for i in range(0, len(smiles), size)]
    if n_jobs == 1 or len(chunks) <= 1:
        parts = [_chunk(c, mode) for c in chunks]
    else:
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=n_jobs)(delayed(_chunk)(c, mode) for c in chunks)
    pairs = [p for part in parts for p in part]
    return [p[0] for p in pairs], [p[1] for p in pairs]
