"""D-MPNN descriptor pretraining (recipe pretrain_dmpnn_tiny), its export, the dmpnn_emb featurizer, the
pretrained init of the dmpnn learner and `uniqsar embed --model dmpnn`."""
import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import DATA
from uniqsar.models.dmpnn import pretrained
from uniqsar.models.dmpnn.featurizer import DMPNNEmbedding
from uniqsar.models.dmpnn.pretrain import apply_target_scaler, fit_target_scaler
from uniqsar.models.pretraining import pretrain

SMILES = pd.read_csv(DATA / "bbb_martins_200.csv")["Drug"].tolist()
TINY = {"hidden_size": 32, "depth": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("dmpnn_corpus")
    pd.DataFrame({"smiles": SMILES[:96]}).to_csv(d / "corpus.csv", index=False)
    pd.DataFrame({"Drug": SMILES[:5], "Y": 0}).to_csv(d / "test.csv", index=False)  # "test set" to exclude
    return d


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pt") / "run"
    card = pretrain("pretrain_dmpnn_tiny", corpus / "corpus.csv", out, exclude=[corpus / "test.csv"], verbose=False)
    return out, card


def _losses(path):
    with open(path, newline="") as fh:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(fh)]


def test_excludes_test_molecules(run):
    out, card = run
    from rdkit import Chem

    corpus = set(pd.read_csv(out / "corpus.csv")["smiles"])
    excluded = {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in SMILES[:5]}
    assert card["data"]["excluded"] == 5 and not corpus & excluded
    # one TDC test set excluded is not all of them: the provenance says not TDC-clean
    assert card["provenance"]["tdc_admet_test_excluded"] is False
    assert len(card["provenance"]["tdc_tasks_not_excluded"]) == 22


def test_export_and_card(run):
    out, card = run
    ck = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ck["format"] == pretrained.FORMAT and set(ck["encoder"]) == {"W_i.weight", "W_h.weight", "W_o.weight",
                                                                        "W_o.bias"}
    assert card["steps"] == 20 and card["targets"]["descriptors"] > 200 and card["targets"]["morgan_bits"] == 64
    assert np.isfinite(card["final_val_losses"]["loss"])
    assert card["command"] and "commit" in card and card["versions"]["uniqsar"]  # what produced it
    assert len(_losses(out / "losses.csv")) == 20 and (out / "val_losses.csv").exists()
    assert card["sha256"] == pretrained.identity(out / "checkpoint.pt")["sha256"]


def test_resume_continues_the_same_run(corpus, run, tmp_path, capsys):
    out, _ = run
    part = tmp_path / "part"
    # the targets come from the content-addressed cache the fixture run filled: only the training is repeated
    # stop after 10 of the 20 planned steps (the checkpoint at step 10), then resume to 20
    from uniqsar.models.dmpnn import pretrain as mod

    orig = mod.objective
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 11:
            raise KeyboardInterrupt
        return orig(*a, **k)

    mod.objective = failing
    try:
        with pytest.raises(KeyboardInterrupt):
            pretrain("pretrain_dmpnn_tiny", corpus / "corpus.csv", part, exclude=[corpus / "test.csv"])
    finally:
        mod.objective = orig
    assert "targets: all 2 chunks cached" in capsys.readouterr().err  # nothing recomputed
    with pytest.raises(FileExistsError):
        pretrain("pretrain_dmpnn_tiny", corpus / "corpus.csv", part, exclude=[corpus / "test.csv"], verbose=False)
    pretrain("pretrain_dmpnn_tiny", corpus / "corpus.csv", part, exclude=[corpus / "test.csv"], verbose=False,
             resume=True)
    full, resumed = _losses(out / "losses.csv"), _losses(part / "losses.csv")
    assert [s for s, _ in resumed] == list(range(1, 21))
    np.testing.assert_allclose([v for _, v in resumed], [v for _, v in full], rtol=1e-5)


def test_target_scaler_is_robust():
    rng = np.random.default_rng(0)
    D = np.c_[rng.normal(size=1000), 10 ** rng.uniform(0, 9, 1000), np.full(1000, 3.0), rng.normal(size=1000)]
    D[::10, 3] = np.nan
    s = fit_target_scaler(D, 1e4, 0.5)
    Z = apply_target_scaler(D, s)
    assert s["log_mask"] == [False, True, False, False] and s["constant"] == [False, False, True, False]
    assert np.isnan(Z[:, 2]).all() and np.isnan(Z[::10, 3]).all()  # masked in the loss
    assert np.nanmax(np.abs(Z[:, :2])) < 4 and abs(np.nanmean(Z[:, 1])) < 0.1


def test_featurizer_weights_and_batch_invariance(run):
    out, _ = run
    smi = SMILES[:30] + ["not a smiles"]
    f = DMPNNEmbedding(weights=str(out / "checkpoint.pt"))
    X = f.compute(smi)
    assert X.shape == (31, 32) and X.dtype == np.float32 and np.isnan(X[-1]).all() and np.isfinite(X[:-1]).all()
    X1 = DMPNNEmbedding(weights=str(out), batch_size=1).compute(smi)  # run folder = its checkpoint.pt
    np.testing.assert_allclose(X1, X, rtol=1e-5, atol=1e-6)
    R = DMPNNEmbedding(weights="random", arch=TINY).compute(smi)
    assert R.shape == X.shape and not np.allclose(R[:-1], X[:-1])
    assert f.cache_id != DMPNNEmbedding(weights="random", arch=TINY).cache_id
    assert DMPNNEmbedding(weights="random", arch=TINY, seed=1).cache_id != DMPNNEmbedding(weights="random",
                                                                                            arch=TINY).cache_id


