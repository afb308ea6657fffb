"""SMILES-transformer pretraining recipes (TOML, uniqsar/recipes/pretrain/pretrain_smiles_*.toml) as frozen dataclasses.

A recipe is recognised by ``[model] kind = "smiles_transformer"`` (see ``uniqsar.models.pretraining``).
Parsed as TOML and validated field by field, never executed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from uniqsar.models.pretrain_common import typed_section

from .model import SmilesTransformerConfig

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "pretrain"
KIND = "smiles_transformer"


@dataclass(frozen=True)
class DataSpec:
    smiles_col: str = ""  # "" = auto-detect (smiles, canonical_smiles, drug, smi; any case)
    offset: int = 0  # skip this many data rows first (e.g. continued pretraining on molecules not yet seen)
    limit: int = 0  # then read only `limit` rows (0 = all)
    subsample: int = 0  # then keep a seeded random subset of this size (0 = all)
    val_fraction: float = 0.02  # held out by a seeded hash of the canonical SMILES
    val_max: int = 2048  # validation molecules actually evaluated


@dataclass(frozen=True)
class ObjectiveSpec:
    mask_prob: float = 0.15  # fraction of real tokens selected (at least one per molecule)
    mask_token_frac: float = 0.8  # of the selected: replaced by <mask>
    random_token_frac: float = 0.1  # ... by a random non-special token; the rest is kept unchanged
    random_smiles_prob: float = 0.8  # a training sample is a randomized SMILES (else the canonical one)


@dataclass(frozen=True)
class TrainSpec:
    max_steps: int = 1000
    batch_size: int = 64
    lr: float = 5e-4
    end_lr: float = 0.0
    warmup_steps: int = 100
    power: float = 1.0  # polynomial decay power after warmup (1 = linear)
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    clip_norm: float = 1.0
    seed: int = 1
    threads: int = 0  # torch threads; 0 = all cores
    log_every: int = 50
    val_every: int = 500
    checkpoint_every: int = 500


@dataclass(frozen=True)
class SmilesPretrainRecipe:
    name: str
    model: SmilesTransformerConfig
    data: DataSpec = field(default_factory=DataSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    train: TrainSpec = field(default_factory=TrainSpec)

    def to_dict(self) -> dict:
        return {"name": self.name, "model": {"kind": KIND, **self.model.to_dict()}, "data": asdict(self.data),
                "objective": asdict(self.objective), "train": asdict(self.train)}


def recipe_from_dict(d: dict, name: str = "custom") -> SmilesPretrainRecipe:
    from uniqsar.featurize.smiles_tokens import load_vocab

    unknown = sorted(set(d) - {"model", "data", "objective", "train"})
    if unknown:
        raise ValueError(f"recipe {name!r}: unknown section(s) {unknown}; allowed: model, data, objective, train")
    m = dict(d.get("model", {}))
    kind = m.pop("kind", KIND)
    if kind != KIND:
        raise ValueError(f"recipe {name!r}: [model] kind must be {KIND!r}, got {kind!r}")
    if "vocab_size" in m:
        raise ValueError(f"recipe {name!r} [model]: vocab_size is fixed by the packaged vocabulary")
    cfg = SmilesTransformerConfig(vocab_size=len(load_vocab()),
                                  **typed_section(SmilesTransformerConfig, m, f"recipe {name!r} [model]"))
    cfg.validate()
    r = SmilesPretrainRecipe(
        name, cfg, DataSpec(**typed_section(DataSpec, d.get("data", {}), f"recipe {name!r} [data]")),
        ObjectiveSpec(**typed_section(ObjectiveSpec, d.get("objective", {}), f"recipe {name!r} [objective]")),
        TrainSpec(**typed_section(TrainSpec, d.get("train", {}), f"recipe {name!r} [train]")))
    o, t, da = r.objective, r.train, r.data
    for k, v in {"mask_prob": o.mask_prob, "mask_token_frac": o.mask_token_frac,
                 "random_token_frac": o.random_token_frac, "random_smiles_prob": o.random_smiles_prob,
                 "val_fraction": da.val_fraction, "dropout": cfg.dropout, "attn_dropout": cfg.attn_dropout}.items():
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"recipe {name!r}: {k} must be in [0, 1], got {v}")
    if o.mask_token_frac + o.random_token_frac > 1.0:
        raise ValueError(f"recipe {name!r}: mask_token_frac + random_token_frac must be <= 1")
    for k, v in {"max_steps": t.max_steps, "batch_size": t.batch_size, "lr": t.lr, "log_every": t.log_every,
                 "val_every": t.val_every, "checkpoint_every": t.checkpoint_every, "mask_prob": o.mask_prob}.items():
        if v <= 0:
            raise ValueError(f"recipe {name!r}: {k} must be > 0, got {v}")
    if min(t.warmup_steps, t.clip_norm, t.end_lr, t.weight_decay) < 0:
        raise ValueError(f"recipe {name!r}: warmup_steps, clip_norm, end_lr and weight_decay must be >= 0")
    return r


def load_smiles_recipe(name_or_path) -> SmilesPretrainRecipe:
    from uniqsar.models.pretraining import resolve_recipe

    path, d = resolve_recipe(name_or_path)
    return recipe_from_dict(d, name=path.stem)


__all__ = ["KIND", "DataSpec", "ObjectiveSpec", "TrainSpec", "SmilesPretrainRecipe", "recipe_from_dict",
           "load_smiles_recipe"]
