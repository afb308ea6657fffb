"""Uni-Mol2 hyperparameters: one frozen dataclass, the released sizes, and shape-based inference.

The five released sizes come from the Uni-Mol2 paper / unimol_tools (see shared/reference/unimol2.md §1.6).
Every size has head_dim = D / heads = 16 and FFN width = D; the pair track is P = 512 wide with h = 64.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Mapping


@dataclass(frozen=True)
class UniMol2Config:
    layers: int = 12  # number of two-track blocks
    embed_dim: int = 768  # D, atom track width
    heads: int = 48  # H, attention heads (head_dim = D / H = 16 in every release)
    ffn_dim: int = 768  # atom FFN hidden width (a multiple of D)
    pair_dim: int = 512  # P, pair track width
    pair_hidden: int = 64  # h, OPM / triangle-multiplication width (OPM flattens h*h)
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    pair_dropout: float = 0.25  # row-shared dropout after the triangle update
    pooler_dropout: float = 0.0
    num_kernels: int = 128  # K Gaussian kernels over distances
    gaussian_start: float = 0.0
    gaussian_stop: float = 9.0
    gaussian_std_width: float = 1.0
    num_tokens: int = 128  # element vocabulary (pad 0, mask 127)
    num_atom_feats: int = 512  # atom_feature.atom_encoder rows
    num_degree: int = 128
    num_edge: int = 64
    num_spatial: int = 512  # shortest-path table
    num_pair_types: int = 512
    max_atoms: int = 128  # featurizer crop (heavy atoms)
    num_classes: int = 0  # classification_head.out_proj outputs; 0 = no task head
    lm_head: bool = False  # MLM head present (pretraining checkpoints have it)

    def __post_init__(self) -> None:
        if self.embed_dim % self.heads:
            raise ValueError(f"embed_dim {self.embed_dim} not divisible by heads {self.heads}")
        if self.ffn_dim % self.embed_dim:
            raise ValueError(f"ffn_dim {self.ffn_dim} must be a multiple of embed_dim {self.embed_dim}")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "UniMol2Config":
        return cls(**dict(d))

    def with_(self, **kw) -> "UniMol2Config":
        return replace(self, **kw)


def _size(layers: int, d: int) -> UniMol2Config:
    return UniMol2Config(layers=layers, embed_dim=d, heads=d // 16, ffn_dim=d)


# Released sizes (keys are lower case; "1.1b" is spelled "1.1B" upstream) plus a tiny one for tests.
SIZES: dict[str, UniMol2Config] = {
    "84m": _size(12, 768),
    "164m": _size(24, 768),
    "310m": _size(32, 1024),
    "570m": _size(32, 1536),
    "1.1b": _size(64, 1536),
    "tiny": UniMol2Config(layers=2, embed_dim=64, heads=4, ffn_dim=64, pair_dim=32, pair_hidden=8),
}

# Folder names in the Hugging Face repo dptech/Uni-Mol2 (modelzoo/<name>/checkpoint.pt).
RELEASED_DIRS: dict[str, str] = {"84m": "84M", "164m": "164M", "310m": "310M", "570m": "570M", "1.1b": "1.1B"}


def get_config(size: str, **overrides) -> UniMol2Config:
    key = size.lower()
    if key not in SIZES:
        raise KeyError(f"unknown Uni-Mol2 size {size!r}; choose one of {sorted(SIZES)}")
    return replace(SIZES[key], **overrides)


def infer_config(state_dict: Mapping, **overrides) -> UniMol2Config:
    """Read the architecture off tensor shapes (only .shape is touched, so meta tensors work)."""
    sd = state_dict
    layer_ids = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    if not layer_ids:
        raise ValueError("state_dict has no encoder.layers.* entries: not a Uni-Mol2 model")
    if layer_ids != set(range(len(layer_ids))):
        raise ValueError(f"encoder layer indices are not contiguous: {sorted(layer_ids)}")
    p0 = "encoder.layers.0."
    tokens, d = sd["embed_tokens.weight"].shape
    heads, pair_dim = sd[p0 + "self_attn.linear_bias.weight"].shape
    ffn_dim = sd[p0 + "ffn.linear_1.weight"].shape[0]
    pair_hidden = sd[p0 + "opm.linear_in.weight"].shape[0] // 2
    k = sd["se3_invariant_kernel.gaussian.mean"].shape[0]
    kw = dict(
        layers=len(layer_ids),
        embed_dim=d,
        heads=heads,
        ffn_dim=ffn_dim,
        pair_dim=pair_dim,
        pair_hidden=pair_hidden,
        num_kernels=k,
        num_tokens=tokens,
        num_atom_feats=sd["atom_feature.atom_encoder.weight"].shape[0],
        num_degree=sd["atom_feature.degree_encoder.weight"].shape[0],
        num_edge=sd["edge_feature.edge_encoder.weight"].shape[0],
        num_spatial=sd["edge_feature.shorest_path_encoder.weight"].shape[0],
        num_pair_types=sd["se3_invariant_kernel.gaussian.mul.weight"].shape[0],
        num_classes=sd["classification_head.out_proj.weight"].shape[0]
        if "classification_head.out_proj.weight" in sd
        else 0,
        lm_head="lm_head.weight" in sd,
    )
    kw.update(overrides)
    return UniMol2Config(**kw)
