"""Unit tests for uniqsar.data.standardize: every input gets a canonical SMILES or a reason."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from uniqsar.data.standardize import MAX_HEAVY_ATOMS, standardize_many, standardize_one


def _ok(smiles):
    out, reason = standardize_one(smiles)
    assert reason is None, f"{smiles!r} rejected: {reason}"
    assert isinstance(out, str) and out
    assert Chem.MolFromSmiles(out) is not None
    return out


def _canon(smiles):
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


# -- rejected inputs ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["xyz", "C1CC", "c1cccc1", "CC(", "C%%C", "[Xx]", "C=C=C=C=C(C)(C)(C)(C)C"])
def test_invalid_smiles_gives_reason_not_exception(bad):
    out, reason = standardize_one(bad)
    assert out is None
    assert reason and "invalid" in reason


@pytest.mark.parametrize("empty", [None, "", "   ", "\t\n", float("nan"), np.float64("nan")])
def test_empty_inputs(empty):
    assert standardize_one(empty) == (None, "empty SMILES")


@pytest.mark.parametrize("value", [5, 3.5, b"CCO", ["CCO"], object()])
def test_non_string_rejected(value):
    out, reason = standardize_one(value)
    assert out is None
    assert "not a string" in reason


@pytest.mark.parametrize("missing", [pd.NA, np.float32("nan")])
def test_pandas_missing_values_are_empty(missing):
    assert standardize_one(missing) == (None, "empty SMILES")


def test_only_hydrogens_rejected():
    out, reason = standardize_one("[H][H]")
    assert out is None and "no heavy atoms" in reason


def test_whitespace_stripped():
    assert _ok("  CCO \n") == _ok("CCO") == "CCO"


# -- standardization ------------------------------------------------------------------------------
def test_salt_keeps_largest_organic_fragment():
    assert _ok("[Na+].[O-]C(=O)c1ccccc1") == _canon("OC(=O)c1ccccc1")


@pytest.mark.parametrize(
    "salt, parent",
    [
        ("Cl.CCN", "CCN"),
        ("c1ccccc1.O", "c1ccccc1"),
        ("O=C([O-])c1ccccc1.O=C([O-])c1ccccc1.[Ca+2]", "OC(=O)c1ccccc1"),
        ("CC(C)NCC(O)c1ccc(O)c(O)c1.OS(=O)(=O)O", "CC(C)NCC(O)c1ccc(O)c(O)c1"),
        # a small organic parent wins against a large inorganic counter-ion
        ("C[NH3+].[O-]S(=O)(=O)[O-].C[NH3+]", "CN"),
    ],
)
def test_salts_and_solvents_stripped(salt, parent):
    assert _ok(salt) == _canon(parent)


@pytest.mark.parametrize(
    "charged, neutral",
    [("CC(=O)[O-]", "CC(=O)O"), ("C[NH3+]", "CN"), ("[NH3+]CC(=O)[O-]", "NCC(=O)O")],
)
def test_charges_neutralized(charged, neutral):
    out = _ok(charged)
    assert out == _canon(neutral)
    assert Chem.GetFormalCharge(Chem.MolFromSmiles(out)) == 0


def test_quaternary_ammonium_stays_charged():
    out = _ok("C[N+](C)(C)C.[Cl-]")
    mol = Chem.MolFromSmiles(out)
    assert mol.GetNumHeavyAtoms() == 5
    assert Chem.GetFormalCharge(mol) == 1


def test_nitro_group_kept_as_zwitterion():
    assert _ok("CC[N+](=O)[O-]") == _canon("CC[N+](=O)[O-]")


def test_isotopes_kept():
    out = _ok("[2H]C([2H])([2H])O")
    assert "[2H]" in out
    assert out != _ok("CO")
    assert _ok("[13CH3]O") != _ok("CO")


def test_stereo_kept_enantiomers_differ():
    r, s = _ok("C[C@H](N)C(=O)O"), _ok("C[C@@H](N)C(=O)O")
    assert r != s
    assert "@" in r and "@" in s
    assert _ok("F/C=C/F") != _ok("F/C=C\\F")


@pytest.mark.parametrize(
    "spellings",
    [
        ["CCO", "OCC", "C(O)C", "[CH3][CH2][OH]"],
        ["c1ccccc1O", "Oc1ccccc1", "OC1=CC=CC=C1", "C1=CC=C(O)C=C1"],
        ["N[C@@H](C)C(=O)O", "C[C@H](N)C(=O)O", "OC(=O)[C@H](C)N"],
    ],
)
def test_different_spellings_same_canonical(spellings):
    outs = {_ok(s) for s in spellings}
    assert len(outs) == 1


def test_canonical_is_idempotent():
    for smi in ["[Na+].[O-]C(=O)c1ccccc1", "C[C@H](N)C(=O)O", "OC1=CC=CC=C1", "C[N+](C)(C)C"]:
        once = _ok(smi)
        assert _ok(once) == once


def test_huge_peptide_accepted():
    smi = "N" + "CC(=O)N" * 150 + "CC(=O)O"  # 150-residue polyglycine-like chain, ~600 heavy atoms
    out = _ok(smi)
    assert Chem.MolFromSmiles(out).GetNumHeavyAtoms() == Chem.MolFromSmiles(smi).GetNumHeavyAtoms()
    assert Chem.MolFromSmiles(out).GetNumHeavyAtoms() < MAX_HEAVY_ATOMS


def test_too_large_rejected_with_reason():
    out, reason = standardize_one("C" * (MAX_HEAVY_ATOMS + 1))
    assert out is None
    assert "too large" in reason and str(MAX_HEAVY_ATOMS + 1) in reason
    # exactly at the limit is still fine
    assert standardize_one("C" * MAX_HEAVY_ATOMS)[1] is None


# -- many -----------------------------------------------------------------------------------------
def test_many_aligned_with_input():
    inputs = ["CCO", "bad", None, "OCC", "[Na+].[Cl-]", ""]
    canon, reasons = standardize_many(inputs)
    assert len(canon) == len(reasons) == len(inputs)
    assert canon[0] == canon[3] == "CCO"
    assert canon[1] is None and reasons[1].startswith("invalid")
    assert canon[2] is None and reasons[2] == "empty SMILES"
    assert all((c is None) != (r is None) for c, r in zip(canon, reasons))


def test_many_empty():
    assert standardize_many([]) == ([], [])


def test_parallel_equals_serial():
    base = ["CCO", "xx", "[Na+].[O-]C(=O)c1ccccc1", None, "C[C@H](N)C(=O)O", "c1ccncc1", float("nan")]
    smiles = base * 180  # > 2 chunks of 500
    serial = standardize_many(smiles, n_jobs=1)
    parallel = standardize_many(smiles, n_jobs=2)
    assert serial == parallel
    assert len(serial[0]) == len(smiles)
    assert math.isclose(sum(c is None for c in serial[0]) / len(smiles), 3 / 7)


# -- mode "canonical": the molecule as written, only canonicalized ------------------------------------
@pytest.mark.parametrize("smiles", ["CC(=O)[O-].[Na+]", "C[N+](C)(C)C.[Cl-]", "CC(=O)O.c1ccncc1", "C[NH3+]"])
def test_canonical_mode_keeps_fragments_and_charges(smiles):
    out, reason = standardize_one(smiles, mode="canonical")
    assert reason is None and out == _canon(smiles)
    full, _ = standardize_one(smiles)
    assert full != out  # full standardization strips the counter-ion / neutralizes


def test_canonical_mode_same_rejections_and_order():
    smiles = ["xyz", "OCC", "", "[Na+].[Cl-]"]
    canon, reasons = standardize_many(smiles, mode="canonical")
    assert canon == [None, "CCO", None, "[Cl-].[Na+]"]
    assert reasons[0] == "invalid SMILES: could not parse" and reasons[2] == "empty SMILES" and reasons[1] is None
    # full: NaCl stays whole (its largest fragment, chloride, is not the substance; it used to become HCl)
    assert standardize_many(smiles)[0] == [None, "CCO", None, "[Cl-].[Na+]"]


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="standardize must be one of"):
        standardize_one("CCO", mode="raw")
    with pytest.raises(ValueError, match="standardize must be one of"):
        standardize_many(["CCO"], mode="raw")


# -- strict parsing: RDKit must read the whole string --------------------------------------------------
@pytest.mark.parametrize("mode", ["full", "canonical"])
@pytest.mark.parametrize("bad, found", [
    ("CC\tO", "whitespace '\\t' at position 2"),  # RDKit alone: ethane named 'O'
    ("CCO ethanol", "followed by 'ethanol'"),  # RDKit alone: ethanol named 'ethanol'
    ("CCOé☃", "character 'é' (U+00E9) at position 3"),  # RDKit alone: ethanol
    ("CC~C", "character '~'"),  # a SMARTS bond RDKit accepts
    ("*CC", "wildcard/dummy atom '*'"),
    ("[*]CC", "wildcard/dummy atom '*'"),
    ("C[1*]", "wildcard/dummy atom '*'"),
    ("[R]CC", "R-group placeholder '[R]'"),
    ("[R1]CC", "R-group placeholder '[R1]'"),
    ("CCR", "R-group placeholder 'R'"),
])
def test_partial_or_placeholder_smiles_rejected_with_what_was_found(bad, found, mode):
    out, reason = standardize_one(bad, mode=mode)
    assert out is None
    assert reason.startswith("invalid SMILES") and found in reason, reason


@pytest.mark.parametrize("ok", ["[Rb+].[O-]C(=O)C", "[Ru]", "BrCCBr", "C%10CCCCC%10", "[2H]C([2H])O", "F/C=C/F"])
def test_strict_parsing_keeps_valid_smiles(ok):
    assert standardize_one(ok, mode="canonical")[1] is None


# -- full mode keeps metal complexes whole ---------------------------------------------------------------
@pytest.mark.parametrize("smiles", [
    "N.N.Cl[Pt]Cl",  # cisplatin, dative bonds written as fragments: the chooser would keep ammonia
    "N[Pt](N)(Cl)Cl",  # cisplatin with bonds: cleanup disconnects them, then again ammonia
    "[CH-]1C=CC=C1.[CH-]1C=CC=C1.[Fe+2]",  # ferrocene: would become cyclopentadiene
    "O.O.[Cu+2].[O-]S(=O)(=O)[O-]",
    "[Na+].[Na+].[O-]S(=O)(=O)[O-]",  # no carbon anywhere: the largest piece (sulfate) is not the substance
])
def test_full_mode_keeps_metal_complexes_and_inorganic_salts_whole(smiles):
    out, reason = standardize_one(smiles, mode="full")
    assert reason is None
    assert out == standardize_one(smiles, mode="canonical")[0]  # the molecule as written


def test_full_mode_still_strips_alkali_counter_ions():
    assert standardize_one("CC(=O)[O-].[Na+]", mode="full")[0] == "CC(=O)O"
    assert standardize_one("[Mg+2].CC(=O)[O-].CC(=O)[O-]", mode="full")[0] == "CC(=O)O"
