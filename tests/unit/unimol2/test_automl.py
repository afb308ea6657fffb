"""Uni-Mol2 in the AutoML: weights identity, conformer cache, embedding featurizer, fine-tuning learner, embed CLI.

Everything runs a TINY random config (2 layers, D=32, P=16) on small molecules; one torch thread (conftest).
"""
import hashlib
import json

import numpy as np
import pytest
import torch
from rdkit import Chem

from uniqsar.models import weights_identity
from uniqsar.models.unimol2 import pretrained
from uniqsar.models.unimol2.conformer_cache import ConformerCache, protocol_id
from uniqsar.models.unimol2.features import EMBED_TIMEOUT_S, featurize
from uniqsar.models.unimol2.weights import random_unimol2, save_checkpoint
from uniqsar.registry import get_featurizer, get_learner_class

TINY = {"layers": 2, "embed_dim": 32, "heads": 2, "pair_dim": 16, "pair_hidden": 4}
SMILES = ["CCO", "c1ccccc1O", "not_a_smiles", "CC(=O)Oc1ccccc1C(=O)O", "N[C@@H](C)C(=O)O", "C/C=C/Cl"]
TRAIN = ["CCO", "CCN", "CCCC", "c1ccccc1", "OCCO", "NCCN", "CC(=O)O", "CC(C)O", "CCOC", "c1ccncc1", "CCCl",
         "OC(=O)CN", "CCCCC", "CC(N)C", "C1CCCCC1", "c1ccoc1", "OCC(O)CO", "CN(C)C", "CCCCO", "NC(=O)N", "ClCCCl",
         "c1ccc(O)cc1", "CC=O", "CCC#N"]


def hetero_fraction(smi):
    mol = Chem.MolFromSmiles(smi)
    return sum(a.GetSymbol() != "C" for a in mol.GetAtoms()) / mol.GetNumAtoms()


# ------------------------------------------------------------------------------------------ weights identity


def test_default_falls_back_to_random_and_says_so(capsys, monkeypatch, tmp_path):
    """A trimmed install without the shipped checkpoint: 'default' is a seeded random init, said once."""
    monkeypatch.setattr(pretrained, "DEFAULT_CHECKPOINT", tmp_path / "absent.pt")
    monkeypatch.setattr(weights_identity, "_warned", set())
    ident = pretrained.identity("default", seed=3)
    assert ident["kind"] == "random" and ident["seed"] == 3
    assert ident["config"]["layers"] == pretrained.DEFAULT_CONFIG.layers
    assert "RANDOM" in capsys.readouterr().err
    pretrained.identity("default", seed=3)
    assert capsys.readouterr().err == ""  # one warning per process
    assert "RANDOM" in pretrained.describe(ident)


