"""Uni-Mol2 pretraining: corruptions (§2 of shared/reference/unimol2.md), losses, export, resume, exclusion guard."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from uniqsar.models.pretraining import RECIPE_DIR
from uniqsar.models.unimol2 import load_unimol2
from uniqsar.models.unimol2.pretrain import (ObjectiveSpec, load_pretrain_recipe, pretrain, pretrain_losses,
                                             recipe_from_dict)
from uniqsar.models.unimol2.pretrain_data import (MASK_TOKEN, collate_pretrain, conformer_record, corrupt,
                                                  hash_split, kabsch_align, read_corpus)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"  # 13 heavy atoms
SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "OC(=O)CCC(=O)O", "c1ccncc1", "CC(C)O",
          "CCOC(=O)C", "Nc1ccccc1", "Clc1ccccc1", "CCCCCC", "OCCO", "CC#N", "C1CCCCC1", "c1ccc2ccccc2c1",
          "CC(=O)N", "COc1ccccc1", "CCS", "O=C1CCCCC1", "c1ccoc1", "CC(C)(C)O", "FC(F)(F)c1ccccc1"]


def _rec(smiles=ASPIRIN):
    r = conformer_record(smiles)
    return {**r, "coord3d": r["src_coord"]}


@pytest.fixture(scope="module")
def rec():
    return _rec()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    path = d / "smiles.csv"
    path.write_text("smiles\n" + "\n".join(SMILES) + "\n")
    return path


# ----------------------------------------------------------------------------------------- corruptions


def test_token_mask_count_and_value(rec):
    n = len(rec["src_tokens"])
    obj = ObjectiveSpec()
    counts = []
    for seed in range(200):
        s = corrupt(rec, np.random.default_rng(seed), obj)
        m = s["token_mask"]
        counts.append(int(m.sum()))
        assert (s["src_tokens"][m] == MASK_TOKEN).all() and (s["src_tokens"][~m] == rec["src_tokens"][~m]).all()
        assert (s["target_tokens"] == rec["src_tokens"]).all()
        assert (s["atom_feat"][m] == (1 if s["dropped"] else rec["atom_feat"][m])).all()  # features not masked
    base = int(0.15 * n)  # int(0.15·N + U[0,1)) is base or base + 1; P(base + 1) = frac(0.15·N)
    assert set(counts) <= {base, base + 1}
    assert abs(np.mean(np.array(counts) == base + 1) - (0.15 * n - base)) < 0.1


def test_coordinate_noise_count_range_and_independence(rec):
    n = len(rec["src_tokens"])
    obj = replace(ObjectiveSpec(), kabsch=False)
    base, same = int(0.15 * n), 0
    for seed in range(200):
        s = corrupt(rec, np.random.default_rng(seed), obj)
        delta = s["src_coord"] - s["target_coord"]
        moved = np.abs(delta).sum(1) > 0
        assert (moved == s["noised"]).all()
        assert int(moved.sum()) in (base, base + 1)
        assert np.abs(delta).max() <= 1.0
        same += int((s["noised"] == s["token_mask"]).all())
    assert same < 100  # chosen independently of the token mask


def test_kabsch_alignment(rec):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    np.testing.assert_allclose(kabsch_align(x @ q.T + 5.0, x), x, atol=1e-4)
    s = corrupt(rec, np.random.default_rng(3), ObjectiveSpec(coord_noise_prob=0.5))
    s_raw = corrupt(rec, np.random.default_rng(3), ObjectiveSpec(coord_noise_prob=0.5, kabsch=False))
    rmsd = lambda a: np.sqrt(((a - s["target_coord"]) ** 2).sum(1).mean())  # noqa: E731
    assert rmsd(s["src_coord"]) <= rmsd(s_raw["src_coord"]) + 1e-6
    np.testing.assert_allclose(s["src_coord"].mean(0), 0.0, atol=1e-5)  # onto the centred clean structure


def test_feature_dropout_values(rec):
    s = corrupt(rec, np.random.default_rng(0), ObjectiveSpec(drop_feat_prob=1.0, use_2d_prob=1.0))
    assert s["dropped"] and not s["use_2d"]
    assert (s["atom_feat"] == 1).all() and (s["edge_feat"] == 1).all() and (s["degree"] == 1).all()
    assert (s["shortest_path"] == 511).all()
    assert (s["pair_type"][..., 0] == 2).all() and (s["pair_type"][..., 1] == 130).all()
    np.testing.assert_allclose(s["target_coord"], rec["coord3d"] - rec["coord3d"].mean(0), atol=1e-5)  # 3D


def test_2d_substitution_only_when_features_kept(rec):
    s = corrupt(rec, np.random.default_rng(0), ObjectiveSpec(drop_feat_prob=0.0, use_2d_prob=1.0))
    assert s["use_2d"] and not s["dropped"]
    assert (s["atom_feat"] == rec["atom_feat"]).all() and (s["shortest_path"] == rec["shortest_path"]).all()
    np.testing.assert_allclose(s["target_coord"], rec["coord2d"] - rec["coord2d"].mean(0), atol=1e-5)
    assert np.abs(s["target_coord"][:, 2]).max() == 0  # 2D layout (z = 0)
    flags = [(x["dropped"], x["use_2d"]) for x in (corrupt(rec, np.random.default_rng(k), ObjectiveSpec())
                                                    for k in range(400))]
    assert not any(d and u for d, u in flags)  # dropped features -> always 3D
    frac = {k: np.mean([f == k for f in flags]) for k in [(True, False), (False, False), (False, True)]}
    assert abs(frac[(True, False)] - 0.5) < 0.1 and abs(frac[(False, True)] - 0.25) < 0.1


def test_losses_finite_and_gradients(rec):
    r = load_pretrain_recipe("tiny")
    torch.manual_seed(0)
    from uniqsar.models.unimol2.model import UniMol2

    model = UniMol2(r.model).train()
    rng = np.random.default_rng(0)
    batch = collate_pretrain([corrupt(_rec(s), rng, r.objective) for s in ("CCO", ASPIRIN, "c1ccccc1")])
    res = pretrain_losses(model, batch, r.objective)
    assert set(res) == {"loss", "mlm", "coord", "dist"} and all(torch.isfinite(v) for v in res.values())
    res["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ----------------------------------------------------------------------------------------- corpus + guard


def test_exclusion_guard_and_split(tmp_path, corpus):
    excl = tmp_path / "test_set.csv"  # other spellings of two corpus molecules: the canonical form is compared
    excl.write_text("Drug,Y\nOCC,1\nO=C(O)c1ccccc1OC(C)=O.[Na+].[Cl-],0\n")
    smiles, is_val, stats = read_corpus(corpus, exclude=[excl], val_fraction=0.3, seed=1, verbose=False)
    assert stats["excluded"] == 2 and len(smiles) == len(SMILES) - 2
    assert "CCO" not in smiles and "CC(=O)Oc1ccccc1C(=O)O" not in smiles
    rev = hash_split(smiles[::-1], 0.3, seed=1)[::-1]  # split by a hash of the molecule, not by row position
    assert (rev == is_val).all() and 0 < is_val.sum() < len(smiles)


def test_corpus_offset_and_limit(tmp_path, corpus):
    from uniqsar.models.unimol2.pretrain_data import canonical_forms

    smiles, _, stats = read_corpus(corpus, offset=3, limit=4, verbose=False)
    assert smiles == [canonical_forms(s)[0] for s in SMILES[3:7]] and stats["offset"] == 3
    smi = tmp_path / "c.smi"
    smi.write_text("\n".join(f"{s} id{k}" for k, s in enumerate(SMILES)) + "\n")
    assert read_corpus(smi, offset=20, verbose=False)[0] == [canonical_forms(s)[0] for s in SMILES[20:]]


def test_corpus_canonicalization_prints_progress(tmp_path, monkeypatch, capsys):
    """A 500k corpus takes minutes to canonicalize: progress lines, not silence."""
    from uniqsar.models.unimol2 import pretrain_data

    path = tmp_path / "big.csv"
    path.write_text("smiles\n" + "\n".join(SMILES * (2100 // len(SMILES) + 1)) + "\n")
    monkeypatch.setattr(pretrain_data, "PROGRESS_EVERY_S", 0.0)
    read_corpus(path, verbose=True)
    err = capsys.readouterr().err
    assert "corpus: canonicalized 1000/" in err and "corpus: canonicalized 2000/" in err and "s left)" in err


def test_recipe_validation():
    with pytest.raises(ValueError, match="unknown key"):
        recipe_from_dict({"train": {"max_step": 3}})
    with pytest.raises(ValueError, match="unknown section"):
        recipe_from_dict({"optim": {}})
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        recipe_from_dict({"objective": {"drop_feat_prob": 1.5}})
    with pytest.raises(ValueError, match="expected"):
        recipe_from_dict({"train": {"batch_size": "8"}})
    with pytest.raises(ValueError, match="offset must be >= 0"):
        recipe_from_dict({"data": {"offset": -1}})
    small = load_pretrain_recipe("small")
    from uniqsar.models.unimol2.model import UniMol2

    with torch.device("meta"):
        n = UniMol2(small.model).num_params()
    assert n * 4 <= 25 * 2**20 and small.model.lm_head


# ----------------------------------------------------------------------------------------- training


def test_pretrain_tiny_decreases_and_exports(tmp_path, corpus):
    out = tmp_path / "run"
    r = load_pretrain_recipe("tiny")
    r = replace(r, data=replace(r.data, val_fraction=0.15), train=replace(r.train, max_steps=30, batch_size=8))
    card = pretrain(r, corpus, out, verbose=False)
    rows = list(csv.DictReader(open(out / "losses.csv")))
    assert [int(x["step"]) for x in rows] == list(range(1, 31))
    loss = np.array([float(x["loss"]) for x in rows])
    assert np.isfinite(loss).all() and loss[-5:].mean() < loss[:5].mean()
    model, info = load_unimol2(out / "checkpoint.pt")
    assert info["config"]["lm_head"] and info["config"]["embed_dim"] == 64
    assert card["steps"] == 30 and card["sha256"] == json.loads((out / "model_card.json").read_text())["sha256"]
    assert card["command"] and "commit" in card and card["versions"]["uniqsar"]  # what produced it
    ck = torch.load(out / "ckpt" / "last.pt", weights_only=True)
    assert ck["step"] == 30 and ck["rng_torch"].dtype == torch.uint8
    with pytest.raises(FileExistsError):
        pretrain(r, corpus, out, verbose=False)
    # --resume: a checkpoint of another architecture is refused; a larger step budget continues, with a warning
    with pytest.raises(ValueError, match="trained with model"):
        pretrain(replace(r, model=replace(r.model, dropout=0.3)), corpus, out, resume=True, verbose=False)
    with pytest.warns(UserWarning, match="planned for 30 steps, this run for 34"):
        pretrain(r, corpus, out, resume=True, max_steps=34, verbose=False)
    assert [int(x["step"]) for x in csv.DictReader(open(out / "losses.csv"))] == list(range(1, 35))


def test_continued_pretraining_starts_from_given_weights(tmp_path, corpus):
    from uniqsar.models.weights_identity import file_sha256

    r = load_pretrain_recipe("tiny")
    r = replace(r, data=replace(r.data, val_fraction=0.15), train=replace(r.train, max_steps=6, batch_size=8))
    pretrain(r, corpus, tmp_path / "a", verbose=False)
    first = tmp_path / "a" / "checkpoint.pt"
    sha = file_sha256(first)
    # zero steps of continued training (lr ~ 0) must give back the source weights exactly
    cont = replace(r, train=replace(r.train, init_weights=str(first), init_sha256=sha, max_steps=1, lr=1e-30,
                                    warmup_steps=0, end_lr=0.0, weight_decay=0.0))
    card = pretrain(cont, corpus, tmp_path / "b", verbose=False)
    from uniqsar.models.provenance import card_provenance

    init = card["init_weights"]
    assert {k: init[k] for k in ("weights", "path", "sha256")} == {"weights": str(first), "path": str(first),
                                                                  "sha256": sha}
    # the start's provenance travels into the continued run's card
    assert init["provenance"] == card_provenance(json.loads((tmp_path / "a" / "model_card.json").read_text()))
    a, b = load_unimol2(first)[0].state_dict(), load_unimol2(tmp_path / "b" / "checkpoint.pt")[0].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    from uniqsar.models.unimol2.model import UniMol2

    torch.manual_seed(r.train.seed)  # what a from-scratch run of this recipe starts from: not the source
    init = UniMol2(r.model).state_dict()
    assert not all(torch.allclose(a[k], init[k], atol=1e-6) for k in a)
    with pytest.raises(ValueError, match="does not match"):
        pretrain(replace(cont, train=replace(cont.train, init_sha256="0" * 64)), corpus, tmp_path / "d",
                 verbose=False)
    small = load_pretrain_recipe("small")
    with pytest.raises(ValueError, match="architecture differs"):
        pretrain(replace(small, train=replace(small.train, init_weights=str(first), max_steps=1)), corpus,
                 tmp_path / "e", verbose=False)
    with pytest.raises(ValueError, match="init_sha256 is set"):
        recipe_from_dict({"train": {"init_sha256": sha}})


def test_descriptor_scaler_clips_standardizes_and_fills():
    from uniqsar.models.unimol2.pretrain_data import DescriptorScaler

    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(5, 2, 1000), np.full(1000, 3.0), rng.normal(0, 1, 1000)]
    X[0, 0], X[1, 2], X[2, 2] = 1e30, np.nan, np.inf  # an overflow, a NaN, an inf
    sc = DescriptorScaler.fit(X)
    Z = sc.transform(X)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    assert abs(Z[:, 0].mean()) < 0.05 and abs(Z[:, 0].std() - 1) < 0.05 and Z[0, 0] < 3  # outlier clipped
    assert (Z[:, 1] == 0).all() and Z[1, 2] == 0 and Z[2, 2] == 0  # constant column, NaN, inf -> the mean
    assert set(sc.to_dict()) == {"lo", "hi", "mean", "std"}


def test_pretrain_with_rdkit_descriptor_objective(tmp_path, corpus):
    out = tmp_path / "run"
    r = load_pretrain_recipe("tiny")
    r = replace(r, objective=replace(r.objective, aux_descriptors=True, aux_set="rdkit", token_loss=0.0,
                                     coord_loss=0.0, dist_loss=0.0),
                train=replace(r.train, max_steps=80, batch_size=8, lr=3e-3, warmup_steps=2))
    card = pretrain(r, corpus, out, verbose=False)
    from uniqsar.featurize.descriptors import descriptor_names

    assert card["data"]["descriptors"] == descriptor_names()
    assert len(card["data"]["descriptor_scaler"]["mean"]) == len(descriptor_names())
    assert (out / "descriptors_rdkit.npz").is_file()
    aux = np.array([float(x["aux"]) for x in csv.DictReader(open(out / "losses.csv"))])
    assert np.isfinite(aux).all() and aux[-10:].mean() < 0.7 * aux[:5].mean()  # the CLS head learns descriptors
    with pytest.raises(ValueError, match="aux_set"):
        recipe_from_dict({"objective": {"aux_set": "mordred"}})


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, corpus):
    """Kill a pretraining subprocess mid-run, resume it: it continues from the last checkpoint's step and
    ends at the requested step count with a continuous losses.csv."""
    recipe = tmp_path / "pretrain_unimol2_killtest.toml"
    recipe.write_text((RECIPE_DIR / "pretrain_unimol2_tiny.toml").read_text()
                      .replace("checkpoint_every = 10", "checkpoint_every = 4").replace("log_every = 10", "log_every = 4"))
    out, total = tmp_path / "run", 80
    cmd = [sys.executable, "-m", "uniqsar.cli", "pretrain", "--recipe", str(recipe), "--corpus", str(corpus),
           "--out", str(out), "--max-steps", str(total)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    losses, t0 = out / "losses.csv", time.time()
    while time.time() - t0 < 120:
        if losses.exists() and sum(1 for _ in open(losses)) > 14 and (out / "ckpt" / "last.pt").exists():
            break
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = sum(1 for _ in open(losses)) - 1
    k = int(torch.load(out / "ckpt" / "last.pt", weights_only=True)["step"])
    assert 0 < k < total and killed_at < total, (k, killed_at)
    before = list(csv.reader(open(losses)))[1:k + 1]
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"resuming from step {k} " in res.stderr
    rows = list(csv.reader(open(losses)))[1:]
    assert [int(r[0]) for r in rows] == list(range(1, total + 1))
    assert rows[:k] == before  # the rows up to the checkpoint are kept, later ones recomputed
    assert json.loads((out / "model_card.json").read_text())["steps"] == total
    shutil.rmtree(out / "conformers")
