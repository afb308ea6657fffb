"""A small pre-LN transformer encoder over SMILES tokens (BERT-style MLM pretraining, CLS + mean pooling).

    tokens (B, L) -> token embedding + learned position embedding -> dropout
                  -> n_layers x [x + MHA(LN(x)); x + FFN(LN(x))]  (pre-LN, GELU, key-padding mask)
                  -> final LN -> hidden (B, L, d)
    pool: "cls" -> h[:, 0]; "mean" -> mean over the real tokens (not <cls>/<sep>/<pad>); "cls+mean" -> both (2d)
    MLM head: dense d->d, GELU, LN, decoder tied to the token embedding (+ bias), applied to masked positions only.

Attention is ``F.scaled_dot_product_attention`` with a boolean key mask, so a molecule's outputs do not depend
on the padding of its batch (up to float rounding). The default config (d 256, 4 layers, 8 heads, FFN 1024,
128 positions, 654 tokens) has ~3.4 M parameters, ~13 MB float32.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from uniqsar.featurize.smiles_tokens import CLS_ID, PAD_ID, SEP_ID

POOLINGS = ("cls", "mean", "cls+mean")


@dataclass(frozen=True)
class SmilesTransformerConfig:
    vocab_size: int = 654
    max_len: int = 128  # positions, <cls> and <sep> included
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 8
    ffn_dim: int = 1024
    dropout: float = 0.1
    attn_dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SmilesTransformerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SMILES transformer config key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**d)

    def with_(self, **kw) -> "SmilesTransformerConfig":
        return SmilesTransformerConfig.from_dict({**self.to_dict(), **kw})

    def validate(self) -> "SmilesTransformerConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if min(self.vocab_size, self.max_len, self.d_model, self.n_layers, self.n_heads, self.ffn_dim) < 1:
            raise ValueError("SMILES transformer sizes must be >= 1")
        if self.max_len < 3:
            raise ValueError("max_len must be >= 3 (<cls>, one token, <sep>)")
        return self


class Block(nn.Module):
    def __init__(self, cfg: SmilesTransformerConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.attn_dropout = cfg.attn_dropout
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc1 = nn.Linear(cfg.d_model, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :],
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        x = x + self.dropout(self.out(a.transpose(1, 2).reshape(B, L, D)))
        return x + self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(self.ln2(x))))))


class SmilesEncoder(nn.Module):
    def __init__(self, cfg: SmilesTransformerConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.tok_embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=PAD_ID)
        self.pos_embed = nn.Embedding(cfg.max_len, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.final_ln = nn.LayerNorm(cfg.d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids, ``PAD_ID`` padded -> (B, L, d) hidden states."""
        L = tokens.shape[1]
        if L > self.cfg.max_len:
            raise ValueError(f"sequence length {L} > max_len {self.cfg.max_len}")
        key_mask = tokens != PAD_ID  # True = attend
        x = self.tok_embed(tokens) + self.pos_embed.weight[:L].unsqueeze(0)
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, key_mask)
        return self.final_ln(x)


def pool(hidden: torch.Tensor, tokens: torch.Tensor, pooling: str = "cls+mean") -> torch.Tensor:
    """Molecule vectors from hidden states: CLS, mean over real tokens, or both concatenated."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    parts = []
    if pooling in ("cls", "cls+mean"):
        parts.append(hidden[:, 0])
    if pooling in ("mean", "cls+mean"):
        real = ((tokens != PAD_ID) & (tokens != CLS_ID) & (tokens != SEP_ID)).unsqueeze(-1).to(hidden.dtype)
        parts.append((hidden * real).sum(1) / real.sum(1).clamp(min=1.0))
    return torch.cat(parts, dim=-1)


class MLMHead(nn.Module):
    """The decoder weight is the token embedding (tied; passed in, not a parameter of the head)."""

    def __init__(self, cfg: SmilesTransformerConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln = nn.LayerNorm(cfg.d_model)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h: torch.Tensor, embedding_weight: torch.Tensor) -> torch.Tensor:
        return F.linear(self.ln(F.gelu(self.dense(h))), embedding_weight, self.bias)


class SmilesMLM(nn.Module):
    """Encoder + MLM head (the pretraining model; its state_dict is what checkpoints hold)."""

    def __init__(self, cfg: SmilesTransformerConfig):
        super().__init__()
        self.encoder = SmilesEncoder(cfg)
        self.mlm_head = MLMHead(cfg)
        init_weights(self)

    @property
    def cfg(self) -> SmilesTransformerConfig:
        return self.encoder.cfg

    def forward(self, tokens: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (n_masked, V) at the ``masked`` positions (bool (B, L)), or (B, L, V) for all."""
        h = self.encoder(tokens)
        return self.mlm_head(h[masked] if masked is not None else h, self.encoder.tok_embed.weight)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT init: N(0, 0.02) linear/embedding weights, zero biases, unit LayerNorm; residual output projections
    scaled by 1/sqrt(2 n_layers) (GPT-2) so that the pre-LN residual stream starts small."""
    n_layers = max((m.encoder.cfg.n_layers for m in module.modules() if isinstance(m, SmilesMLM)), default=None)
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            s = std / math.sqrt(2 * n_layers) if n_layers and name.endswith((".out", ".fc2")) else std
            nn.init.normal_(m.weight, 0.0, s)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["SmilesTransformerConfig", "SmilesEncoder", "SmilesMLM", "MLMHead", "pool", "init_weights",
           "num_params", "POOLINGS"]
