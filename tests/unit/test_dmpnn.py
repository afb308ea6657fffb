"""D-MPNN: graph featurization, overfitting a tiny set, persistence, invalid SMILES, batch
invariance, search space, determinism. Tiny networks, full-batch overfits and few epochs keep this file at a few seconds."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from uniqsar.featurize.graph import ATOM_DIM, BOND_DIM, collate_graphs, smiles_to_graphs
from uniqsar.models.dmpnn import AGGREGATIONS, DMPNN, DMPNNModel, collate, noam_lambda
from uniqsar.models.torch_trainer import batches

SMILES = np.array([
    "CCO", "CCCO", "CCCCO", "CC(C)O", "CC(=O)O", "CCC(=O)O", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1",
    "Nc1ccccc1", "Clc1ccccc1", "c1ccc2ccccc2c1", "C1CCCCC1", "C1CCNCC1", "C1CCOC1", "CC(=O)Nc1ccc(O)cc1",
    "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1", "O=C(O)c1ccccc1", "CCN(CC)CC", "CCOC(=O)C",
    "C=CC=C", "C#N", "CC#N", "FC(F)(F)c1ccccc1", "Brc1ccccc1", "CCS", "CSC", "c1ccncc1", "c1ccoc1",
    "c1ccsc1", "OCC(O)CO", "NCC(=O)O", "CC(N)C(=O)O", "C/C=C/C", "[Na+].[Cl-]",
], dtype=object)
TINY = {"hidden_size": 64, "ffn_hidden_size": 64, "depth": 3, "lr": 3e-3, "batch_size": 16}
# full batch: few, cheap steps. Mean readout: the default "norm" (sum / 100) shrinks these 3-10 atom
# molecules' vectors ~10-30x, too slow a start for 60 steps (drug-sized molecules are fine).
OVERFIT = {**TINY, "lr": 5e-3, "batch_size": 64, "epochs": 60, "aggregation": "mean"}


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


def test_model_shapes():
    graphs = [g for g in smiles_to_graphs(SMILES[:5])]
    model = DMPNNModel(hidden_size=16, ffn_hidden_size=8, depth=2)
    b = collate([(g, None) for g in graphs])
    out = model(b["V"], b["E"], b["src"], b["dst"], b["rev"], b["batch"], b["n_atoms"])
    assert out.shape == (5,)


def test_aggregations():
    """norm = sum / aggregation_norm (chemprop v2's default readout), mean = sum / atom count."""
    graphs = smiles_to_graphs(SMILES[:6])
    b = collate([(g, None) for g in graphs])
    args = [b[k] for k in ("V", "E", "src", "dst", "rev", "batch", "n_atoms")]
    out = {}
    for agg in AGGREGATIONS:
        torch.manual_seed(0)
        out[agg] = DMPNNModel(hidden_size=16, ffn_hidden_size=8, depth=2, aggregation=agg,
                              aggregation_norm=50.0).encode(*args).detach()
    torch.testing.assert_close(out["norm"], out["sum"] / 50.0)
    torch.testing.assert_close(out["mean"], out["sum"] / b["n_atoms"].unsqueeze(1).float())
    with pytest.raises(ValueError, match="aggregation"):
        DMPNNModel(aggregation="max")


def test_noam_schedule():
    """chemprop v2's schedule: ratio*lr -> lr linearly over warmup_epochs, then exponential decay to
    ratio*lr at the last step; ``DMPNNTrainer`` applies it per step."""
    f = noam_lambda(steps=500, epochs=50, warmup_epochs=2, ratio=0.1)  # 10 steps per epoch
    assert f(0) == pytest.approx(0.1) and f(10) == pytest.approx(0.55) and f(20) == pytest.approx(1.0)
    assert f(260) == pytest.approx(0.1 ** 0.5) and f(500) == pytest.approx(0.1)
    assert all(f(i) >= f(i + 1) for i in range(20, 500))
    m = DMPNN("regression", seed=0, epochs=4, lr=1e-3, schedule="noam",
              **{k: v for k, v in TINY.items() if k != "lr"})
    opt, sched = m._trainer()._optimizer(torch.nn.Linear(2, 1), steps=40)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3) and 1e-4 < lrs[-1] < 1.2e-4
    opt, sched = DMPNN("regression", schedule="linear", lr=1e-3)._trainer()._optimizer(torch.nn.Linear(2, 1), 40)
    assert opt.param_groups[0]["lr"] < 1e-3  # the Trainer's linear warmup from ~0
    with pytest.raises(ValueError, match="schedule"):
        DMPNN("regression", schedule="cosine")._trainer()


