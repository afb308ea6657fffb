"""D-MPNN: graph featurization, overfitting a tiny set, persistence, invalid SMILES, batch
invariance, search space, determinism. Tiny networks, full-batch overfits and few epochs keep this file at a few seconds."""
from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

from uniqsar.featurize.graph import ATOM_DIM, BOND_DIM, collate_graphs, smiles_to_graphs
from uniqsar.models.dmpnn import DMPNN, DMPNNModel, collate
from uniqsar.registry import get_learner_class

SMILES = np.array([
    "CCO", "CCCO", "CCCCO", "CC(C)O", "CC(=O)O", "CCC(=O)O", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1",
    "Nc1ccccc1", "Clc1ccccc1", "c1ccc2ccccc2c1", "C1CCCCC1", "C1CCNCC1", "C1CCOC1", "CC(=O)Nc1ccc(O)cc1",
    "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1", "O=C(O)c1ccccc1", "CCN(CC)CC", "CCOC(=O)C",
    "C=CC=C", "C#N", "CC#N", "FC(F)(F)c1ccccc1", "Brc1ccccc1", "CCS", "CSC", "c1ccncc1", "c1ccoc1",
    "c1ccsc1", "OCC(O)CO", "NCC(=O)O", "CC(N)C(=O)O", "C/C=C/C", "[Na+].[Cl-]",
], dtype=object)
TINY = {"hidden_size": 64, "ffn_hidden_size": 64, "depth": 3, "lr": 3e-3, "batch_size": 16}
OVERFIT = {**TINY, "lr": 5e-3, "batch_size": 64, "epochs": 60}  # full batch: few, cheap steps


def _logp(smiles):
    from rdkit import Chem
    from rdkit.Chem import Crippen

    return np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles])


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_graph_featurization():
    graphs = smiles_to_graphs(["CCO", "C", "[Na+]", "not a smiles", "", "C/C=C/C"])
    g_eth, g_me, g_na, bad, empty, g_but = graphs
    assert bad is None and empty is None
    assert g_eth.V.shape == (3, ATOM_DIM) and g_eth.E.shape == (4, BOND_DIM)
    assert g_me.E.shape == (0, BOND_DIM) and g_na.n_atoms == 1  # no bonds: still a graph
    assert np.array_equal(g_eth.src[::2], g_eth.dst[1::2])  # reverse pairs
    b = collate_graphs([g_eth, g_me, g_but])
    assert b["V"].shape[0] == 3 + 1 + 4 and b["E"].shape[0] == 4 + 0 + 6
    assert b["batch"].tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    assert np.array_equal(b["src"][b["rev"]], b["dst"])  # rev really reverses
    assert b["src"].max() < b["V"].shape[0]


def test_registry_and_model_shapes():
    assert get_learner_class("dmpnn") is DMPNN and DMPNN.input == "smiles"
    graphs = [g for g in smiles_to_graphs(SMILES[:5])]
    model = DMPNNModel(hidden_size=16, ffn_hidden_size=8, depth=2)
    b = collate([(g, None) for g in graphs])
    out = model(b["V"], b["E"], b["src"], b["dst"], b["rev"], b["batch"], b["n_atoms"])
    assert out.shape == (5,)


def test_overfit_regression():
    y = _logp(SMILES)
    m = DMPNN("regression", seed=0, **OVERFIT).fit(SMILES, y)
    mae = np.abs(m.predict(SMILES) - y).mean()
    assert mae < 0.2 * y.std(), (mae, y.std())


def test_overfit_binary():
    from sklearn.metrics import roc_auc_score

    y = (_logp(SMILES) > np.median(_logp(SMILES))).astype(float)
    m = DMPNN("binary", seed=0, **OVERFIT).fit(SMILES, y)
    p = m.predict(SMILES)
    assert ((p >= 0) & (p <= 1)).all()
    assert roc_auc_score(y, p) > 0.97
    assert m.predict_proba(SMILES).shape == (len(SMILES), 2)


@pytest.mark.parametrize("rdkit_features", [False, True])
def test_save_load_identical(tmp_path, rdkit_features):
    y = _logp(SMILES)
    m = DMPNN("regression", seed=1, epochs=3, rdkit_features=rdkit_features, **TINY).fit(SMILES, y)
    m.save(tmp_path / "m")
    torch.load(tmp_path / "m" / "model.pt", weights_only=True)  # loadable without unpickling code
    m2 = DMPNN.load(tmp_path / "m")
    assert np.array_equal(m.predict(SMILES), m2.predict(SMILES))
    if rdkit_features:
        assert m2.n_extra_ > 100 and m2.model_.ffn[0].in_features == 64 + m2.n_extra_


def test_invalid_smiles():
    X = np.concatenate([SMILES, ["not_a_smiles", "C1CC"]])  # unparsable / unclosed ring
    y = np.concatenate([_logp(SMILES), [0.0, 1.0]])
    m = DMPNN("regression", seed=0, epochs=2, **TINY).fit(X, y)  # invalid rows are ignored
    p = m.predict(np.array(["CCO", "xyz", "C", "[Na+]", ""], dtype=object))
    assert np.isnan(p[[1, 4]]).all() and np.isfinite(p[[0, 2, 3]]).all()
    assert np.isnan(m.predict(np.array(["bad"], dtype=object))).all()


def test_batch_order_invariance():
    m = DMPNN("regression", seed=0, epochs=2, **TINY).fit(SMILES, _logp(SMILES))
    together = m.predict(SMILES)
    alone = np.array([m.predict(SMILES[i : i + 1])[0] for i in range(len(SMILES))])
    shuffled = np.empty_like(together)
    perm = np.random.default_rng(0).permutation(len(SMILES))
    shuffled[perm] = m.predict(SMILES[perm])
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(shuffled, together, rtol=1e-5, atol=1e-5)


def test_deterministic_with_seed():
    y = _logp(SMILES)
    p = [DMPNN("regression", seed=s, epochs=3, dropout=0.1, **TINY).fit(SMILES, y).predict(SMILES)
         for s in (3, 3, 4)]
    assert np.array_equal(p[0], p[1])
    assert not np.allclose(p[0], p[2])


def test_inner_validation_split(monkeypatch):
    monkeypatch.setattr(DMPNN, "min_valid_split", 20)
    m = DMPNN("regression", seed=0, epochs=3, valid_frac=0.2, **TINY).fit(SMILES, _logp(SMILES))
    assert all("valid" in h for h in m.history_)
    m = DMPNN("regression", seed=0, epochs=3, **TINY).fit(SMILES[:30], _logp(SMILES[:30]),
                                                           SMILES[30:], _logp(SMILES[30:]))
    assert all("valid" in h for h in m.history_)


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_search_space_usable(task):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    trial = study.ask()
    params = DMPNN.search_space(trial, task)
    assert 2 <= params["depth"] <= 6
    params.update(epochs=1, hidden_size=16, rdkit_features=False)
    y = _logp(SMILES)
    y = (y > np.median(y)).astype(float) if task == "binary" else y
    p = DMPNN(task, seed=0, **params).fit(SMILES, y).predict(SMILES)
    assert np.isfinite(p).all()
    # the learner's defaults lie inside its search space (the tuner enqueues them as trial 0)
    study.enqueue_trial({k: v for k, v in DMPNN.defaults.items() if v is not None})
    t0 = study.ask()
    assert DMPNN.search_space(t0, task)["hidden_size"] == DMPNN.defaults["hidden_size"]


def test_unknown_param_rejected():
    with pytest.raises(ValueError, match="unknown"):
        DMPNN("regression", hiden_size=3).fit(SMILES, _logp(SMILES))
