from pathlib import Path

import numpy as np
import pytest
import torch

from uniqsar.models.unimol2 import UniMol2, get_config, init_bert_params
from uniqsar.models.unimol2.features import collate
from uniqsar.models.unimol2.model import OuterProduct, TriangleMultiplication, build_masks, pool
from uniqsar.models.unimol2.weights import load_unimol2, random_unimol2

from . import reference as R

DATA = Path(__file__).resolve().parents[2] / "data" / "unimol2"


@pytest.fixture(scope="module")
def feats():
    return R.load_features_npz(DATA / "ref_features.npz")[1]


@pytest.fixture(scope="module")
def model():
    """Tiny reference-initialised model with every parameter randomised (large, non-degenerate weights)."""
    return load_unimol2(DATA / "tiny_ref_random.pt")[0]


def _forward(model, fs, mode="correct"):
    with torch.no_grad():
        b = collate(fs)
        out = model(b, mode=mode)
    return out, b


@pytest.mark.parametrize("groups", [[list(range(23))], [[0, 22, 2, 9], [5, 1, 14, 15, 3], [21, 10, 18]]])
def test_batch_invariance_correct_mode(model, feats, groups):
    """A molecule's CLS, atoms and coordinates do not depend on its batch neighbours (sizes 1..85 mixed)."""
    alone = {i: _forward(model, [feats[i]])[0] for g in groups for i in g}
    for g in groups:
        out, _ = _forward(model, [feats[i] for i in g])
        for row, i in enumerate(g):
            n = len(feats[i]["src_tokens"])
            for key, a, b in [("cls", alone[i]["cls"][0], out["cls"][row]),
                              ("atoms", alone[i]["atoms"][0], out["atoms"][row, :n]),
                              ("coords", alone[i]["coords"][0], out["coords"][row, :n])]:
                scale = max(1.0, a.abs().max().item())
                assert (a - b).abs().max().item() <= 1e-5 * scale, (i, key)
            assert torch.isfinite(out["pair"][row]).all()


def test_reference_mode_depends_on_batch(model, feats):
    """The unimol_tools behaviour that "correct" mode fixes (shared/reference §1.7 item 2)."""
    alone = _forward(model, [feats[1]], mode="reference")[0]["cls"][0]
    batched = _forward(model, [feats[1], feats[15]], mode="reference")[0]["cls"][0]
    assert (alone - batched).abs().max() > 1e-3


def test_factored_outer_product_equals_naive():
    torch.manual_seed(0)
    opm = OuterProduct(16, 12, 4)
    m = torch.randn(2, 5, 16)
    mask = build_masks(torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]), "correct")
    got = opm(m, mask["op_mask"], mask["op_norm"])
    a, b = (opm.linear_in(m) * mask["op_mask"]).chunk(2, -1)
    outer = (a[:, :, None, :, None] * b[:, None, :, None, :]).flatten(-2)  # (B, L, L, h*h), a's channel major
    want = opm.linear_out(outer) * mask["op_norm"]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_triangle_multiplication_outgoing_plus_incoming():
    torch.manual_seed(0)
    tri = TriangleMultiplication(8, 3)
    z = torch.randn(1, 4, 4, 8)
    mask = torch.ones(1, 4, 4, 1) * 0.5
    ab = tri.linear_ab_p(z) * mask * torch.sigmoid(tri.linear_ab_g(z))
    a, b = ab.chunk(2, -1)
    u = torch.einsum("bikc,bjkc->bijc", a, b) + torch.einsum("bkic,bkjc->bijc", a, b)
    want = tri.linear_g(z) * tri.linear_z(tri.layer_norm_out(u))
    torch.testing.assert_close(tri(z, mask), want, atol=1e-5, rtol=1e-5)


def test_outputs_shapes_heads_and_pooling(feats):
    cfg = get_config("tiny", num_classes=3, lm_head=True)
    m = random_unimol2(cfg, seed=0)
    out, b = _forward(m, feats[:3])
    B, N = b["src_tokens"].shape
    assert out["cls"].shape == (3, 64) and out["atoms"].shape == (3, N, 64)
    assert out["pair"].shape == (3, N + 1, N + 1, 32) and out["coords"].shape == (3, N, 3)
    assert out["logits"].shape == (3, 3) and out["mlm_logits"].shape == (3, N, 128)
    with torch.no_grad():
        masked = b["atom_mask"].bool() & (torch.rand(B, N) < 0.5)
        assert m(b, masked_tokens=masked)["mlm_logits"].shape == (int(masked.sum()), 128)
    v = pool(out, b["atom_mask"], "cls+mean")
    assert v.shape == (3, 128) and torch.equal(v[:, :64], out["cls"])
    n0 = int(b["atom_mask"][2].sum())
    torch.testing.assert_close(v[2, 64:], out["atoms"][2, :n0].mean(0))


def test_training_step_backward(feats):
    m = random_unimol2("tiny", seed=0, num_classes=1).train()
    b = collate(feats[:4])
    out = m(b)
    loss = out["logits"].pow(2).mean() + (out["coords"] - b["src_coord"]).abs().mean()
    loss.backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    m.eval()
    with torch.no_grad():
        a, c = m(b)["cls"], m(b)["cls"]
    assert torch.equal(a, c)  # eval is deterministic (no dropout)


def test_init_bert_params_and_seeded_random():
    m1 = random_unimol2("tiny", seed=5)
    state = torch.get_rng_state()
    m2 = random_unimol2("tiny", seed=5)
    assert torch.equal(state, torch.get_rng_state())  # global RNG untouched
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert not torch.equal(random_unimol2("tiny", seed=6).embed_tokens.weight, m1.embed_tokens.weight)
    w = m1.encoder.layers[0].pair_ffn.linear_1
    assert abs(w.weight.std().item() - 0.02) < 0.005 and w.bias.abs().max() == 0
    assert m1.embed_tokens.weight[0].abs().max() == 0  # padding row zeroed
    layer = torch.nn.Linear(3, 3)
    init_bert_params(layer)
    assert layer.bias.abs().max() == 0


def test_isinstance_and_param_count():
    assert isinstance(random_unimol2("tiny"), UniMol2)
    assert random_unimol2("tiny", num_classes=1).num_params() == 168_397  # same as the reference tiny model
    np.testing.assert_equal(build_masks(torch.ones(1, 3), "reference")["op_mask"].shape, (1, 4, 1))