def test_reshuffled_batches():
    """reshuffle: new batch composition each epoch (ties in size broken at random), size order kept."""
    sizes = np.array([5, 5, 5, 5, 7, 7, 7, 7, 9, 9, 9, 9])
    rng = np.random.default_rng(0)
    fixed = [sorted(map(tuple, (sorted(c) for c in batches(sizes, 2, rng)))) for _ in range(5)]
    assert all(f == fixed[0] for f in fixed)  # same batches, only their order changes
    rng = np.random.default_rng(0)
    moving = [batches(sizes, 2, rng, reshuffle=True) for _ in range(10)]
    comps = {tuple(sorted(tuple(sorted(c)) for c in bs)) for bs in moving}
    assert len(comps) > 1
    for bs in moving:  # still size-bucketed: a batch of 2 never mixes sizes here
        assert all(len(set(sizes[c])) == 1 for c in bs)
        assert sorted(np.concatenate(bs).tolist()) == list(range(len(sizes)))
    flat = [batches(np.zeros(40, int), 8, rng, reshuffle=True) for _ in range(3)]  # equal sizes: random
    assert len({tuple(sorted(tuple(sorted(c)) for c in bs)) for bs in flat}) == 3


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


def test_save_load_with_rdkit_features(tmp_path):
    """The Chemprop-RDKit variant round-trips with its descriptor scaler (the default: the conformance test)."""
    y = _logp(SMILES)
    m = DMPNN("regression", seed=1, epochs=3, rdkit_features=True, **TINY).fit(SMILES, y)
    m.save(tmp_path / "m")
    torch.load(tmp_path / "m" / "model.pt", weights_only=True)  # loadable without unpickling code
    m2 = DMPNN.load(tmp_path / "m")
    assert np.array_equal(m.predict(SMILES), m2.predict(SMILES))
    assert m2.n_extra_ > 100 and m2.model_.ffn[0].in_features == 64 + m2.n_extra_


def test_load_keeps_saved_readout(tmp_path):
    """The readout is saved with the model, so a later change of the default does not change a
    saved model; models saved before it was recorded used mean aggregation unless told otherwise."""
    import json

    def strip_arch(path):
        state = json.loads((path / "dmpnn.json").read_text())
        del state["arch"]
        (path / "dmpnn.json").write_text(json.dumps(state))

    for params, old_agg in (({}, "mean"), ({"aggregation": "sum"}, "sum")):
        m = DMPNN("regression", seed=1, epochs=1, **params, **TINY).fit(SMILES, _logp(SMILES))
        m.save(tmp_path / "m")
        assert DMPNN.load(tmp_path / "m").model_.aggregation == params.get("aggregation", "norm")
        strip_arch(tmp_path / "m")
        assert DMPNN.load(tmp_path / "m").model_.aggregation == old_agg


def test_invalid_smiles():
    X = np.concatenate([SMILES, ["not_a_smiles", "C1CC"]])  # unparsable / unclosed ring
    y = np.concatenate([_logp(SMILES), [0.0, 1.0]])
    m = DMPNN("regression", seed=0, epochs=2, **TINY).fit(X, y)  # invalid rows are ignored
    p = m.predict(np.array(["CCO", "xyz", "C", "[Na+]", ""], dtype=object))
    assert np.isfinite(p).all()
    fallback = np.mean(y[:-2])  # the training mean over the readable molecules
    np.testing.assert_allclose(p[[1, 4]], fallback, rtol=1e-6)
    np.testing.assert_allclose(m.predict(np.array(["bad"], dtype=object)), fallback, rtol=1e-6)


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
    assert len(m.history_) == 3 and 1 <= m.best_epoch_ <= 3  # default: no early stop, best epoch kept
    m = DMPNN("regression", seed=0, epochs=3, **TINY).fit(SMILES[:30], _logp(SMILES[:30]),
                                                           SMILES[30:], _logp(SMILES[30:]))
    assert all("valid" in h for h in m.history_)