def test_identity_of_a_file_has_its_sha256(tmp_path):
    path = save_checkpoint(random_unimol2("tiny", seed=0), tmp_path / "w.pt")
    ident = pretrained.identity(str(path))
    assert ident["kind"] == "file" and ident["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ident["config"]["layers"] == 2
    other = save_checkpoint(random_unimol2("tiny", seed=1), tmp_path / "v.pt")
    assert pretrained.identity(str(other))["sha256"] != ident["sha256"]
    json.dumps(ident)


# ------------------------------------------------------------------------------------------ conformer cache


def test_conformer_cache_matches_direct_features_and_hits(tmp_path):
    smi = ["CCO", "not_a_smiles", "N[C@@H](C)C(=O)O", "C/C=C/Cl", "[2H]C([2H])O"]
    direct, reasons = featurize(smi, n_conformers=2, max_atoms=4, crop_seed=1)
    cache = ConformerCache(tmp_path)
    first, r1 = cache.features(smi, n_conformers=2, max_atoms=4, crop_seed=1)
    assert cache.last_misses == 5
    again = ConformerCache(tmp_path)  # fresh process view: read from disk
    second, _ = again.features(smi, n_conformers=2, max_atoms=4, crop_seed=1)
    assert again.last_misses == 1  # only the unparsable one is retried
    assert r1[1] and second[1] is None
    for a, b in zip(direct, second):
        if a is None:
            continue
        for ca, cb in zip(a, b):
            for k in ca:
                np.testing.assert_array_equal(np.asarray(ca[k]), np.asarray(cb[k]), err_msg=k)
    shards = list((tmp_path / protocol_id()).glob("*.npz"))
    assert shards and protocol_id() == f"etkdg-mmff-v2-t{EMBED_TIMEOUT_S}"
    for shard in shards:
        np.load(shard, allow_pickle=False)["coords"]
    # one conformer more: only the new conformer seed is computed, the first two are reused
    third = ConformerCache(tmp_path)
    third.features(["CCO"], n_conformers=3)
    assert third.last_misses == 1 and len(list((tmp_path / protocol_id()).glob("*.npz"))) == 2


# ------------------------------------------------------------------------------------------ featurizer


def test_cache_id_follows_the_weights(tmp_path):
    base = get_featurizer("unimol2", weights="random", arch=TINY).cache_id
    assert get_featurizer("unimol2", weights="random", arch=TINY, batch_size=4).cache_id == base  # output-neutral
    assert get_featurizer("unimol2", weights="random", arch=TINY, seed=1).cache_id != base
    assert get_featurizer("unimol2", weights="random", arch={**TINY, "layers": 3}).cache_id != base
    path = tmp_path / "w.pt"
    save_checkpoint(random_unimol2("tiny", seed=0), path)
    a = get_featurizer("unimol2", weights=str(path)).cache_id
    save_checkpoint(random_unimol2("tiny", seed=1), path)  # same path, new weights
    assert get_featurizer("unimol2", weights=str(path)).cache_id != a


# ------------------------------------------------------------------------------------------ learner


def _tiny_learner(task="regression", **kw):
    params = dict(weights="random", arch=TINY, epochs=10, lr=3e-3, head_lr_mult=3.0, batch_size=8, dropout=0.0, n_conformers=2,
                  min_valid=1000)
    params.update(kw)
    return get_learner_class("unimol2")(task, seed=0, n_threads=1, **params)


@pytest.fixture(scope="module")
def fitted():
    X = np.array(TRAIN, dtype=object)
    y = np.array([hetero_fraction(s) for s in TRAIN])
    torch.set_num_threads(1)
    return _tiny_learner().fit(X, y), X, y


def test_learner_overfits_a_tiny_set(fitted):
    model, X, y = fitted
    losses = [h["train_loss"] for h in model.history_]
    assert losses[-1] < 0.5 * losses[0]
    p = model.predict(X)
    assert p.shape == (len(X),) and np.corrcoef(p, y)[0, 1] > 0.8


def test_learner_saved_state(fitted, tmp_path):
    """What the saved folder holds (save/load round trips: the learner conformance test)."""
    model, X, _ = fitted
    model.save(tmp_path / "m")
    sd = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    assert any(k.startswith("classification_head.") for k in sd)
    state = json.loads((tmp_path / "m" / "unimol2.json").read_text())
    assert state["init_weights"]["kind"] == "random"
    p = model.predict(np.array(list(X[:5]) + ["not_a_smiles"], dtype=object))
    assert p[-1] == pytest.approx(model.fallback_)  # unfeaturizable -> training mean, never NaN


def test_learner_binary_with_inner_validation():
    X = np.array(TRAIN, dtype=object)
    y = np.array([hetero_fraction(s) > 0.2 for s in TRAIN], float)
    m = _tiny_learner("binary", epochs=3, n_conformers=1, min_valid=10, valid_frac=0.25)
    m.fit(X, y)
    p = m.predict(X)
    assert ((p > 0) & (p < 1)).all() and "valid" in m.history_[0]
    assert m.predict_proba(X).shape == (len(X), 2)


def test_freezing():
    cls = get_learner_class("unimol2")
    m = cls("regression", seed=0, **{**cls.defaults, "freeze_layers": 1, "weights": "random", "arch": TINY})
    net = m._build()
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert "backbone.encoder.layers.0.ffn.linear_1.weight" in frozen and "backbone.embed_tokens.weight" in frozen
    assert "backbone.encoder.layers.1.ffn.linear_1.weight" not in frozen
    assert not any(n.startswith("classification_head.") for n in frozen)


# ------------------------------------------------------------------------------------------ CLI + manifest


def test_embed_cli_keeps_rows_aligned(tmp_path, capsys):
    from uniqsar.cli import main

    csv = tmp_path / "in.csv"
    csv.write_text("name,smiles\na,CCO\nb,not_a_smiles\nc,c1ccccc1O\nd,CCO\n")
    out = tmp_path / "emb.npy"
    assert main(["embed", str(csv), "--model", "unimol2", "--weights", "random:tiny", "--pooling", "cls",
                 "--out", str(out)]) == 0
    X = np.load(out, allow_pickle=False)
    assert X.dtype == np.float32 and X.shape == (4, 64)
    assert np.isnan(X[1]).all() and not np.isnan(X[[0, 2, 3]]).any()
    np.testing.assert_array_equal(X[0], X[3])
    text = capsys.readouterr().out
    assert "4 rows" in text and "1 failed" in text and "RANDOM" in text


def test_recipe_identities_for_the_manifest():
    from uniqsar.config import recipe_from_dict

    recipe = recipe_from_dict({
        "featurizers": {"um": {"key": "unimol2", "weights": "random", "arch": TINY, "seed": 2}},
        "models": [{"learner": "lightgbm", "features": ["um"]}, {"learner": "unimol2", "params": {"weights": "random", "arch": TINY}}],
    })
    from uniqsar.models.provenance import recipe_representations

    specs = {"um": {"key": "unimol2", "params": recipe.featurizer("um").params}}
    ids = recipe_representations(recipe, specs, seed=7)
    assert ids["featurizer:um"]["seed"] == 2 and ids["learner:unimol2__smiles"]["seed"] == 7


def test_shipped_default_checkpoint():
    """The package ships pretrained default weights (<= 25 MB) with a model card that matches them."""
    if not pretrained.DEFAULT_CHECKPOINT.is_file():
        pytest.skip("trimmed install without the default checkpoint")
    assert pretrained.DEFAULT_CHECKPOINT.stat().st_size <= 25e6
    card = json.loads(pretrained.DEFAULT_CARD.read_text())
    ident = pretrained.identity("default")
    assert ident["kind"] == "file" and ident["sha256"] == card["sha256"]
    cfg = pretrained.DEFAULT_CONFIG
    assert all(ident["config"][k] == getattr(cfg, k) for k in ("layers", "embed_dim", "heads", "pair_dim"))
    assert card["data"]["excluded"] > 0  # TDC ADMET test molecules were kept out of pretraining
    assert card["steps"] > 0 and card["final_val_losses"]["loss"] < 4.0
    with pytest.raises(ValueError, match="random"):
        pretrained.resolve_spec("default", arch=TINY)
    pre = get_featurizer("unimol2", weights="default").compute(["CCO", "c1ccccc1O"])
    rnd = get_featurizer("unimol2", weights="random").compute(["CCO", "c1ccccc1O"])
    assert np.isfinite(pre).all() and pre.shape == rnd.shape and not np.allclose(pre, rnd)


def test_embedding_timeout_takes_the_failure_path():
    """ETKDG still running after the timeout gives up: the 2D layout, flagged (hexahelicene: ETKDG runs ~5 s and
    fails; with a 1 s limit it stops after ~1 s). A normal molecule embeds exactly as without a limit."""
    import time

    from rdkit import Chem
    from rdkit.Chem import AllChem

    from uniqsar.models.unimol2.features import embed_conformers

    t0 = time.time()
    (_, is2d), = embed_conformers("c1ccc2c(c1)ccc1ccc3ccc4ccc5ccccc5c4c3c12", timeout=1)
    assert is2d and time.time() - t0 < 4.0
    (m, is2d), = embed_conformers("CC(C)Cc1ccc(cc1)C(C)C(=O)O", seed=42)
    ref = AllChem.AddHs(Chem.MolFromSmiles("CC(C)Cc1ccc(cc1)C(C)C(=O)O"))
    assert AllChem.EmbedMolecule(ref, randomSeed=42) == 0  # the reference (unimol_tools) call
    AllChem.MMFFOptimizeMolecule(ref)
    assert not is2d
    np.testing.assert_allclose(m.GetConformer().GetPositions(), ref.GetConformer().GetPositions(), atol=1e-6)
