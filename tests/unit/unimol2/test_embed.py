from pathlib import Path

import numpy as np
import torch

from uniqsar.models.unimol2 import embed_smiles
from uniqsar.models.unimol2.embed import embed_features
from uniqsar.models.unimol2.features import featurize
from uniqsar.models.unimol2.weights import load_unimol2, random_unimol2, save_checkpoint

DATA = Path(__file__).resolve().parents[2] / "data" / "unimol2"

SMILES = ["CCO", "c1ccccc1O", "not_a_smiles", "[Na+].[Cl-]", "CC(=O)Oc1ccccc1C(=O)O", "C"]


def test_shapes_nan_rows_and_reasons():
    emb, reasons = embed_smiles(SMILES, "random:tiny", pooling="cls", return_reasons=True)
    assert emb.dtype == np.float32 and emb.shape == (6, 64)
    assert np.isnan(emb[2]).all() and not np.isnan(np.delete(emb, 2, axis=0)).any()
    assert reasons[2] and reasons[0] is None
    both = embed_smiles(SMILES, "random:tiny", pooling="cls+mean")
    assert both.shape == (6, 128)
    np.testing.assert_allclose(both[:, :64], emb, atol=1e-6)


def test_batch_size_does_not_change_embeddings():
    model = random_unimol2("tiny", seed=0)
    a = embed_smiles(SMILES, model, batch_size=1)
    b = embed_smiles(SMILES, model, batch_size=32)
    np.testing.assert_allclose(a, b, atol=1e-5, equal_nan=True)


def test_conformers_are_averaged_and_paths_accepted(tmp_path):
    model = load_unimol2(DATA / "tiny_ref_random.pt")[0]  # strong random weights: geometry matters
    feats, _ = featurize(["CCCCO", "OCCN"], n_conformers=3)
    per_conf = [embed_features(model, [[f[k]] for f in feats]) for k in range(3)]
    avg = embed_smiles(["CCCCO", "OCCN"], save_checkpoint(model, tmp_path / "m.pt"), n_conformers=3)
    np.testing.assert_allclose(avg, np.mean(per_conf, axis=0), atol=1e-5)
    assert not np.allclose(per_conf[0], per_conf[1])


def test_threads_restored_and_seeded_random():
    before = torch.get_num_threads()
    a = embed_smiles(["CCO"], "random:tiny", seed=1, num_threads=1)
    assert torch.get_num_threads() == before
    b = embed_smiles(["CCO"], "random:tiny", seed=1)
    c = embed_smiles(["CCO"], "random:tiny", seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
