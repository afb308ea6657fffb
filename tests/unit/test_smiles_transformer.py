"""SMILES transformer: encoder, MLM corruption, pretraining (tiny recipe: steps, checkpoint, exact resume,
exclusion, CLI dispatch), weights resolution, fine-tuning learner (overfit, save/load, TTA, search space) and the
embedding featurizer (shape, NaN rows, cache hit, cache key = weights identity). Tiny networks keep it fast."""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Crippen

from uniqsar.featurize.smiles_tokens import CLS_ID, MASK_ID, PAD_ID, SEP_ID, SmilesTokenizer
from uniqsar.models.smiles import pretrain as pt
from uniqsar.models import weights_identity
from uniqsar.models.smiles import pretrained
from uniqsar.models.smiles.learner import SmilesTransformerLearner
from uniqsar.models.smiles.model import SmilesEncoder, SmilesMLM, SmilesTransformerConfig, num_params, pool
from uniqsar.models.smiles.pretrain_recipe import ObjectiveSpec, load_smiles_recipe, recipe_from_dict
from uniqsar.registry import get_featurizer_class

ARCH = {"d_model": 32, "n_layers": 2, "n_heads": 2, "ffn_dim": 64}
SMILES = np.array([
    "CCO", "CCCO", "CCCCO", "CC(C)O", "CC(=O)O", "CCC(=O)O", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1",
    "Clc1ccccc1", "c1ccc2ccccc2c1", "C1CCCCC1", "C1CCNCC1", "C1CCOC1", "CC(=O)Nc1ccc(O)cc1",
], dtype=object)
CORPUS = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "OC(=O)CCC(=O)O", "c1ccncc1", "CC(C)O",
          "CCOC(=O)C", "Nc1ccccc1", "Clc1ccccc1", "CCCCCC", "OCCO", "CC#N", "C1CCCCC1", "c1ccc2ccccc2c1",
          "CC(=O)N", "COc1ccccc1", "CCS", "O=C1CCCCC1", "c1ccoc1", "CC(C)(C)O", "FC(F)(F)c1ccccc1",
          "C[C@@H](N)C(=O)O", "Brc1ccc(Br)cc1", "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O", "CC(=O)[O-].[Na+]",
          "c1ccc(-c2ccccc2)cc1", "CN1CCC[C@H]1c1cccnc1", "O=[N+]([O-])c1ccccc1", "CCCCCCCCO"]


def _logp(smiles):
    return np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles])


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("smiles_corpus") / "corpus.csv"
    path.write_text("smiles\n" + "\n".join(CORPUS) + "\n")
    return path


def _tiny(max_steps=12, **train):
    r = load_smiles_recipe("pretrain_smiles_tiny")
    return replace(r, data=replace(r.data, val_fraction=0.2),
                   train=replace(r.train, max_steps=max_steps, batch_size=4, checkpoint_every=4, log_every=4,
                                 val_every=4, **train))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("smiles_pt") / "run"
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pt.pretrain(_tiny(), corpus, out, verbose=False)
    finally:
        torch.set_num_threads(old)
    return out / "checkpoint.pt"


# ----------------------------------------------------------------------------------------- model


def test_default_config_size_and_small_recipe():
    cfg = pretrained.default_config()
    assert cfg.vocab_size == SmilesTokenizer().vocab_size
    with torch.device("meta"):
        n = num_params(SmilesMLM(cfg))
        n_small = num_params(SmilesMLM(load_smiles_recipe("pretrain_smiles_small").model))
    assert 3e6 < n == n_small and n * 4 <= 15 * 2**20


