"""Uni-Mol2: a two-track (atom + pair) transformer over a molecule's heavy atoms and a 3D conformer.

Read top to bottom: input embeddings -> one encoder block (attention, FFN, outer product, triangle update,
pair FFN) -> encoder -> heads -> the full model. Parameter names follow the released checkpoints exactly
(including the upstream typo `shorest_path_encoder`), so official files load with strict key checks.

Shapes: B molecules, N heavy atoms (padded), L = N + 1 tokens (position 0 is the virtual CLS node),
D atom width, P pair width, h pair hidden width, H heads, K Gaussian kernels.

Masking modes (see shared/reference/unimol2.md §1.7):
  "correct"   (default) padded keys get -inf in attention, and every L-dependent scaling uses the
              molecule's own L, so a molecule's output does not depend on its batch neighbours and equals
              the reference output at batch size 1.
  "reference" unimol_tools behaviour: padded keys are attended to and the padded L is used (parity only).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import UniMol2Config

MODES = ("correct", "reference")


def init_bert_params(module: nn.Module) -> None:
    """Uni-Core's init for training from scratch: N(0, 0.02) for Linear/Embedding, zero biases and padding rows."""
    if isinstance(module, nn.Linear):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.Embedding):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if module.padding_idx is not None:
            module.weight.data[module.padding_idx].zero_()


class Dropout(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, training=True) if self.training and self.p > 0 else x


# ----------------------------------------------------------------------------------------- input features


class AtomFeature(nn.Module):
    """Atom track input: sum of 8 atom-feature embeddings + degree + element; a learned CLS node in front."""

    def __init__(self, num_atom: int, num_degree: int, dim: int):
        super().__init__()
        self.atom_encoder = nn.Embedding(num_atom, dim, padding_idx=0)
        self.degree_encoder = nn.Embedding(num_degree, dim, padding_idx=0)
        self.vnode_encoder = nn.Embedding(1, dim)

    def forward(self, atom_feat, degree, token_emb):
        x = self.atom_encoder(atom_feat).sum(dim=-2) + self.degree_encoder(degree) + token_emb  # (B, N, D)
        cls = self.vnode_encoder.weight.unsqueeze(0).expand(x.shape[0], 1, -1)  # (B, 1, D)
        return torch.cat([cls, x], dim=1)  # (B, L, D)


class EdgeFeature(nn.Module):
    """Pair track input: shortest-path + mean bond-feature embeddings; CLS row/column get a learned vector."""

    def __init__(self, pair_dim: int, num_edge: int, num_spatial: int):
        super().__init__()
        self.pair_dim = pair_dim
        self.edge_encoder = nn.Embedding(num_edge, pair_dim, padding_idx=0)
        self.shorest_path_encoder = nn.Embedding(num_spatial, pair_dim, padding_idx=0)  # sic (checkpoint name)
        self.vnode_virtual_distance = nn.Embedding(1, pair_dim)

    def forward(self, shortest_path, edge_feat):
        B, N = shortest_path.shape[:2]
        atoms = self.shorest_path_encoder(shortest_path) + self.edge_encoder(edge_feat).mean(-2)  # (B, N, N, P)
        v = self.vnode_virtual_distance.weight  # (1, P)
        row0 = v.view(1, 1, 1, -1).expand(B, 1, N + 1, -1)  # (B, 1, L, P)
        col0 = v.view(1, 1, 1, -1).expand(B, N, 1, -1)  # (B, N, 1, P)
        return torch.cat([row0, torch.cat([col0, atoms], dim=2)], dim=1)  # (B, L, L, P)


class GaussianKernel(nn.Module):
    """Per-pair affine map of the distance (indexed by pair type), expanded on K fixed Gaussians."""

    PI = 3.14159  # the upstream constant; keep it for parity

    def __init__(self, K: int, num_pair: int, std_width: float, start: float, stop: float):
        super().__init__()
        mean = torch.linspace(start, stop, K, device="cpu")  # explicit CPU so a meta-device build still works
        self.register_buffer("mean", mean)  # in the state_dict
        self.std = float(std_width * (mean[1] - mean[0]))  # float32 value, as upstream
        self.mul = nn.Embedding(num_pair, 1, padding_idx=0)
        self.bias = nn.Embedding(num_pair, 1, padding_idx=0)

    def forward(self, dist, pair_type):
        mul = self.mul(pair_type).abs().sum(dim=-2)  # (B, N, N, 1)
        bias = self.bias(pair_type).sum(dim=-2)  # (B, N, N, 1)
        s = (mul * dist.unsqueeze(-1) + bias).float()  # (B, N, N, 1)
        std = torch.tensor(self.std, dtype=torch.float32)
        z = (s - self.mean.float()) / std  # (B, N, N, K)
        return torch.exp(-0.5 * z**2) / ((2 * self.PI) ** 0.5 * std)


