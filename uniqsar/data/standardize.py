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

Strict parsing (both modes): a string is accepted only if RDKit reads all of it after the outer whitespace is
stripped. RDKit itself stops at the first whitespace and takes the rest as the molecule's name (``CC\tO`` would be
ethane, ``CCO ethanol`` ethanol), and it skips some characters; so inner whitespace, characters outside the SMILES
alphabet, wildcard/dummy atoms (``*``) and R-group placeholders are rejected with a reason naming what was found.

Metals in ``"full"`` mode: RDKit's cleanup disconnects metal-ligand bonds and the fragment chooser then keeps the
largest organic piece, so cisplatin would become ammonia and ferrocene cyclopentadienide. A molecule that contains a
metal other than the usual counter-ions (Li, Na, K, Rb, Cs, Mg, Ca, Sr, Ba) is therefore kept whole, as written
(canonicalized only). Likewise, when the chosen fragment has no carbon although the input has several fragments
(NaCl would become HCl), the molecule is kept whole: the chooser never returns a piece that is not the molecule.
"""
from __future__ import annotations

import string
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


# Characters a SMILES string can hold (OpenSMILES: atoms, brackets, bonds, ring closures, charges, chirality).
# `*` (wildcard) is a valid SMILES atom but not a molecule one can measure, so it gets its own reason.
SMILES_ALPHABET = frozenset(string.ascii_letters + string.digits + "()[]=#$:/\\.+-@%")
# Metals that occur as counter-ions of salts: full standardization may strip them. Any other metal makes the
# molecule be kept whole (a metal complex is not a salt of its largest ligand).
COUNTERION_METALS = frozenset({"Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "Ba"})
NON_METALS = frozenset({"H", "He", "B", "C", "N", "O", "F", "Ne", "Si", "P", "S", "Cl", "Ar", "Ge", "As", "Se",
                        "Br", "Kr", "Sb", "Te", "I", "Xe", "At", "Rn"})


def syntax_problem(smiles: str) -> str | None:
    """Why ``smiles`` (outer whitespace already stripped) is not a whole SMILES string, or None.

    Catches what RDKit would silently skip or read as a name: inner whitespace, characters outside the SMILES
    alphabet, wildcard atoms and R-group placeholders."""
    depth = 0
    for i, ch in enumerate(smiles):
        if ch.isspace():
            return (f"invalid SMILES: whitespace {ch!r} at position {i} followed by {smiles[i:].strip()[:20]!r} "
                    "(a SMILES has no spaces; text after one is not part of the molecule)")
        if ch == "*":
            return f"invalid SMILES: wildcard/dummy atom '*' at position {i}"
        if ch not in SMILES_ALPHABET:
            return f"invalid SMILES: character {ch!r} (U+{ord(ch):04X}) at position {i} is not in the SMILES alphabet"
        if ch == "[":
            depth += 1
            end = smiles.find("]", i)
            inner = smiles[i + 1: end] if end > i else ""
            if inner.lstrip("0123456789").startswith("R") and not inner.lstrip("0123456789")[1:2].islower():
                return f"invalid SMILES: R-group placeholder '[{inner}]' at position {i}"
        elif ch == "]":
            depth -= 1
        elif ch == "R" and depth == 0:
            return f"invalid SMILES: R-group placeholder 'R' at position {i}"
    return None


def _complex_metals(mol) -> list[str]:
    return sorted({a.GetSymbol() for a in mol.GetAtoms()
                   if a.GetSymbol() not in NON_METALS and a.GetSymbol() not in COUNTERION_METALS
                   and a.GetAtomicNum() > 0})


def _full(mol, chooser, uncharger):
    """Full standardization, except that metal complexes and carbon-free picks keep the molecule whole."""
    from rdkit import Chem
    from rdkit.Chem.MolStandardize import rdMolStandardize as ms

    if _complex_metals(mol):
        return mol
    cleaned = ms.Cleanup(mol)
    chosen = chooser.choose(cleaned)
    n_frags = len(Chem.GetMolFrags(cleaned))
    if n_frags > 1 and not any(a.GetAtomicNum() == 6 for a in chosen.GetAtoms()):
        return mol  # e.g. NaCl: the largest piece (chloride) is not the substance
    out = uncharger.uncharge(chosen)
    Chem.SanitizeMol(out)
    return out


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

    check_mode(mode)
    if smiles is None or (not isinstance(smiles, (str, bytes, list, tuple, dict)) and _isna(smiles)):
        return None, "empty SMILES"
    if not isinstance(smiles, str):
        return None, f"invalid SMILES: not a string ({type(smiles).__name__})"
    smiles = smiles.strip()
    if not smiles:
        return None, "empty SMILES"
    problem = syntax_problem(smiles)
    if problem:
        return None, problem
    chooser, uncharger = _tools()
    try:
        mol = Chem.MolFromSmiles(smiles)
    except Exception:  # pragma: no cover - RDKit returns None rather than raising
        mol = None
    if mol is None:
        return None, "invalid SMILES: could not parse"
    if mol.GetNumAtoms() == 0:
        return None, "invalid SMILES: no atoms"
    if mol.HasProp("_Name") and mol.GetProp("_Name"):  # defensive: the checks above leave no room for a name
        return None, f"invalid SMILES: trailing text {mol.GetProp('_Name')[:20]!r}"
    if any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        return None, "invalid SMILES: wildcard/dummy atom"
    try:
        if mode == "full":
            mol = _full(mol, chooser, uncharger)
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