def test_encoder_shapes_pooling_and_padding_invariance():
    torch.manual_seed(0)
    cfg = SmilesTransformerConfig(vocab_size=SmilesTokenizer().vocab_size, **ARCH, dropout=0.0, attn_dropout=0.0)
    enc = SmilesEncoder(cfg).eval()
    tok = SmilesTokenizer()
    seqs = [tok.encode(s) for s in ("CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1")]
    L = max(map(len, seqs))
    batch = torch.tensor([s + [PAD_ID] * (L - len(s)) for s in seqs])
    with torch.no_grad():
        h = enc(batch)
        assert h.shape == (3, L, 32)
        v = pool(h, batch, "cls+mean")
        assert v.shape == (3, 64) and pool(h, batch, "cls").shape == (3, 32)
        alone = pool(enc(torch.tensor([seqs[0]])), torch.tensor([seqs[0]]), "cls+mean")
    torch.testing.assert_close(alone[0], v[0], rtol=1e-5, atol=1e-5)  # padding does not leak in
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.ones(1, cfg.max_len + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple"):
        SmilesTransformerConfig(d_model=30, n_heads=4).validate()


def test_mask_tokens_80_10_10():
    tok = SmilesTokenizer()
    ids = np.array(tok.encode("CC(=O)Oc1ccccc1C(=O)OCCN(CC)CC"))
    n_real = len(ids) - 2
    rng, obj = np.random.default_rng(0), ObjectiveSpec()
    kinds, counts = {"mask": 0, "random_or_kept": 0}, set()
    for _ in range(400):
        x, sel = pt.mask_tokens(ids, rng, obj, tok.n_special, tok.vocab_size)
        assert not sel[0] and not sel[-1] and (x[~sel] == ids[~sel]).all()
        counts.add(int(sel.sum()))
        kinds["mask"] += int((x[sel] == MASK_ID).sum())
        kinds["random_or_kept"] += int((x[sel] != MASK_ID).sum())
        assert (x[sel] >= tok.n_special).sum() + (x[sel] == MASK_ID).sum() == sel.sum()  # no pad/cls/sep/unk
    assert counts <= {int(0.15 * n_real), int(0.15 * n_real) + 1}
    frac = kinds["mask"] / (kinds["mask"] + kinds["random_or_kept"])
    assert 0.75 < frac < 0.85
    x, sel = pt.mask_tokens(np.array([CLS_ID, 20, SEP_ID]), rng, obj, tok.n_special, tok.vocab_size)
    assert sel.tolist() == [False, True, False]  # at least one token per molecule


def test_recipe_validation_and_dispatch():
    from uniqsar.models.pretraining import recipe_kind, resolve_recipe

    assert recipe_kind(resolve_recipe("pretrain_smiles_tiny")[1]) == "smiles_transformer"
    assert recipe_kind(resolve_recipe("smiles_small")[1]) == "smiles_transformer"
    assert recipe_kind(resolve_recipe("tiny")[1]) == "unimol2"  # the Uni-Mol2 names keep working
    with pytest.raises(ValueError, match="unknown key"):
        recipe_from_dict({"train": {"max_step": 3}})
    with pytest.raises(ValueError, match="unknown section"):
        recipe_from_dict({"optim": {}})
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        recipe_from_dict({"objective": {"mask_prob": 1.5}})
    with pytest.raises(ValueError, match="kind"):
        recipe_from_dict({"model": {"kind": "unimol2"}})
    with pytest.raises(ValueError, match="vocab_size"):
        recipe_from_dict({"model": {"vocab_size": 10}})
    with pytest.raises(ValueError, match="unknown pretraining"):
        recipe_kind({"model": {"kind": "gpt"}})
    with pytest.raises(FileNotFoundError, match="pretrain_smiles_tiny"):
        resolve_recipe("no_such_recipe")


# ----------------------------------------------------------------------------------------- pretraining


def test_pretrain_tiny_writes_everything(tiny_checkpoint):
    out = tiny_checkpoint.parent
    rows = list(csv.DictReader(open(out / "losses.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert [int(r["step"]) for r in csv.DictReader(open(out / "val_losses.csv"))] == [4, 8, 12]
    card = json.loads((out / "model_card.json").read_text())
    assert card["kind"] == "smiles_transformer" and card["steps"] == 12
    assert card["command"] and "commit" in card and card["versions"]["uniqsar"]  # what produced it
    assert card["sha256"] == pretrained.file_sha256(tiny_checkpoint)
    ck = torch.load(out / "ckpt" / "last.pt", weights_only=True)
    assert ck["step"] == 12 and ck["rng_numpy"].dtype == torch.uint8
    model, tok = pretrained.load_mlm(tiny_checkpoint)  # weights_only export, own vocabulary
    assert model.cfg.d_model == 32 and tok.tokens == SmilesTokenizer().tokens
    with pytest.raises(FileExistsError):
        pt.pretrain(_tiny(), out.parent / "corpus_unused.csv", out, verbose=False)


def test_pretrain_resume_is_exact(tmp_path, corpus, tiny_checkpoint, monkeypatch):
    """Crash at step 7 (last checkpoint: step 4) -> --resume recomputes steps 5-12 exactly as an uninterrupted run."""
    ref = [r for r in csv.reader(open(tiny_checkpoint.parent / "losses.csv"))]
    real, calls = pt.mlm_loss, {"n": 0}

    def crashing(model, batch):
        if model.training:
            calls["n"] += 1
            if calls["n"] == 7:
                raise RuntimeError("simulated crash")
        return real(model, batch)

    out = tmp_path / "run"
    monkeypatch.setattr(pt, "mlm_loss", crashing)
    with pytest.raises(RuntimeError, match="simulated"):
        pt.pretrain(_tiny(), corpus, out, verbose=False)
    monkeypatch.setattr(pt, "mlm_loss", real)
    assert int(torch.load(out / "ckpt" / "last.pt", weights_only=True)["step"]) == 4
    pt.pretrain(_tiny(), corpus, out, resume=True, verbose=False)
    rows = [r for r in csv.reader(open(out / "losses.csv"))]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 13))
    col = {name: i for i, name in enumerate(ref[0])}
    for a, b in zip(ref[1:], rows[1:]):  # same losses, accuracies, learning rates
        assert [a[col[k]] for k in ("step", "loss", "acc", "lr", "tokens")] == \
               [b[col[k]] for k in ("step", "loss", "acc", "lr", "tokens")]
    assert pretrained.file_sha256(out / "checkpoint.pt") == pretrained.file_sha256(tiny_checkpoint)


def test_resume_with_a_new_step_budget_warns(tmp_path, corpus, tiny_checkpoint):
    """Continuing a finished run for more steps recomputes the LR schedule: the user is told."""
    out = tmp_path / "run"
    shutil.copytree(tiny_checkpoint.parent, out)
    with pytest.warns(UserWarning, match="planned for 12 steps, this run for 14"):
        pt.pretrain(_tiny(max_steps=14), corpus, out, resume=True, verbose=False)
    rows = list(csv.reader(open(out / "losses.csv")))
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 15))


