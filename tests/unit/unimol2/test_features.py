import numpy as np
import pytest
import torch
from rdkit import Chem

from uniqsar.models.unimol2.features import (
    KEYS,
    collate,
    featurize,
    featurize_mol,
    featurize_smiles,
    graph_features,
    iter_batches,
)

from . import reference as R


def _reference_featurizer():
    R.require_reference()
    pytest.importorskip("numba", reason="unimol_tools 0.1.6 skips Floyd-Warshall without numba (broken njit stub)")
    return R


def test_featurizer_parity_with_reference():
    """Exact integer features and identical coordinates vs unimol_tools on the parity set (live RDKit)."""
    _reference_featurizer()
    smiles = R.PARITY_SMILES
    ref_feats, ref_mols = R.reference_featurize(smiles)
    ours, reasons = featurize(smiles)
    assert reasons == [None] * len(smiles)
    for s, rf, rm, of in zip(smiles, ref_feats, ref_mols, ours):
        same_mol = featurize_mol(rm)  # the reference's own conformer mol
        for k in KEYS:
            ref = np.asarray(rf[k])
            assert np.array_equal(ref, of[0][k]), f"{s}: {k} (from SMILES)"
            assert np.array_equal(ref, same_mol[k]), f"{s}: {k} (same mol)"
        assert of[0]["src_coord"].dtype == np.float32


def test_aspirin_values_from_spec():
    f = featurize_smiles("CC(=O)Oc1ccccc1C(=O)O")[0][0]
    assert f["atom_feat"].shape == (13, 8) and f["edge_feat"].shape == (13, 13, 3)
    assert (f["pair_type"][..., 0] == 4).all() and (f["pair_type"][..., 1] == 132).all()
    assert f["atom_feat"].min() >= 3 and f["atom_feat"].max() <= 130
    assert (np.diag(f["shortest_path"]) == 1).all() and f["shortest_path"][0, 1] == 2
    assert f["coords_2d"] is False


def test_salt_unreachable_and_2d_fallback(monkeypatch):
    f = featurize_smiles("[Na+].[Cl-]")[0][0]
    assert f["shortest_path"][0, 1] == 511 and f["edge_feat"][0, 1].tolist() == [2, 2, 2]
    from rdkit.Chem import AllChem

    monkeypatch.setattr(AllChem, "EmbedMolecule", lambda *a, **k: -1)  # ETKDG failure -> Compute2DCoords
    g = featurize_smiles("c1ccccc1O")[0][0]
    assert g["coords_2d"] is True and np.allclose(g["src_coord"][:, 2], 0.0)


def test_stereo_pair_type_uses_chirality():
    f = featurize_smiles("C[C@H](N)C(=O)O")[0][0]
    col = f["pair_type"][..., 0]
    assert set(np.unique(col).tolist()) <= {4, 5, 6} and col.max() in (5, 6)  # CW -> 5, CCW -> 6 (not element)
    assert (f["pair_type"][..., 1] == col.T + 128).all()


def test_new_rdkit_tags_map_to_misc_slot():
    mol = Chem.MolFromSmiles("CC(F)(Cl)Br")
    mol.GetAtomWithIdx(1).SetChiralTag(Chem.ChiralType.CHI_TETRAHEDRAL)  # not in the OGB list
    mol.GetBondWithIdx(0).SetStereo(Chem.BondStereo.STEREOATROPCW)  # not in the OGB list
    f = graph_features(mol)
    assert f["atom_feat"][1, 0] == 6 + 3  # misc slot (CHI_OTHER)
    assert f["edge_feat"][0, 1, 1] == 5 + 20  # misc slot (STEREOANY)
    assert f["pair_type"][1, 0, 0] == 6 + 3 + 1


def test_bad_inputs_do_not_crash():
    feats, reasons = featurize(["CCO", "not a smiles", "", "[H][H]", "c1ccccc1"])
    assert feats[0] is not None and feats[4] is not None
    assert feats[1] is None and "parse" in reasons[1]
    assert feats[3] is None and reasons[3]  # no heavy atoms
    assert feats[2] is None or reasons[2] is None  # empty SMILES: RDKit gives an empty mol -> no atoms


def test_crop_is_seeded_and_keeps_order():
    smi = "C" * 40
    a = featurize_smiles(smi, max_atoms=16, crop_seed=3)[0][0]
    state = np.random.get_state()[1].copy()
    b = featurize_smiles(smi, max_atoms=16, crop_seed=3)[0][0]
    c = featurize_smiles(smi, max_atoms=16, crop_seed=4)[0][0]
    assert np.array_equal(state, np.random.get_state()[1])  # global RNG untouched
    assert all(np.array_equal(a[k], b[k]) for k in KEYS)
    assert not np.array_equal(a["shortest_path"], c["shortest_path"])
    assert a["src_tokens"].shape == (16,) and a["shortest_path"].shape == (16, 16)
    assert (a["degree"] >= 3).all()  # degree counted on the full chain before the crop


def test_multiple_conformers_seeded():
    confs = featurize_smiles("CCCCO", n_conformers=3)[0]
    first = featurize_smiles("CCCCO")[0][0]
    assert len(confs) == 3 and np.array_equal(confs[0]["src_coord"], first["src_coord"])
    assert not np.allclose(confs[0]["src_coord"], confs[1]["src_coord"])


def test_collate_and_buckets():
    feats = [featurize_smiles(s)[0][0] for s in ["CCO", "c1ccccc1", "C"]]
    b = collate(feats)
    assert b["edge_feat"].shape == (3, 6, 6, 3) and b["src_coord"].dtype == torch.float32
    assert b["atom_mask"].sum().item() == 3 + 6 + 1 and b["src_tokens"][2, 1:].eq(0).all()
    assert collate(feats, pad_to_multiple=4)["src_tokens"].shape[1] == 7  # L = 8
    batches = list(iter_batches([5, 1, 30, 2, 129], batch_size=2, max_pairs=2 * 40 * 40))
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3, 4]
    assert [len(x) for x in batches] == [2, 2, 1] and batches[-1].tolist() == [4]


def test_parallel_matches_serial():
    smiles = ["CCO", "CCN", "c1ccccc1", "CC(=O)O", "bad", "CCCl", "OCCO", "C1CC1", "CC#N"]
    serial, r1 = featurize(smiles, n_jobs=1)
    par, r2 = featurize(smiles, n_jobs=2)
    assert r1 == r2
    for a, b in zip(serial, par):
        assert (a is None) == (b is None)
        if a is not None:
            assert all(np.array_equal(a[0][k], b[0][k]) for k in KEYS)
