"""SMILES-transformer pretraining recipes (TOML, uniqsar/recipes/pretrain/pretrain_smiles_*.toml) as frozen dataclasses.

A recipe is recognised by ``[model] kind = "smiles_transformer"`` (see ``uniqsar.models.pretraining``).
Parsed as TOML and validated field by field, never executed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from uniqsar.models.pretrain_common import (CorpusSpec, check_recipe_values, load_kind_recipe, recipe_model_table,
                                            recipe_section, typed_section)

from .model import SmilesTransformerConfig

KIND = "smiles_transformer"


@dataclass(frozen=True)
class DataSpec(CorpusSpec):
    """The corpus fields (``CorpusSpec``), with its defaults."""


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

    m = recipe_model_table(d, name, KIND)
    if "vocab_size" in m:
        raise ValueError(f"recipe {name!r} [model]: vocab_size is fixed by the packaged vocabulary")
    cfg = SmilesTransformerConfig(vocab_size=len(load_vocab()),
                                  **typed_section(SmilesTransformerConfig, m, f"recipe {name!r} [model]"))
    cfg.validate()
    r = SmilesPretrainRecipe(name, cfg, recipe_section(DataSpec, d, "data", name),
                             recipe_section(ObjectiveSpec, d, "objective", name),
                             recipe_section(TrainSpec, d, "train", name))
    o, t, da = r.objective, r.train, r.data
    check_recipe_values(
        name,
        unit={"mask_prob": o.mask_prob, "mask_token_frac": o.mask_token_frac, "random_token_frac": o.random_token_frac,
              "random_smiles_prob": o.random_smiles_prob, "val_fraction": da.val_fraction, "dropout": cfg.dropout,
              "attn_dropout": cfg.attn_dropout},
        positive={"max_steps": t.max_steps, "batch_size": t.batch_size, "lr": t.lr, "log_every": t.log_every,
                  "val_every": t.val_every, "checkpoint_every": t.checkpoint_every, "mask_prob": o.mask_prob},
        non_negative={"warmup_steps": t.warmup_steps, "clip_norm": t.clip_norm, "end_lr": t.end_lr,
                      "weight_decay": t.weight_decay})
    if o.mask_token_frac + o.random_token_frac > 1.0:
        raise ValueError(f"recipe {name!r}: mask_token_frac + random_token_frac must be <= 1")
    return r


def load_smiles_recipe(name_or_path) -> SmilesPretrainRecipe:
    return load_kind_recipe(name_or_path, recipe_from_dict)


__all__ = ["KIND", "DataSpec", "ObjectiveSpec", "TrainSpec", "SmilesPretrainRecipe", "recipe_from_dict",
           "load_smiles_recipe"]
