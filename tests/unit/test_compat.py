"""uniqsar.compat: unimol_tools 0.1.6's MolTrain / MolPredict on uniqsar's Uni-Mol2 (tiny checkpoint placed where the
'84m' resolver looks, small molecules, one or two epochs). UniMolRepr and its parity: tests/unit/unimol2/test_atomic.py.
"""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

SMILES = ["CCO", "CCCO", "CCCCO", "CC(C)O", "OCCO", "CCN", "CCCN", "CC(N)C", "NCCN", "CCOC", "COC", "CCOCC",
          "CC=O", "CCC=O", "CC(=O)C", "CC(=O)O", "CCC(=O)O", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1",
          "c1ccncc1", "C1CCCCC1", "C1CCOC1"]


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    """A tiny checkpoint at $UNIQSAR_UNIMOL2_DIR/modelzoo/84M/checkpoint.pt (where model_size='84m' resolves), offline,
    private caches, one torch thread."""
    from uniqsar.models.unimol2.weights import random_unimol2, save_checkpoint

    base = tmp_path_factory.getbasetemp()
    zoo = base / "zoo"
    ckpt = zoo / "modelzoo" / "84M" / "checkpoint.pt"
    if not ckpt.is_file():
        save_checkpoint(random_unimol2("tiny", seed=3), ckpt)
    monkeypatch.setenv("UNIQSAR_UNIMOL2_DIR", str(zoo))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("UNIQSAR_CONFORMER_DIR", str(base / "conformers"))
    monkeypatch.setenv("UNIQSAR_CACHE_DIR", str(base / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield ckpt
    torch.set_num_threads(threads)


def _data():
    from rdkit import Chem

    heavy = np.array([Chem.MolFromSmiles(s).GetNumAtoms() for s in SMILES], float)
    return pd.DataFrame({"SMILES": SMILES, "TARGET": heavy + 0.1 * np.arange(len(SMILES)) % 3,
                         "label": [int("O" in s or "o" in s) for s in SMILES]})


def test_arguments_not_honoured_are_errors(tmp_path):
    from uniqsar.compat import CompatError, MolTrain

    ok = dict(model_name="unimolv2", model_size="84m", save_path=str(tmp_path / "x"))
    cases = [
        (dict(model_name="unimolv1"), "not available in uniqsar"),
        (dict(ok, model_name="unimolv3"), "unknown model_name"),
        (dict(ok, model_size="2b"), "not a released Uni-Mol2 size"),
        (dict(ok, task="ranking"), "task="),
        (dict(ok, data_type="oled"), "data_type"),
        (dict(ok, split="select"), "select"),
        (dict(ok, split="group", split_group_col="series"), "group"),
        (dict(ok, load_model_dir="/tmp"), "load_model_dir"),
        (dict(ok, task="regression", metrics="auc"), "unknown metric"),
        (dict(ok, no_such_argument=1), "unknown argument"),
        (dict(ok, epochs=0), "epochs"),
        (dict(ok, pretrained_model_path=str(tmp_path / "missing.pt")), "does not exist"),
    ]
    for kwargs, match in cases:
        with pytest.raises(CompatError, match=match):
            MolTrain(**kwargs)


def test_cfg_mapping(tmp_path):
    """unimol_tools' cfg (an omegaconf DictConfig; any mapping here) supplies the same arguments."""
    from uniqsar.compat import CompatError, MolTrain

    clf = MolTrain(cfg={"task": "regression", "model_name": "unimolv2", "epochs": 3, "save_path": str(tmp_path)})
    assert clf.task == "regression" and clf.config["epochs"] == 3
    with pytest.raises(CompatError, match="unknown key"):
        MolTrain(cfg={"task": "regression", "model_name": "unimolv2", "epoch": 3})


def test_speed_only_arguments_warn_only_when_given(tmp_path):
    from uniqsar.compat import CompatWarning, MolTrain

    with pytest.warns(CompatWarning, match="use_amp"):
        MolTrain(model_name="unimolv2", use_amp=False, save_path=str(tmp_path / "x"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MolTrain(task="regression", model_name="unimolv2", save_path=str(tmp_path / "x"))


def test_fit_checks_data_before_training(tmp_path):
    from uniqsar.compat import CompatError, MolTrain

    df = _data().rename(columns={"label": "TARGET_2"})
    with pytest.raises(CompatError, match="takes one target column"):
        MolTrain(task="regression", model_name="unimolv2", save_path=str(tmp_path / "a")).fit(df)
    with pytest.raises(CompatError, match="no target column"):
        MolTrain(task="regression", model_name="unimolv2", save_path=str(tmp_path / "a"),
                 target_col_prefix="Y").fit(df)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(CompatError, match="never overwrites"):
        MolTrain(task="regression", model_name="unimolv2", save_path=str(tmp_path / "foreign"),
                 target_cols="TARGET").fit(df)
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"


def _has_multiclass() -> bool:
    from uniqsar.data.targets import TASKS
    from uniqsar.registry import get_learner_class

    return "multiclass" in TASKS and "multiclass" in get_learner_class("unimol2").tasks


@pytest.mark.parametrize("task", ["multilabel_regression", "multilabel_classification"])
def test_multilabel_is_one_joint_network(tmp_path, task):
    """multilabel_*: one Uni-Mol2 network fitted on both targets (the pipeline's joint fit), a label missing in a
    row masked out of the loss; cv_pred and MolPredict give (n, 2)."""
    from uniqsar.compat import MolPredict, MolTrain

    df = _data()
    if task == "multilabel_classification":
        df["TARGET"], df["TARGET_b"] = df["label"], [int(s.startswith("C")) for s in SMILES]
    else:
        df["TARGET_b"] = df["TARGET"] * 0.5 + df["label"]
    df.loc[3, "TARGET_b"] = np.nan  # a missing label: masked, the row still trains TARGET
    save = tmp_path / "ml"
    clf = MolTrain(task=task, epochs=1, batch_size=8, kfold=2, split="random", target_cols="TARGET,TARGET_b",
                   save_path=str(save), model_name="unimolv2", model_size="84m", use_cuda=False)
    clf.fit(df[["SMILES", "TARGET", "TARGET_b"]])
    manifest = json.loads((save / "manifest.json").read_text())
    assert manifest["joint_targets"]["targets"] == ["TARGET", "TARGET_b"]
    assert clf.cv_pred.shape == (len(df), 2) and np.isfinite(clf.cv_pred[:, 0]).all()
    assert list((save / "joint").iterdir())  # the joint network, fitted once for both targets
    p = MolPredict(load_model=str(save)).predict(SMILES[:5])
    assert p.shape == (5, 2) and np.isfinite(p).all()
    if task == "multilabel_classification":
        assert ((p >= 0) & (p <= 1)).all()


def test_regression_fit_predict_and_freeze_layers(tmp_path, _env):
    """kfold=1 (one model on all rows), frozen backbone: the fine-tuned backbone equals the checkpoint it started from;
    MolPredict returns (n, 1), keeps invalid rows as NaN, writes unimol_tools' CSV and test_metric.json."""
    from uniqsar.compat import CompatWarning, MolPredict, MolTrain

    df = _data()
    save = tmp_path / "exp"
    clf = MolTrain(task="regression", epochs=1, batch_size=8, kfold=1, metrics="mae,r2", save_path=str(save),
                   model_name="unimolv2", model_size="84m", use_cuda=False,
                   freeze_layers=["embed_tokens", "atom_feature", "edge_feature", "se3_invariant_kernel", "encoder"])
    assert clf.fit(df[["SMILES", "TARGET"]]) is None
    compat = json.loads((save / "compat.json").read_text())
    assert compat["task"] == "regression" and compat["target_cols"] == ["TARGET"]
    manifest = json.loads((save / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["targets"]["TARGET"]["task"] == "regression"
    # frozen: the backbone tensors are the checkpoint's
    model_pt = next(save.glob("targets/*/learners/*/full/model.pt"))
    sd = torch.load(model_pt, weights_only=True)
    ck = torch.load(_env, weights_only=True)["model"]
    assert torch.equal(sd["backbone.encoder.layers.0.ffn.linear_1.weight"], ck["encoder.layers.0.ffn.linear_1.weight"])
    assert not torch.equal(sd["classification_head.out_proj.bias"], torch.zeros_like(sd["classification_head.out_proj.bias"]))

    pred = MolPredict(load_model=str(save))
    y = pred.predict(SMILES[:4])
    assert y.shape == (4, 1) and np.isfinite(y).all()
    with pytest.warns(CompatWarning, match="could not be predicted"):
        y2 = pred.predict(pd.DataFrame({"SMILES": ["CCO", "not_a_smiles"], "TARGET": [2.0, 3.0]}),
                          save_path=str(tmp_path / "pred"))
    assert y2.shape == (2, 1) and np.isnan(y2[1, 0]) and abs(y2[0, 0] - y[0, 0]) < 1e-6
    out = pd.read_csv(tmp_path / "pred" / "test.predict.0.csv")
    assert "predict_TARGET" in out.columns
    assert set(json.loads((tmp_path / "pred" / "test_metric.json").read_text())) == {"mse", "mae", "r2", "spearmanr", "pearsonr"}
    # a second MolTrain into the same save_path overwrites the first (as unimol_tools does)
    MolTrain(task="regression", epochs=1, kfold=1, save_path=str(save), model_name="unimolv2", use_cuda=False).fit(
        {"SMILES": SMILES, "target": df["TARGET"].tolist()})


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_blog_snippet(tmp_path, task):
    """The Uni-Mol2 blog's training / prediction snippet with only the import changed (5 scaffold folds)."""
    from uniqsar.compat import MolPredict, MolTrain

    df = _data()
    df["TARGET"] = df["label"] if task == "classification" else df["TARGET"]
    train_data = df[["SMILES", "TARGET"]]
    clf = MolTrain(task=task, data_type='molecule', epochs=2, learning_rate=1e-4, batch_size=16, early_stopping=5,
                   metrics='auc' if task == "classification" else 'mae', split='scaffold',
                   save_path=str(tmp_path / "exp"), model_name='unimolv2', model_size='84m')
    pred = clf.fit(data=train_data)
    assert pred is None and clf.cv_pred.shape == (len(df), 1) and np.isfinite(clf.cv_pred).all()
    clf = MolPredict(load_model=str(tmp_path / "exp"))
    res = clf.predict(data=SMILES[:6])
    assert res.shape == (6, 1)
    if task == "classification":
        assert ((res >= 0) & (res <= 1)).all()
    # one model per CV fold, averaged at prediction (as unimol_tools' MolPredict); kfold=5, but scaffold folds of
    # these small molecules can be fewer (acyclic ones share one scaffold)
    n_models = len(list((tmp_path / "exp").glob("targets/*/learners/*/fold*")))
    folds = pd.read_csv(next((tmp_path / "exp").glob("targets/*/oof.csv")))["fold"].nunique()
    assert 2 <= n_models == folds <= 5


@pytest.mark.slow
@pytest.mark.skipif(not _has_multiclass(), reason="PENDING: the pipeline's multiclass task (issue 20 item 2)")
def test_multiclass(tmp_path):
    """unimol_tools' multiclass: integer labels 0..C-1; cv_pred and MolPredict give (n, C) class probabilities."""
    from uniqsar.compat import CompatError, MolPredict, MolTrain

    df = pd.DataFrame({"SMILES": SMILES, "TARGET": [i % 3 for i in range(len(SMILES))]})
    save = tmp_path / "mc"
    MolTrain(task="multiclass", epochs=1, batch_size=8, kfold=2, split="random", metrics="acc,log_loss",
             save_path=str(save), model_name="unimolv2", model_size="84m", use_cuda=False).fit(df)
    assert json.loads((save / "compat.json").read_text())["multiclass_cnt"] == 3
    p = MolPredict(load_model=str(save)).predict(SMILES[:4], save_path=str(tmp_path / "pred"))
    assert p.shape == (4, 3) and np.allclose(p.sum(1), 1.0)
    out = pd.read_csv(tmp_path / "pred" / "test.predict.0.csv")
    assert {"prob_0", "prob_1", "prob_2", "predict_TARGET"} <= set(out.columns)
    with pytest.raises(CompatError, match="integer class labels"):
        MolTrain(task="multiclass", model_name="unimolv2", save_path=str(tmp_path / "t")).fit(
            df.assign(TARGET=["a", "b", "c"] * 8))