class NonLinear(nn.Module):
    def __init__(self, d_in: int, d_out: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or d_in
        self.layer1 = nn.Linear(d_in, hidden)
        self.layer2 = nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.layer2(F.gelu(self.layer1(x)))


class SE3InvariantKernel(nn.Module):
    def __init__(self, pair_dim, num_pair, K, std_width, start, stop):
        super().__init__()
        self.gaussian = GaussianKernel(K, num_pair, std_width, start, stop)
        self.out_proj = NonLinear(K, pair_dim)

    def forward(self, dist, pair_type):
        return self.out_proj(self.gaussian(dist, pair_type.long()))  # (B, N, N, P)


# ----------------------------------------------------------------------------------------- one block


class Transition(nn.Module):
    """Position-wise FFN: d -> n*d -> d with exact GELU."""

    def __init__(self, d: int, n: int, dropout: float = 0.0):
        super().__init__()
        self.linear_1 = nn.Linear(d, n * d)
        self.linear_2 = nn.Linear(n * d, d)
        self.dropout = dropout

    def forward(self, x):
        x = F.gelu(self.linear_1(x))
        x = F.dropout(x, self.dropout, training=self.training) if self.dropout > 0 else x
        return self.linear_2(x)


class Attention(nn.Module):
    """Multi-head self-attention on atoms with a per-head bias projected from the (un-normalized) pair track."""

    def __init__(self, dim: int, pair_dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm = (dim // heads) ** -0.5
        self.dropout = dropout
        self.linear_q = nn.Linear(dim, dim, bias=False)
        self.linear_k = nn.Linear(dim, dim, bias=False)
        self.linear_v = nn.Linear(dim, dim, bias=False)
        self.linear_o = nn.Linear(dim, dim)
        self.linear_bias = nn.Linear(pair_dim, heads)

    def forward(self, x, pair, key_mask):
        B, L, D = x.shape
        q = (self.linear_q(x) * self.norm).view(B, L, self.heads, -1).transpose(1, 2)  # (B, H, L, d)
        k = self.linear_k(x).view(B, L, self.heads, -1).transpose(1, 2)  # (B, H, L, d)
        v = self.linear_v(x).view(B, L, self.heads, -1).transpose(1, 2)  # (B, H, L, d)
        logits = q @ k.transpose(-1, -2)  # (B, H, L, L)
        logits = logits + key_mask + self.linear_bias(pair).permute(0, 3, 1, 2)  # key_mask (B, 1, 1, L)
        attn = F.dropout(logits.softmax(-1), self.dropout, training=self.training)
        o = (attn @ v).transpose(1, 2).reshape(B, L, D)  # (B, L, D)
        return self.linear_o(o)


class OuterProduct(nn.Module):
    """Atom -> pair update: W · vec(a_i ⊗ b_j) + bias, scaled by op_norm.

    Computed without the (B, L, L, h*h) intermediate: first T_j = W ·_e b_j  (B, L, P, h), then
    out_ij = T_j ·_c a_i. Cost L·P·h² + L²·P·h instead of L²·P·h².
    """

    def __init__(self, d_atom: int, d_pair: int, d_hid: int):
        super().__init__()
        self.d_hid = d_hid
        self.linear_in = nn.Linear(d_atom, 2 * d_hid)
        self.linear_out = nn.Linear(d_hid * d_hid, d_pair)  # input index = c * h + e  (a's channel major)

    def forward(self, m, op_mask, op_norm):
        B, L, _ = m.shape
        h, P = self.d_hid, self.linear_out.out_features
        a, b = (self.linear_in(m) * op_mask).chunk(2, dim=-1)  # (B, L, h) each
        w = self.linear_out.weight.view(P * h, h)  # rows (p, c), columns e
        t = (b @ w.t()).view(B, L * P, h)  # T[b, j, p, c] = sum_e W[p, c, e] b[j, e]   (B, L*P, h)
        out = (a @ t.transpose(1, 2)).view(B, L, L, P)  # out[b, i, j, p] = sum_c a[i, c] T[j, p, c]
        return (out + self.linear_out.bias) * op_norm  # (B, L, L, P)


class TriangleMultiplication(nn.Module):
    """Pair update through a third atom: outgoing (sum_k a_ik b_jk) + incoming (sum_k a_ki b_kj) products."""

    def __init__(self, d_pair: int, d_hid: int):
        super().__init__()
        self.linear_ab_p = nn.Linear(d_pair, 2 * d_hid)
        self.linear_ab_g = nn.Linear(d_pair, 2 * d_hid)
        self.linear_g = nn.Linear(d_pair, d_pair)
        self.linear_z = nn.Linear(d_hid, d_pair)
        self.layer_norm_out = nn.LayerNorm(d_hid)

    def forward(self, z, mask):  # z (B, L, L, P), mask (B, L, L, 1) already scaled by L^-1/2
        g = self.linear_g(z)  # used raw (no sigmoid), as upstream
        ab = self.linear_ab_p(z) * mask * torch.sigmoid(self.linear_ab_g(z))  # (B, L, L, 2h)
        a, b = ab.permute(0, 3, 1, 2).chunk(2, dim=1)  # (B, h, L, L) each
        u = a @ b.transpose(-1, -2) + a.transpose(-1, -2) @ b  # (B, h, L, L)
        u = u.permute(0, 2, 3, 1)  # (B, L, L, h)
        return g * self.linear_z(self.layer_norm_out(u))


class EncoderLayer(nn.Module):
    """Pre-LN two-track block: atom attention -> atom FFN -> outer product -> triangle update -> pair FFN."""

    def __init__(self, cfg: UniMol2Config):
        super().__init__()
        D, P = cfg.embed_dim, cfg.pair_dim
        self.dropout_module = Dropout(cfg.dropout)
        self.pair_dropout = cfg.pair_dropout
        self.self_attn = Attention(D, P, cfg.heads, cfg.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(D)
        self.ffn = Transition(D, cfg.ffn_dim // D, cfg.activation_dropout)
        self.final_layer_norm = nn.LayerNorm(D)
        self.x_layer_norm_opm = nn.LayerNorm(D)
        self.opm = OuterProduct(D, P, cfg.pair_hidden)
        self.pair_layer_norm_ffn = nn.LayerNorm(P)
        self.pair_ffn = Transition(P, 1, cfg.activation_dropout)
        self.pair_layer_norm_trimul = nn.LayerNorm(P)
        self.pair_tri_mul = TriangleMultiplication(P, cfg.pair_hidden)

    def row_shared_dropout(self, x):  # one mask (B, 1, L, P) shared by all rows i
        if not self.training or self.pair_dropout <= 0:
            return x
        keep = x.new_ones(x.shape[0], 1, *x.shape[2:])
        return F.dropout(keep, self.pair_dropout, training=True) * x

    def forward(self, x, pair, m):
        drop = self.dropout_module
        x = x + drop(self.self_attn(self.self_attn_layer_norm(x), pair, m["key_mask"]))  # (B, L, D)
        x = x + drop(self.ffn(self.final_layer_norm(x)))
        pair = pair + drop(self.opm(self.x_layer_norm_opm(x), m["op_mask"], m["op_norm"]))  # (B, L, L, P)
        pair = pair + self.row_shared_dropout(
            self.pair_tri_mul(self.pair_layer_norm_trimul(pair), m["tri_mask"])
        )
        pair = pair + drop(self.pair_ffn(self.pair_layer_norm_ffn(pair)))
        return x, pair


class Encoder(nn.Module):
    def __init__(self, cfg: UniMol2Config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.pair_layer_norm = nn.LayerNorm(cfg.pair_dim)
        self.layers = nn.ModuleList([EncoderLayer(cfg) for _ in range(cfg.layers)])

    def forward(self, x, pair, m):
        x, pair = self.layer_norm(x), self.pair_layer_norm(pair)  # once, before the first block
        for layer in self.layers:
            x, pair = layer(x, pair, m)
        return x, pair  # no final LayerNorm


# ----------------------------------------------------------------------------------------- heads


class MovementPredictionHead(nn.Module):
    """Predicts a per-atom displacement: attention weights (with pair bias) times (pos_j - pos_i) times v_j."""

    def __init__(self, dim: int, pair_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scaling = (dim // heads) ** -0.5
        self.dropout = 0.1  # hard-coded upstream
        self.layer_norm = nn.LayerNorm(dim)
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.force_proj1 = nn.Linear(dim, 1, bias=False)
        self.linear_bias = nn.Linear(pair_dim, heads)
        self.pair_layer_norm = nn.LayerNorm(pair_dim)

    def forward(self, x, pair, key_mask, delta_pos):  # x (B, N, D), pair (B, N, N, P), delta (B, N, N, 3)
        B, N, D = x.shape
        H = self.heads
        x = self.layer_norm(x)
        q = self.q_proj(x).view(B, N, H, -1).transpose(1, 2) * self.scaling  # (B, H, N, d)
        k = self.k_proj(x).view(B, N, H, -1).transpose(1, 2)
        v = self.v_proj(x).view(B, N, H, -1).transpose(1, 2)
        logits = q @ k.transpose(-1, -2) + key_mask  # (B, H, N, N)
        logits = logits + self.linear_bias(self.pair_layer_norm(pair)).permute(0, 3, 1, 2)
        attn = F.dropout(logits.softmax(-1), self.dropout, training=self.training)  # (B, H, N, N)
        # force_proj1 is linear, so project v per head first: s[b,h,j] = v[b,h,j,:] . w_h     (B, H, N)
        s = (v * self.force_proj1.weight.view(1, H, 1, -1)).sum(-1)
        w = (attn * s.unsqueeze(2)).sum(1)  # sum_h A[b,h,i,j] s[b,h,j]                   (B, N, N)
        return (w.unsqueeze(-1) * delta_pos).sum(2)  # sum_j w_ij (pos_j - pos_i)        (B, N, 3)


class MaskLMHead(nn.Module):
    """MLM head of the pretraining checkpoint: LayerNorm -> dense -> GELU -> untied output matrix."""

    def __init__(self, dim: int, num_tokens: int):
        super().__init__()
        self.layer_norm = nn.LayerNorm(dim)
        self.dense = nn.Linear(dim, dim)
        self.weight = nn.Parameter(torch.zeros(num_tokens, dim))
        self.bias = nn.Parameter(torch.zeros(num_tokens))

    def forward(self, x):
        return F.linear(F.gelu(self.dense(self.layer_norm(x))), self.weight, self.bias)


class LinearHead(nn.Module):
    """Fine-tuning head of unimol_tools: dropout then one Linear on the CLS vector."""

    def __init__(self, dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(dim, num_classes)

    def forward(self, x):
        return self.out_proj(self.dropout(x))


# ----------------------------------------------------------------------------------------- model


def build_masks(atom_mask: torch.Tensor, mode: str) -> dict:
    """Attention key mask and the L-dependent scalings of OPM / triangle update, for both modes."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    B, N = atom_mask.shape
    L = N + 1
    mask = torch.cat([atom_mask.new_ones(B, 1), atom_mask], dim=1).float()  # (B, L)  CLS + atoms
    pair_mask = mask.unsqueeze(-1) * mask.unsqueeze(-2)  # (B, L, L)
    if mode == "reference":
        scale = torch.full((B, 1, 1), L**-0.5)  # padded L for everyone
        key_mask = mask.new_zeros(B, 1, 1, L)  # padding attended to, as upstream
    else:
        lengths = mask.sum(1).tolist()  # each molecule's own L
        scale = torch.tensor([n**-0.5 for n in lengths], dtype=torch.float32).view(B, 1, 1)
        key_mask = mask.new_zeros(B, 1, 1, L).masked_fill(mask.view(B, 1, 1, L) == 0, float("-inf"))
    scale = scale.to(mask.device)
    op_mask = mask.unsqueeze(-1) * scale  # (B, L, 1)
    op_norm = 1.0 / (1e-3 + op_mask.unsqueeze(2) * op_mask.unsqueeze(1))  # (B, L, L, 1)
    if mode == "correct":
        op_norm = op_norm * pair_mask.unsqueeze(-1)  # keep padded pair entries at 0 instead of 1000*bias
    tri_mask = (pair_mask * scale).unsqueeze(-1)  # (B, L, L, 1)
    return {"key_mask": key_mask, "op_mask": op_mask, "op_norm": op_norm, "tri_mask": tri_mask}


class UniMol2(nn.Module):
    def __init__(self, cfg: UniMol2Config):
        super().__init__()
        self.cfg = cfg
        D, P = cfg.embed_dim, cfg.pair_dim
        self.embed_tokens = nn.Embedding(cfg.num_tokens, D, padding_idx=0)
        self.atom_feature = AtomFeature(cfg.num_atom_feats, cfg.num_degree, D)
        self.edge_feature = EdgeFeature(P, cfg.num_edge, cfg.num_spatial)
        self.se3_invariant_kernel = SE3InvariantKernel(
            P, cfg.num_pair_types, cfg.num_kernels, cfg.gaussian_std_width, cfg.gaussian_start, cfg.gaussian_stop
        )
        self.encoder = Encoder(cfg)
        self.movement_pred_head = MovementPredictionHead(D, P, cfg.heads)
        self.classification_head = LinearHead(D, cfg.num_classes, cfg.pooler_dropout) if cfg.num_classes else None
        self.lm_head = MaskLMHead(D, cfg.num_tokens) if cfg.lm_head else None
        self.apply(init_bert_params)

    def forward(self, batch: dict, mode: str = "correct", masked_tokens: torch.Tensor | None = None,
                coords: bool = True) -> dict:
        """batch: padded tensors from features.collate. Returns cls (B, D), atoms (B, N, D), pair (B, L, L, P),
        coords (B, N, 3) unless ``coords=False`` (embeddings and fine-tuning skip the coordinate head),
        and `logits` (task head on CLS) / `mlm_logits` when those heads exist."""
        tokens, atom_mask = batch["src_tokens"].long(), batch["atom_mask"]
        pos = batch["src_coord"].float()  # (B, N, 3)
        m = build_masks(atom_mask, mode)

        x = self.atom_feature(batch["atom_feat"].long(), batch["degree"].long(), self.embed_tokens(tokens))
        pair = self.edge_feature(batch["shortest_path"].long(), batch["edge_feat"].long())  # (B, L, L, P)
        delta_pos = pos.unsqueeze(1) - pos.unsqueeze(2)  # delta[b, i, j] = pos_j - pos_i   (B, N, N, 3)
        dist = delta_pos.norm(dim=-1).detach()  # (B, N, N)
        geo = self.se3_invariant_kernel(dist, batch["pair_type"])  # (B, N, N, P)
        pair = torch.cat([pair[:, :1], torch.cat([pair[:, 1:, :1], pair[:, 1:, 1:] + geo], dim=2)], dim=1)

        x, pair = self.encoder(x, pair, m)  # (B, L, D), (B, L, L, P)
        out = {"cls": x[:, 0], "atoms": x[:, 1:], "pair": pair}
        if coords:
            move = self.movement_pred_head(x[:, 1:], pair[:, 1:, 1:], m["key_mask"][..., 1:], delta_pos.detach())
            out["coords"] = pos + move
        if self.classification_head is not None:
            out["logits"] = self.classification_head(out["cls"])
        if self.lm_head is not None:
            h = x[:, 1:] if masked_tokens is None else x[:, 1:][masked_tokens]
            out["mlm_logits"] = self.lm_head(h)
        return out

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def pool(out: dict, atom_mask: torch.Tensor, pooling: str = "cls") -> torch.Tensor:
    """Molecule vectors from a forward output: "cls" (B, D) or "cls+mean" (B, 2D) with a masked atom mean."""
    if pooling == "cls":
        return out["cls"]
    if pooling == "cls+mean":
        w = atom_mask.to(out["atoms"].dtype).unsqueeze(-1)  # (B, N, 1)
        mean = (out["atoms"] * w).sum(1) / w.sum(1).clamp(min=1)
        return torch.cat([out["cls"], mean], dim=-1)
    raise ValueError(f"pooling must be 'cls' or 'cls+mean', got {pooling!r}")


__all__ = ["UniMol2", "init_bert_params", "build_masks", "pool", "MODES"]
