"""Helpers that drive the reference implementation (unimol_tools==0.1.6) offline, for parity tests only.

Recipe from shared/reference/unimol2.md §3: build UniMolV2Model with `pretrained_model_path` pointing at an
empty `torch.save({}, path)` file (no network), randomise every parameter, run batch size 1 with hooks.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch

TINY = dict(num_encoder_layers=2, encoder_embed_dim=64, ffn_embedding_dim=64, pair_embed_dim=32,
            pair_hidden_dim=8, num_attention_heads=4, encoder_attention_heads=4)

# Diverse molecules: charged, aromatic heterocycles, stereo centres, E/Z, salts/disconnected, > 60 heavy atoms.
PARITY_SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CCO",  # ethanol
    "C",  # methane: N = 1
    "c1ccncc1",  # pyridine
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",  # caffeine
    "C[C@H](N)C(=O)O",  # L-alanine (stereo)
    "C[C@@H](O)[C@H](N)C(=O)O",  # threonine (2 stereo centres)
    "F/C=C/F",  # E-difluoroethene
    "C/C=C\\C",  # Z-butene
    "[Na+].[Cl-]",  # salt, no bonds
    "CC(=O)[O-].[NH4+]",  # ammonium acetate (disconnected)
    "C[N+](C)(C)CCOC(C)=O",  # acetylcholine (cation)
    "O=[N+]([O-])c1ccc(cc1)S(=O)(=O)N",  # nitro + sulfonamide
    "c1ccc2c(c1)[nH]c1ccccc12",  # carbazole
    "OC1=CC=C(C=C1)C1=COc2cc(O)cc(O)c2C1=O",  # genistein
    "CC1=C(C(=O)OC2CCCC2)C(c2ccccc2Cl)C(C(=O)OC)=C(C)N1",  # dihydropyridine
    "FC(F)(F)c1ccc(Oc2ccc(Br)cc2I)cc1",  # halogens
    "C1CC2CCC1C2",  # norbornane (bridged)
    "[O-]P(=O)([O-])OCC1OC(n2cnc3c(N)ncnc32)C(O)C1O",  # AMP dianion
    "N#Cc1ccc(cc1)[Se]C",  # selenium, nitrile
    "CC(C)(C)[Si](C)(C)OC",  # silicon
    "O=C(O)CC(O)(CC(=O)O)C(=O)O.O",  # citric acid hydrate
    # cyclosporin-like macrocycle (> 60 heavy atoms)
    "CC[C@H]1C(=O)N(CC(=O)N([C@H](C(=O)N[C@H](C(=O)N([C@H](C(=O)N[C@H](C(=O)N[C@@H](C(=O)N([C@H](C(=O)N"
    "([C@H](C(=O)N([C@H](C(=O)N([C@H](C(=O)N1)[C@@H]([C@H](C)C/C=C/C)O)C)C(C)C)C)CC(C)C)C)CC(C)C)C)C)C)"
    "CC(C)C)C)C(C)C)CC(C)C)C)C",
]


def require_reference():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import pytest

    pytest.importorskip("unimol_tools")
    import unimol_tools.models.unimolv2 as U

    return U


@contextlib.contextmanager
def _arch_override(U, overrides):
    if not overrides:
        yield
        return
    orig = U.molecule_architecture

    def patched(model_size="84m"):
        args = orig(model_size="84m")
        for k, v in overrides.items():
            setattr(args, k, v)
        return args

    U.molecule_architecture = patched
    try:
        yield
    finally:
        U.molecule_architecture = orig


def build_reference(tmp_path, size="tiny", seed=0):
    """Reference model with every parameter randomised (seeded), eval mode."""
    U = require_reference()
    empty = os.path.join(str(tmp_path), "empty.pt")
    torch.save({}, empty)
    with _arch_override(U, TINY if size == "tiny" else None):
        model = U.UniMolV2Model(output_dim=1, model_size="84m" if size == "tiny" else size,
                                pretrained_model_path=empty)
    randomize_(model, seed)
    return model.eval()


def randomize_(model, seed=0):
    """mul ~ U(0.5, 1.5); LayerNorm weights 1 + 0.1 N; everything else 0.05 N."""
    g = torch.Generator().manual_seed(seed)
    ln_weights = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gaussian.mul.weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif name in ln_weights:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def reference_featurize(smiles):
    from unimol_tools.data.conformer import UniMolV2Feature

    feats, mols = UniMolV2Feature(seed=42, max_atoms=128, multi_process=False).transform(list(smiles))
    return feats, mols


def reference_forward(model, feat):
    """Batch size 1 forward of the reference; returns cls (D,), atoms (N, D), coords (N, 3) as numpy."""
    batch, _ = model.batch_collate_fn([(feat, np.zeros(1))])
    captured = {}
    hooks = [
        model.encoder.register_forward_hook(lambda m, i, o: captured.__setitem__("enc", o)),
        model.movement_pred_head.register_forward_hook(lambda m, i, o: captured.__setitem__("move", o)),
    ]
    try:
        with torch.no_grad():
            out = model(**batch, return_repr=True, return_atomic_reprs=True)
    finally:
        for h in hooks:
            h.remove()
    x = captured["enc"][0][0]  # (L, D); x[1:] directly (atomic_reprs miscounts H/He, §1.7 item 7)
    coords = batch["src_coord"][0] + captured["move"][0]
    assert torch.equal(x[0], out["cls_repr"][0])
    return x[0].numpy(), x[1:].numpy(), coords.numpy()


FEATURE_KEYS = ("src_tokens", "atom_feat", "degree", "edge_feat", "shortest_path", "pair_type", "atom_mask",
                "src_coord")


def save_features_npz(path, feats, smiles):
    arrays = {"smiles": np.array(smiles)}
    for i, f in enumerate(feats):
        for k in FEATURE_KEYS:
            arrays[f"{i}/{k}"] = np.asarray(f[k])
    np.savez_compressed(path, **arrays)


def load_features_npz(path):
    z = np.load(path)
    smiles = [str(s) for s in z["smiles"]]
    feats = []
    for i in range(len(smiles)):
        f = {k: z[f"{i}/{k}"] for k in FEATURE_KEYS}
        n = len(f["src_tokens"])
        f["attn_bias"] = np.zeros((n + 1, n + 1), dtype=np.float32)
        feats.append(f)
    return smiles, feats