def test_pretrain_exclusion_and_cli(tmp_path, corpus, monkeypatch, capsys):
    from uniqsar.cli import main

    monkeypatch.setattr("uniqsar.util.QUIET", False)  # restored after `-q`
    # other spellings of corpus molecules: ethanol, aspirin as a potassium salt (standardized parent), and the
    # enantiomer of the corpus alanine (stereo-free forms are blocked too)
    excl = tmp_path / "tdc_test.csv"
    excl.write_text("Drug_ID,Drug,Y\na,OCC,1\nb,O=C(O)c1ccccc1OC(C)=O.[K+],0\nc,C[C@H](N)C(O)=O,1\n")
    out = tmp_path / "run"
    rc = main(["-q", "pretrain", "--recipe", "pretrain_smiles_tiny", "--corpus", str(corpus), "--out", str(out),
               "--exclude", str(excl), "--max-steps", "3"])
    assert rc == 0
    kept = [r["smiles"] for r in csv.DictReader(open(out / "corpus.csv"))]
    assert "CCO" not in kept and "CC(=O)Oc1ccccc1C(=O)O" not in kept and "C[C@@H](N)C(=O)O" not in kept
    assert len(kept) == len(CORPUS) - 3
    card = json.loads((out / "model_card.json").read_text())
    assert card["data"]["excluded"] == 3 and card["data"]["exclusion_files"] == [str(excl)] and card["steps"] == 3
    assert card["device"] == "cpu"
    if not torch.cuda.is_available():  # the GPU path: a clear error where there is no GPU
        capsys.readouterr()
        assert main(["-q", "pretrain", "--recipe", "pretrain_smiles_tiny", "--corpus", str(corpus), "--out",
                     str(tmp_path / "run_cuda"), "--max-steps", "3", "--device", "cuda"]) != 0
        assert "CUDA is not available" in capsys.readouterr().err
    # resuming with other exclusions is refused
    rc = main(["-q", "pretrain", "--recipe", "pretrain_smiles_tiny", "--corpus", str(corpus), "--out", str(out),
               "--exclude", str(corpus), "--resume"])
    assert rc == 2


