"""Numerical parity with the reference implementation (unimol_tools==0.1.6), same features on both sides.

The features come from tests/data/unimol2/ref_features.npz (reference featurizer output), so RDKit / MMFF
drift cannot break these tests. Tolerance: max |diff| / max(1, max |ref|) <= 1e-4 per molecule and output.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from uniqsar.models.unimol2.features import collate
from uniqsar.models.unimol2.weights import load_unimol2, save_checkpoint

from . import reference as R

DATA = Path(__file__).resolve().parents[2] / "data" / "unimol2"
TOL = 1e-4


def _rel(ref, mine) -> float:
    ref, mine = np.asarray(ref, np.float64), np.asarray(mine, np.float64)
    assert ref.shape == mine.shape, (ref.shape, mine.shape)
    return float(np.abs(ref - mine).max() / max(1.0, np.abs(ref).max()))


def _ours(model, feat, mode):
    with torch.no_grad():
        out = model(collate([feat]), mode=mode)
    return out["cls"][0].numpy(), out["atoms"][0].numpy(), out["coords"][0].numpy()


def _compare(ref_outputs, model, feats, modes=("reference", "correct")):
    worst = {}
    for i, f in enumerate(feats):
        ref = ref_outputs(i)
        for mode in modes:
            for name, r, m in zip(("cls", "atoms", "coords"), ref, _ours(model, f, mode)):
                d = _rel(r, m)
                worst[f"{mode}/{name}"] = max(worst.get(f"{mode}/{name}", 0.0), d)
                absd = float(np.abs(np.asarray(r, np.float64) - m).max())
                worst[f"{mode}/{name}/abs"] = max(worst.get(f"{mode}/{name}/abs", 0.0), absd)
                assert d <= TOL, f"molecule {i} ({mode}) {name}: rel diff {d:.2e}"
    return worst


@pytest.fixture(scope="module")
def fixture_features():
    smiles, feats = R.load_features_npz(DATA / "ref_features.npz")
    assert len(feats) >= 20 and max(len(f["src_tokens"]) for f in feats) > 60
    return smiles, feats


def test_parity_tiny_frozen(fixture_features):
    """Frozen reference outputs (made by make_fixtures.py): runs even without unimol_tools."""
    _, feats = fixture_features
    model, info = load_unimol2(DATA / "tiny_ref_random.pt")
    assert info["layout"] == "model" and info["config"]["layers"] == 2
    z = np.load(DATA / "tiny_ref_outputs.npz")
    worst = _compare(lambda i: (z[f"{i}/cls"], z[f"{i}/atoms"], z[f"{i}/coords"]), model, feats)
    print("tiny frozen worst rel diffs:", worst)


def test_parity_tiny_live(tmp_path, fixture_features):
    """Reference model built by the offline recipe, every parameter randomised, loaded by load_unimol2."""
    _, feats = fixture_features
    ref = R.build_reference(tmp_path, "tiny", seed=1)
    save_checkpoint(ref, tmp_path / "ref.pt")  # official layout {'model': sd}
    model, info = load_unimol2(tmp_path / "ref.pt")
    assert info["missing"] == [] and info["unexpected"] == [] and info["new_heads"] == []
    assert sum(p.numel() for p in ref.parameters()) == model.num_params() == 168_397
    worst = _compare(lambda i: R.reference_forward(ref, feats[i]), model, feats)
    print("tiny live worst rel diffs:", worst)
    # classification head output matches too, and our state_dict loads back into the reference strictly
    with torch.no_grad():
        batch, _ = ref.batch_collate_fn([(feats[0], np.zeros(1))])
        logit_ref = ref(**batch).numpy()
        logit = model(collate([feats[0]]))["logits"].numpy()
    assert _rel(logit_ref, logit) <= TOL
    ref.load_state_dict(model.state_dict(), strict=True)


def test_reference_mode_matches_reference_batched(tmp_path, fixture_features):
    """In "reference" mode a mixed padded batch reproduces unimol_tools' (unmasked) batched outputs."""
    _, feats = fixture_features
    ref = R.build_reference(tmp_path, "tiny", seed=2)
    model = load_unimol2(save_checkpoint(ref, tmp_path / "ref.pt"))[0]
    sub = [feats[i] for i in (0, 1, 4, 9, 15)]
    batch, _ = ref.batch_collate_fn([(f, np.zeros(1)) for f in sub])
    with torch.no_grad():
        cls_ref = ref(**batch, return_repr=True)
        cls = model(collate(sub), mode="reference")["cls"]
    assert _rel(cls_ref.numpy(), cls.numpy()) <= TOL


@pytest.mark.slow
def test_parity_84m_live(tmp_path, fixture_features):
    """Full 84m configuration (334 MB checkpoint in tmp); a subset of molecules including the 85-atom one."""
    _, feats = fixture_features
    ref = R.build_reference(tmp_path, "84m", seed=3)
    save_checkpoint(ref, tmp_path / "ref84m.pt")
    model, info = load_unimol2(tmp_path / "ref84m.pt")
    assert info["config"]["embed_dim"] == 768 and model.num_params() == 83_426_289
    idx = [0, 1, 2, 5, 9, 12, 18, len(feats) - 1]
    worst = _compare(lambda j: R.reference_forward(ref, feats[idx[j]]), model, [feats[i] for i in idx])
    print("84m live worst rel diffs:", worst)
