import argparse
import pickle
from pathlib import Path

import pytest
import torch

from uniqsar.models.unimol2 import SIZES, UniMol2, get_config, infer_config
from uniqsar.models.unimol2.weights import (
    UniMol2CheckpointError,
    UniMol2WeightsNotFound,
    default_cache_dir,
    load_unimol2,
    random_unimol2,
    save_checkpoint,
)

# Parameter counts measured on the unimol_tools model (output_dim=1, no lm_head): shared/reference §1.6.
MEASURED = {"84m": 83_426_289, "164m": 164_082_225, "310m": 308_901_057, "570m": 567_674_593,
            "1.1b": 1_126_650_593}


@pytest.fixture
def tiny_sd():
    return random_unimol2("tiny", seed=0, num_classes=2).state_dict()


@pytest.mark.parametrize("size", sorted(MEASURED))
def test_sizes_param_counts_and_infer_roundtrip(size):
    cfg = get_config(size, num_classes=1)
    with torch.device("meta"):  # no memory for 1.1B parameters
        model = UniMol2(cfg)
    assert model.num_params() == MEASURED[size]
    sd = model.state_dict()
    assert infer_config(sd) == cfg
    assert "edge_feature.shorest_path_encoder.weight" in sd and "se3_invariant_kernel.gaussian.mean" in sd
    if size == "84m":
        assert len(sd) == 498 and sd["encoder.layers.11.opm.linear_out.weight"].shape == (512, 4096)
    with torch.device("meta"):
        mlm = UniMol2(cfg.with_(lm_head=True, num_classes=0))
    assert infer_config(mlm.state_dict()).lm_head
    assert mlm.num_params() - MEASURED[size] + cfg.embed_dim + 1 == cfg.embed_dim**2 + 131 * cfg.embed_dim + 128


def test_size_name_offline_error_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIQSAR_UNIMOL2_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, folder in [("84m", "84M"), ("1.1B", "1.1B"), ("164M", "164M")]:
        with pytest.raises(UniMol2WeightsNotFound) as e:
            load_unimol2(name)
        assert str(tmp_path / "cache" / "modelzoo" / folder / "checkpoint.pt") in str(e.value)
        assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(UniMol2WeightsNotFound):
        load_unimol2("no-such-model")


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("UNIQSAR_UNIMOL2_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "uniqsar" / "unimol2"


def test_size_name_resolves_from_cache_and_folder(tmp_path, monkeypatch, tiny_sd):
    target = tmp_path / "modelzoo" / "84M" / "checkpoint.pt"
    target.parent.mkdir(parents=True)
    torch.save({"model": tiny_sd}, target)
    monkeypatch.setenv("UNIQSAR_UNIMOL2_DIR", str(tmp_path))
    model, info = load_unimol2("84M")
    assert info["path"] == str(target) and info["config"]["embed_dim"] == 64
    assert load_unimol2(target.parent)[1]["path"] == str(target)  # a folder holding checkpoint.pt
    assert load_unimol2("84m", cache_dir=tmp_path)[1]["path"] == str(target)


def test_uni_core_layout_with_argparse_namespace(tmp_path, tiny_sd):
    path = tmp_path / "checkpoint.pt"
    args = argparse.Namespace(arch="unimol2_84M", lr=[1e-4], seed=1, fp16=True)
    torch.save({"args": args, "model": tiny_sd, "extra_state": {"epoch": 3}, "optimizer_history": []}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # proves the allowlisted retry is what makes it load
    model, info = load_unimol2(path)
    assert info["layout"] == "model" and model.classification_head.out_proj.out_features == 2


@pytest.mark.parametrize("layout", ["model_state_dict", "bare", "ema", "fp16"])
def test_other_layouts(tmp_path, tiny_sd, layout):
    path = tmp_path / "ck.pt"
    half = {k: v.half() for k, v in tiny_sd.items()}
    obj = {"model_state_dict": tiny_sd, "bare": tiny_sd, "ema": {"model": half, "ema": {"params": tiny_sd}},
           "fp16": {"model": half}}[layout]
    torch.save(obj, path)
    model, info = load_unimol2(path, use_ema=layout == "ema")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    src = half if layout == "fp16" else tiny_sd
    assert torch.equal(model.state_dict()["embed_tokens.weight"], src["embed_tokens.weight"].float())


def test_missing_and_unexpected_keys_are_errors(tmp_path, tiny_sd):
    bad = dict(tiny_sd)
    del bad["encoder.layers.1.pair_tri_mul.linear_z.weight"]
    torch.save({"model": bad}, tmp_path / "a.pt")
    with pytest.raises(UniMol2CheckpointError, match="linear_z"):
        load_unimol2(tmp_path / "a.pt")
    extra = dict(tiny_sd, **{"encoder.extra.weight": torch.zeros(1)})
    torch.save({"model": extra}, tmp_path / "b.pt")
    with pytest.raises(UniMol2CheckpointError, match="encoder.extra.weight"):
        load_unimol2(tmp_path / "b.pt")
    torch.save({"model": {"foo": torch.zeros(1)}}, tmp_path / "c.pt")
    with pytest.raises(UniMol2CheckpointError):
        load_unimol2(tmp_path / "c.pt")


def test_optional_heads(tmp_path):
    src = random_unimol2("tiny", seed=1, lm_head=True)  # pretraining layout: lm_head, no task head
    path = save_checkpoint(src, tmp_path / "pre.pt")
    full, info = load_unimol2(path)
    assert full.lm_head is not None and info["ignored"] == []
    assert torch.equal(full.lm_head.weight, src.lm_head.weight)
    slim, info = load_unimol2(path, lm_head=False)
    assert slim.lm_head is None and all(k.startswith("lm_head.") for k in info["ignored"]) and info["ignored"]
    ft, info = load_unimol2(path, num_classes=3, lm_head=False)  # fine-tuning: a new seeded task head
    assert info["new_heads"] == ["classification_head"] and ft.classification_head.out_proj.out_features == 3
    assert not any(p.is_meta for p in ft.parameters())
    ft2, _ = load_unimol2(path, num_classes=3, lm_head=False)
    assert torch.equal(ft.classification_head.out_proj.weight, ft2.classification_head.out_proj.weight)


def test_save_checkpoint_roundtrip(tmp_path):
    m = random_unimol2("tiny", seed=3, num_classes=1)
    path = save_checkpoint(m, tmp_path / "sub" / "checkpoint.pt")
    raw = torch.load(path, weights_only=True)
    assert list(raw) == ["model"]
    m2, info = load_unimol2(Path(path).parent)
    assert info["missing"] == [] and info["unexpected"] == []
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    assert SIZES["tiny"].pair_hidden == 8
