"""Per-atom Uni-Mol2 representations: uniqsar.compat.UniMolRepr against unimol_tools' get_repr (same checkpoint,
live featurization on both sides), batch independence, the released-size resolver, and `uniqsar embed --atomic`."""
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from uniqsar.models.unimol2.weights import save_checkpoint

from . import reference as R

TOL = 1e-4
# a spread of cases from the parity set: charged, stereo, E/Z, salt (2D fallback), halogens, Se/Si, > 20 atoms
SMILES = [R.PARITY_SMILES[i] for i in (0, 1, 2, 4, 5, 7, 9, 11, 12, 16, 19, 20, 21)]


def _rel(ref, mine) -> float:
    ref, mine = np.asarray(ref, np.float64), np.asarray(mine, np.float64)
    assert ref.shape == mine.shape, (ref.shape, mine.shape)
    return float(np.abs(ref - mine).max() / max(1.0, np.abs(ref).max())) if ref.size else 0.0


@pytest.fixture(autouse=True)
def _private_conformer_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("UNIQSAR_CONFORMER_DIR", str(tmp_path_factory.getbasetemp() / "conformers"))


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A tiny uniqsar-made Uni-Mol2 checkpoint in the official layout (no unimol_tools needed)."""
    from uniqsar.models.unimol2.weights import random_unimol2

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_checkpoint(random_unimol2("tiny", seed=3), path)


def test_get_repr_atomic_matches_unimol_tools(tmp_path):
    """Same randomised checkpoint, same SMILES: unimol_tools' get_repr(return_atomic_reprs=True) at batch size 1
    (its padding is unmasked, so only there is a molecule's vector its own) vs ours at the default batch size."""
    pytest.importorskip("unimol_tools")
    U = R.require_reference()
    from unimol_tools import UniMolRepr as RefRepr

    from uniqsar.compat import UniMolRepr

    ref = R.build_reference(tmp_path, "tiny", seed=5)
    ckpt = str(save_checkpoint(ref, tmp_path / "ref.pt"))
    with R._arch_override(U, R.TINY):
        theirs = RefRepr(data_type="molecule", remove_hs=False, model_name="unimolv2", pretrained_model_path=ckpt,
                         batch_size=1, use_cuda=False).get_repr(SMILES, return_atomic_reprs=True)
    mine = UniMolRepr(data_type="molecule", remove_hs=False, model_name="unimolv2", pretrained_model_path=ckpt,
                      use_cuda=False).get_repr(SMILES, return_atomic_reprs=True)
    assert set(mine) == set(theirs) == {"cls_repr", "atomic_reprs", "atomic_coords", "atomic_symbol"}
    worst = {}
    for i, s in enumerate(SMILES):
        for key in ("cls_repr", "atomic_reprs", "atomic_coords"):
            d = _rel(theirs[key][i], mine[key][i])
            worst[key] = max(worst.get(key, 0.0), d)
            assert d <= TOL, f"{s}: {key} rel diff {d:.2e}"
        assert np.array_equal(np.asarray(theirs["atomic_symbol"][i]), mine["atomic_symbol"][i]), s
        assert mine["atomic_reprs"][i].shape == (len(mine["atomic_symbol"][i]), 64)
    print("get_repr atomic parity, worst rel diffs:", worst)


def test_get_repr_shapes_and_batch_independence(tiny_ckpt):
    from uniqsar.compat import UniMolRepr

    smiles = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O"]
    r32 = UniMolRepr(model_name="unimolv2", pretrained_model_path=tiny_ckpt, use_cuda=False)
    r1 = UniMolRepr(model_name="unimolv2", pretrained_model_path=tiny_ckpt, use_cuda=False, batch_size=1)
    cls = r32.get_repr(smiles)
    assert isinstance(cls, list) and len(cls) == 3 and cls[0].shape == (64,) and cls[0].dtype == np.float32
    tensor = r32.get_repr(smiles, return_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tuple(tensor.shape) == (3, 64)
    one = r1.get_repr(smiles, return_atomic_reprs=True)
    batched = r32.get_repr(smiles, return_atomic_reprs=True)
    for i in range(3):  # a molecule's vectors do not depend on its batch neighbours
        assert _rel(one["cls_repr"][i], batched["cls_repr"][i]) < 1e-6
        assert _rel(one["atomic_reprs"][i], batched["atomic_reprs"][i]) < 1e-6
    assert [len(a) for a in batched["atomic_reprs"]] == [3, 7, 13]  # heavy atoms, input order
    assert batched["atomic_symbol"][1].tolist() == [6, 6, 6, 6, 6, 6, 8]
    single = r32.get_repr("c1ccccc1O")  # one SMILES string, as unimol_tools accepts
    assert _rel(single[0], cls[1]) < 1e-6
    frame = r32.get_repr(pd.DataFrame({"SMILES": smiles}))
    assert _rel(np.stack(frame), np.stack(cls)) < 1e-6
    with pytest.warns(UserWarning, match="could not be featurized"):
        bad = r32.get_repr(["CCO", "not_a_smiles"], return_atomic_reprs=True)
    assert np.isnan(bad["cls_repr"][1]).all() and bad["atomic_reprs"][1].shape == (0, 64)


def test_get_repr_custom_conformer(tiny_ckpt):
    from uniqsar.compat import UniMolRepr

    r = UniMolRepr(model_name="unimolv2", pretrained_model_path=tiny_ckpt, use_cuda=False)
    out = r.get_repr({"atoms": ["C", "C", "O", "H", "H"], "coordinates": np.random.default_rng(0).normal(size=(5, 3))},
                     return_atomic_reprs=True)
    assert out["atomic_symbol"][0].tolist() == [6, 6, 8] and out["atomic_reprs"][0].shape == (3, 64)


def test_released_size_resolves_a_locally_placed_checkpoint(tmp_path, monkeypatch, tiny_ckpt):
    """model_size='84m' looks where load_unimol2 looks ($UNIQSAR_UNIMOL2_DIR/modelzoo/84M/checkpoint.pt); offline and
    absent, the error says where to put the file."""
    from uniqsar.compat import UniMolRepr

    monkeypatch.setenv("UNIQSAR_UNIMOL2_DIR", str(tmp_path / "zoo"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="modelzoo/84M/checkpoint.pt"):
        UniMolRepr(data_type="molecule", remove_hs=False, model_name="unimolv2", model_size="84m")
    target = tmp_path / "zoo" / "modelzoo" / "84M" / "checkpoint.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(tiny_ckpt.read_bytes())
    # the blog's representation snippet, import changed only
    clf = UniMolRepr(data_type="molecule", remove_hs=False, model_name="unimolv2", model_size="84m")
    unimol_repr = clf.get_repr(["c1ccc(cc1)C2=NCC(=O)Nc3c2cc(cc3)[N+](=O)[O-]"], return_atomic_reprs=True)
    assert np.array(unimol_repr["cls_repr"]).shape == (1, 64)
    assert np.array(unimol_repr["atomic_reprs"]).shape == (1, 21, 64)


def test_arguments_not_honoured_or_speed_only(tiny_ckpt):
    from uniqsar.compat import CompatError, CompatWarning, UniMolRepr

    with pytest.raises(CompatError, match="not available in uniqsar"):
        UniMolRepr(model_name="unimolv1")
    with pytest.raises(CompatError, match="data_type"):
        UniMolRepr(data_type="pocket", model_name="unimolv2", pretrained_model_path=tiny_ckpt)
    with pytest.raises(CompatError, match="unknown argument"):
        UniMolRepr(model_name="unimolv2", pretrained_model_path=tiny_ckpt, no_such_arg=1)
    with pytest.warns(CompatWarning, match="use_ddp"):
        UniMolRepr(model_name="unimolv2", pretrained_model_path=tiny_ckpt, use_ddp=True, use_cuda=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # defaults alone warn about nothing
        UniMolRepr(model_name="unimolv2", pretrained_model_path=tiny_ckpt, use_cuda=False)


def test_cli_embed_atomic(tmp_path, tiny_ckpt, capsys):
    from uniqsar.cli import main
    from uniqsar.compat import UniMolRepr
    from uniqsar.models.unimol2.atomic import load_atomic

    smiles = ["CCO", "bad(", "OC(=O)c1ccccc1"]
    pd.DataFrame({"smiles": smiles, "y": [1, 2, 3]}).to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "atoms"
    assert main(["-q", "embed", str(tmp_path / "d.csv"), "--model", "unimol2", "--atomic", "--weights",
                 str(tiny_ckpt), "--out", str(out)]) == 0
    z = np.load(out / "atomic.npz", allow_pickle=False)  # plain arrays only
    assert z["atomic_reprs"].dtype == np.float32 and z["offsets"].tolist() == [0, 3, 3, 12]
    d = load_atomic(out / "atomic.npz")
    assert d["smiles"] == smiles and d["error"][0] == "" and "parse" in d["error"][1]
    assert d["atomic_symbols"][2].tolist() == ["O", "C", "O", "C", "C", "C", "C", "C", "C"]
    assert d["atom_index"][2].tolist() == list(range(9)) and d["atomic_coords"][2].shape == (9, 3)
    ref = UniMolRepr(model_name="unimolv2", pretrained_model_path=tiny_ckpt, use_cuda=False).get_repr(
        [smiles[0], smiles[2]], return_atomic_reprs=True)
    assert _rel(ref["atomic_reprs"][1], d["atomic_reprs"][2]) < 1e-6 and _rel(ref["cls_repr"][0], d["cls"][0]) < 1e-6
    assert np.isnan(d["cls"][1]).all()
    assert (out / "summary.json").is_file()
    assert main(["embed", str(tmp_path / "d.csv"), "--model", "dmpnn", "--atomic", "--out", str(out)]) == 2
    assert "--atomic is for --model unimol2" in capsys.readouterr().err


@pytest.mark.slow
def test_get_repr_atomic_matches_unimol_tools_84m(tmp_path, monkeypatch):
    """The full 84m architecture (randomised, 334 MB in tmp) placed where model_size='84m' resolves, against
    unimol_tools reading the same file through pretrained_model_path."""
    pytest.importorskip("unimol_tools")
    R.require_reference()
    from unimol_tools import UniMolRepr as RefRepr

    from uniqsar.compat import UniMolRepr

    ref = R.build_reference(tmp_path, "84m", seed=7)
    ckpt = save_checkpoint(ref, tmp_path / "zoo" / "modelzoo" / "84M" / "checkpoint.pt")
    del ref
    monkeypatch.setenv("UNIQSAR_UNIMOL2_DIR", str(tmp_path / "zoo"))
    smiles = [R.PARITY_SMILES[i] for i in (0, 4, 12, 15)]
    theirs = RefRepr(data_type="molecule", remove_hs=False, model_name="unimolv2", pretrained_model_path=str(ckpt),
                     batch_size=1, use_cuda=False).get_repr(smiles, return_atomic_reprs=True)
    mine = UniMolRepr(data_type="molecule", remove_hs=False, model_name="unimolv2", model_size="84m",
                      use_cuda=False).get_repr(smiles, return_atomic_reprs=True)
    worst = {}
    for i, s in enumerate(smiles):
        for key in ("cls_repr", "atomic_reprs", "atomic_coords"):
            d = _rel(theirs[key][i], mine[key][i])
            worst[key] = max(worst.get(key, 0.0), d)
            assert d <= TOL, f"{s}: {key} rel diff {d:.2e}"
        assert np.array_equal(np.asarray(theirs["atomic_symbol"][i]), mine["atomic_symbol"][i]), s
        assert mine["atomic_reprs"][i].shape[1] == 768
    print("get_repr atomic parity (84m), worst rel diffs:", worst)