# ----------------------------------------------------------------------------------------- weights


def test_shipped_default_checkpoint():
    """The package ships pretrained SMILES-transformer weights (<= 15 MB) whose model card matches them; they are
    what weights="default" loads, and they know SMILES: masked tokens of held-out-style molecules are recovered."""
    if not pretrained.DEFAULT_CHECKPOINT.is_file():
        pytest.skip("trimmed install without the default checkpoint")
    assert pretrained.DEFAULT_CHECKPOINT.stat().st_size <= 15e6
    card = json.loads(pretrained.DEFAULT_CARD.read_text())
    ident = pretrained.identity("default")
    assert ident["kind"] == "file" and ident["sha256"] == card["sha256"]
    assert card["config"] == pretrained.default_config().to_dict()
    assert card["data"]["excluded"] > 0 and card["final_val_losses"]["acc"] > 0.8  # TDC test molecules kept out
    with pytest.raises(ValueError, match="random"):
        pretrained.resolve_spec("default", arch=ARCH)
    mlm, tok = pretrained.load_mlm("default")
    mlm.eval()
    ids = tok.encode("CC(=O)Nc1ccc(O)cc1", max_len=128)  # paracetamol: mask every 4th token, predict them
    pos = np.arange(2, len(ids) - 1, 4)
    x = torch.tensor([ids])
    x[0, pos] = MASK_ID
    masked = torch.zeros_like(x, dtype=torch.bool)
    masked[0, pos] = True
    with torch.no_grad():
        pred = mlm(x, masked).argmax(-1).numpy()
    assert (pred == np.asarray(ids)[pos]).mean() >= 0.75
    pre = get_featurizer_class("smiles_transformer")(weights="default").compute(["CCO", "c1ccccc1O"])
    rnd = get_featurizer_class("smiles_transformer")(weights="random").compute(["CCO", "c1ccccc1O"])
    assert np.isfinite(pre).all() and pre.shape == rnd.shape and not np.allclose(pre, rnd)