def test_bad_checkpoints_are_refused(tmp_path):
    bad = tmp_path / "x.pt"
    torch.save({"format": "something else"}, bad)
    with pytest.raises(pretrained.DMPNNWeightsError, match="not a uniqsar-dmpnn/1 checkpoint"):
        DMPNNEmbedding(weights=str(bad)).compute(["CCO"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        DMPNNEmbedding(weights=str(tmp_path / "missing.pt")).compute(["CCO"])


def test_learner_starts_from_pretrained_encoder(run, tmp_path):
    from uniqsar.models.dmpnn import DMPNN

    out, _ = run
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    y = np.log1p(np.arange(40.0))
    m = DMPNN(task="regression", seed=0, weights=str(out / "checkpoint.pt"), epochs=1, lr=1e-6, valid_frac=0.0,
              hidden_size=500)  # arch comes from the checkpoint
    m.fit(SMILES[:40], y)
    assert m.model_.W_h.weight.shape == (32, 32)
    np.testing.assert_allclose(m.model_.W_h.weight.detach(), ck["encoder"]["W_h.weight"], atol=1e-4)
    assert m.init_["sha256"] and m.init_["provenance"]["tdc_admet_test_excluded"] is False
    scratch = DMPNN(task="regression", seed=0, epochs=1, lr=1e-6, valid_frac=0.0, **TINY)
    scratch.fit(SMILES[:40], y)
    assert not np.allclose(scratch.model_.W_h.weight.detach(), ck["encoder"]["W_h.weight"], atol=1e-3)
    # encoder at encoder_lr_mult x lr, the FFN head at lr
    opt, _ = m._trainer()._optimizer(m.model_, 10)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5e-6, 1e-6])
    m.save(tmp_path / "m")
    loaded = DMPNN.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(SMILES[40:50]), m.predict(SMILES[40:50]), rtol=1e-5)


def test_standardized_encoder_start(run, tmp_path):
    """standardize_encoder: the head sees each encoder dimension with mean 0 / sd 1 on the training molecules;
    saved and loaded with the model; refused without pretrained weights."""
    from uniqsar.models.dmpnn import DMPNN
    from uniqsar.featurize.graph import smiles_to_graphs
    from uniqsar.models.dmpnn.learner import collate

    out, _ = run
    y = np.log1p(np.arange(60.0))
    m = DMPNN(task="regression", seed=0, weights=str(out / "checkpoint.pt"), standardize_encoder=True, epochs=1,
              lr=1e-9, valid_frac=0.0)
    m.fit(SMILES[:60], y)
    assert m.arch_["standardize"] is True
    b = collate(m._items(SMILES[:60], smiles_to_graphs(SMILES[:60]), range(60)))
    with torch.no_grad():
        Z = m.model_.encode_batch(b)
    Zs = ((Z - m.model_.mol_mean) / m.model_.mol_scale).numpy()
    live = Z.std(dim=0).numpy() > 1e-4
    np.testing.assert_allclose(Zs.mean(axis=0), 0, atol=1e-3)  # lr 1e-9: the encoder has not moved
    np.testing.assert_allclose(Zs[:, live].std(axis=0), 1, atol=1e-3)
    m.save(tmp_path / "m")
    loaded = DMPNN.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(SMILES[60:70]), m.predict(SMILES[60:70]), rtol=1e-5)
    with pytest.raises(ValueError, match="needs pretrained weights"):
        DMPNN(task="regression", seed=0, standardize_encoder=True, epochs=1, **TINY).fit(SMILES[:20], y[:20])


def test_cli_embed_dmpnn(run, tmp_path, capsys):
    from uniqsar.cli import main

    out, _ = run
    data = tmp_path / "d.csv"
    pd.DataFrame({"smiles": SMILES[:8] + ["C1CC"]}).to_csv(data, index=False)
    assert main(["embed", str(data), "--model", "dmpnn", "--weights", str(out), "--out", str(tmp_path / "x.npy"),
                 "--no-cache"]) == 0
    X = np.load(tmp_path / "x.npy")
    assert X.shape == (9, 32) and np.isnan(X[-1]).all() and np.isfinite(X[:-1]).all()
    assert "1 failed (1 invalid SMILES)" in capsys.readouterr().out
    assert main(["embed", str(data), "--model", "dmpnn", "--pooling", "cls", "--out", str(tmp_path / "y.npy")]) == 2
    assert "pooling must be one of ('checkpoint', 'mean')" in capsys.readouterr().err


def test_shipped_default_weights():
    """The package ships pretrained encoder weights: TDC-clean provenance, and not a random init."""
    ident = pretrained.identity("default")
    assert ident["kind"] == "file" and ident["provenance"]["tdc_admet_test_excluded"] is True
    assert pretrained.DEFAULT_CHECKPOINT.stat().st_size < 20 * 2**20
    smi = SMILES[:10]
    D = DMPNNEmbedding(weights="default").compute(smi)
    R = DMPNNEmbedding(weights="random").compute(smi)
    assert D.shape == R.shape == (10, ident["config"]["hidden_size"]) and np.isfinite(D).all()
    assert not np.allclose(D, R, atol=1e-3)