def test_default_weights_fall_back_to_seeded_random(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(pretrained, "DEFAULT_CHECKPOINT", tmp_path / "absent.pt")
    monkeypatch.setattr(weights_identity, "_warned", set())
    ident = pretrained.identity("default", seed=3, arch=ARCH)
    assert ident["kind"] == "random" and ident["seed"] == 3
    assert "RANDOM" in capsys.readouterr().err
    a, _ = pretrained.load_mlm("default", seed=3, arch=ARCH)
    b, _ = pretrained.load_mlm("random", seed=3, arch=ARCH)
    c, _ = pretrained.load_mlm("random", seed=4, arch=ARCH)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and not all(torch.equal(sa[k], sc[k]) for k in sa)
    with pytest.raises(FileNotFoundError, match="no such file"):
        pretrained.resolve_spec(str(tmp_path / "nope.pt"))
    bad = tmp_path / "bad.pt"
    torch.save({"model": {}}, bad)
    with pytest.raises(pretrained.SmilesWeightsError, match="not a"):
        pretrained.load_mlm(bad)


# ----------------------------------------------------------------------------------------- learner

FAST = {"weights": "random", "arch": ARCH, "lr": 2e-3, "batch_size": 16, "dropout": 0.0}


def test_overfit_regression_with_augmentation():
    y = _logp(SMILES)
    m = SmilesTransformerLearner("regression", seed=0, epochs=40, **FAST).fit(SMILES, y)
    p = m.predict(SMILES)
    r2 = 1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert r2 > 0.9, r2
    assert m.history_[-1]["train_loss"] < 0.1 * m.history_[0]["train_loss"]


def test_overfit_binary():
    from sklearn.metrics import roc_auc_score

    y = (_logp(SMILES) > np.median(_logp(SMILES))).astype(float)
    m = SmilesTransformerLearner("binary", seed=0, epochs=40, **FAST).fit(SMILES, y)
    p = m.predict(SMILES)
    assert ((p >= 0) & (p <= 1)).all() and roc_auc_score(y, p) > 0.95
    assert m.predict_proba(SMILES).shape == (len(SMILES), 2)


def test_tta_batch_independent_and_canonical():
    y = _logp(SMILES)
    m = SmilesTransformerLearner("regression", seed=1, epochs=3, **FAST).fit(SMILES, y)
    p = m.predict(SMILES)
    alone = np.array([m.predict(SMILES[i:i + 1])[0] for i in range(4)])
    np.testing.assert_allclose(alone, p[:4], rtol=1e-5, atol=1e-5)
    # another writing of the same molecule gives the same prediction (canonicalized first)
    np.testing.assert_allclose(m.predict(np.array(["OCC", "c1ccccc1C"], dtype=object)), p[[0, 7]], rtol=1e-5,
                               atol=1e-5)


def test_deterministic_seed_invalid_smiles_and_validation():
    y = _logp(SMILES)
    X = np.concatenate([SMILES, ["not_a_smiles", "C1CC"]])
    yy = np.concatenate([y, [0.0, 1.0]])
    a = SmilesTransformerLearner("regression", seed=5, epochs=2, **FAST).fit(X, yy)
    b = SmilesTransformerLearner("regression", seed=5, epochs=2, **FAST).fit(X, yy)
    c = SmilesTransformerLearner("regression", seed=6, epochs=2, **FAST).fit(X, yy)
    assert a.n_failed_ == 2
    assert np.array_equal(a.predict(SMILES), b.predict(SMILES)) and not np.allclose(a.predict(SMILES),
                                                                                     c.predict(SMILES))
    p = a.predict(np.array(["CCO", "xyz", ""], dtype=object))
    assert np.isfinite(p).all() and p[1] == p[2] == a.fallback_
    m = SmilesTransformerLearner("regression", seed=0, epochs=2, **FAST).fit(SMILES[:12], y[:12], SMILES[12:], y[12:])
    assert all("valid" in h for h in m.history_) and m.best_epoch_ is not None


def test_freeze_layers_and_pretrained_init(tiny_checkpoint):
    m = SmilesTransformerLearner("regression", seed=0, weights=str(tiny_checkpoint), freeze_layers=1, epochs=1,
                                 lr=1e-3, batch_size=16)
    model, _ = m._build()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any(n.startswith("encoder.layers.0.") for n in frozen) and "encoder.tok_embed.weight" in frozen
    assert not any(n.startswith(("encoder.layers.1.", "head.")) for n in frozen)
    ref, _ = pretrained.load_mlm(tiny_checkpoint)
    assert torch.equal(model.encoder.layers[1].fc1.weight, ref.encoder.layers[1].fc1.weight)
    y = _logp(SMILES)
    fitted = m.fit(SMILES, y)
    assert torch.equal(fitted.model_.encoder.layers[0].fc1.weight, ref.encoder.layers[0].fc1.weight)  # frozen
    assert not torch.equal(fitted.model_.encoder.layers[1].fc1.weight, ref.encoder.layers[1].fc1.weight)


# ----------------------------------------------------------------------------------------- featurizer


def test_featurizer_shape_nan_rows_and_cache(tmp_path, tiny_checkpoint):
    from uniqsar.featurize.cache import FeatureCache

    cls = get_featurizer_class("smiles_transformer")
    f = cls(weights=str(tiny_checkpoint))
    smiles = ["CCO", "not_a_smiles", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
    X = f.compute(smiles)
    assert X.shape == (4, 64) and X.dtype == np.float32 and f.dim() == 64
    assert np.isnan(X[1]).all() and np.isfinite(X[[0, 2, 3]]).all()
    np.testing.assert_allclose(cls(weights=str(tiny_checkpoint), batch_size=1).compute(smiles[2:3]), X[2:3],
                               rtol=1e-5, atol=1e-5)
    assert f.compute([]).shape[0] == 0
    cache = FeatureCache(tmp_path / "cache")
    first = cache.get(f, smiles)
    assert cache.last_misses == 4 and cache.last_hits == 0
    again = cache.get(cls(weights=str(tiny_checkpoint)), smiles)
    assert cache.last_hits == 4 and cache.last_misses == 0
    np.testing.assert_array_equal(first, again)
    # the key follows the weights: identical file content -> same key; other weights / pooling -> new key
    copy = tmp_path / "copy.pt"
    copy.write_bytes(tiny_checkpoint.read_bytes())
    assert cls(weights=str(copy)).cache_id == f.cache_id
    assert cls(weights=str(copy), batch_size=7).cache_id == f.cache_id
    assert cls(weights="random", arch=ARCH).cache_id != f.cache_id
    assert cls(weights="random", arch=ARCH, seed=1).cache_id != cls(weights="random", arch=ARCH).cache_id
    assert cls(weights=str(copy), pooling="cls").cache_id != f.cache_id
    assert cls(weights=str(copy), pooling="cls").compute(["CCO"]).shape == (1, 32)
    ident = f.weights_identity()
    assert ident["kind"] == "file" and ident["sha256"] == pretrained.file_sha256(tiny_checkpoint)
    assert ident["model_card"]["kind"] == "smiles_transformer"


def test_featurizer_augmentation_average():
    cls = get_featurizer_class("smiles_transformer")
    one = cls(weights="random", arch=ARCH).compute(["CC(=O)Oc1ccccc1C(=O)O"])
    avg = cls(weights="random", arch=ARCH, n_augment=4).compute(["CC(=O)Oc1ccccc1C(=O)O"])
    avg2 = cls(weights="random", arch=ARCH, n_augment=4).compute(["O=C(O)c1ccccc1OC(C)=O", "CCO"])
    assert one.shape == avg.shape == (1, 64) and not np.allclose(one, avg)
    np.testing.assert_allclose(avg[0], avg2[0], rtol=1e-5, atol=1e-5)  # canonicalized, batch-independent seeds
    with pytest.raises(ValueError, match="n_augment"):
        cls(n_augment=0)
    with pytest.raises(ValueError, match="unknown parameter"):
        cls(definitely_not=1)


def test_run_manifest_records_weights_identity(tmp_path, tiny_checkpoint):
    from uniqsar.config import load_recipe
    from uniqsar.models.provenance import recipe_representations

    recipe_path = tmp_path / "r.toml"
    recipe_path.write_text(f'''name = "t"
[featurizers]
st = {{ key = "smiles_transformer", weights = "{tiny_checkpoint}" }}
[[models]]
learner = "smiles_transformer"
params = {{ weights = "random", arch = {{ d_model = 32, n_layers = 1 }} }}
''')
    recipe = load_recipe(str(recipe_path))
    specs = {f.alias: {"key": f.key, "params": f.params} for f in recipe.featurizers}
    ids = recipe_representations(recipe, specs, seed=3)
    assert ids["featurizer:st"]["kind"] == "file"
    assert ids["featurizer:st"]["sha256"] == pretrained.file_sha256(tiny_checkpoint)
    learner = ids[f"learner:{recipe.models[0].id}"]
    assert learner["kind"] == "random" and learner["seed"] == 3 and learner["config"]["d_model"] == 32
