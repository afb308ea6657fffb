"""D-MPNN pretraining recipes (TOML, ``uniqsar/recipes/pretrain/pretrain_dmpnn_*.toml``) as frozen dataclasses.

A recipe is recognised by ``[model] kind = "dmpnn"`` (see ``uniqsar.models.pretraining``). Parsed as TOML and
validated field by field, never executed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from uniqsar.models.pretrain_common import CorpusSpec, check_recipe_values, load_kind_recipe, recipe_model_table, \
    recipe_section

KIND = "dmpnn"


@dataclass(frozen=True)
class EncoderSpec:
    """The encoder that is pretrained and shipped (the same fields as the ``dmpnn`` learner's)."""
    hidden_size: int = 300
    depth: int = 3
    dropout: float = 0.0
    aggregation: str = "norm"  # mean | sum | norm (sum / aggregation_norm)
    aggregation_norm: float = 100.0
    head_hidden: int = 512  # pretraining head only (not shipped): hidden -> head_hidden -> targets


@dataclass(frozen=True)
class DataSpec(CorpusSpec):
    """The corpus fields (``CorpusSpec``) and the target cache's chunk size."""
    val_fraction: float = 0.01
    val_max: int = 4096
    chunk_size: int = 8192  # molecules per cached target file (targets/<k>.npz)


@dataclass(frozen=True)
class ObjectiveSpec:
    descriptors: bool = True  # regress every RDKit 2D descriptor (Descriptors._descList), robustly scaled
    log_above: float = 1e4  # columns whose |value| reaches this (99.9th percentile) are signed-log1p'ed first
    clip_percentile: float = 0.5  # then clipped to the [p, 100 - p] percentiles of the training molecules
    morgan_bits: int = 2048  # also predict Morgan bits (KPGT-style; 0 = off)
    morgan_radius: int = 2
    morgan_weight: float = 1.0  # weight of the bit BCE against the descriptor MSE


@dataclass(frozen=True)
class TrainSpec:
    max_steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    end_lr: float = 1e-5
    warmup_steps: int = 200
    power: float = 1.0
    weight_decay: float = 0.0
    clip_norm: float = 10.0
    seed: int = 1
    threads: int = 0  # torch threads; 0 = all cores
    loader_workers: int = 1  # processes that build molecular graphs ahead of the training step (0 = inline)
    log_every: int = 50
    val_every: int = 500
    checkpoint_every: int = 250


@dataclass(frozen=True)
class DMPNNPretrainRecipe:
    name: str
    model: EncoderSpec = field(default_factory=EncoderSpec)
    data: DataSpec = field(default_factory=DataSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    train: TrainSpec = field(default_factory=TrainSpec)

    def to_dict(self) -> dict:
        return {"name": self.name, "model": {"kind": KIND, **asdict(self.model)}, "data": asdict(self.data),
                "objective": asdict(self.objective), "train": asdict(self.train)}


def recipe_from_dict(d: dict, name: str = "custom") -> DMPNNPretrainRecipe:
    from .learner import AGGREGATIONS

    m = recipe_model_table(d, name, KIND)
    r = DMPNNPretrainRecipe(name, recipe_section(EncoderSpec, {"model": m}, "model", name),
                            recipe_section(DataSpec, d, "data", name),
                            recipe_section(ObjectiveSpec, d, "objective", name),
                            recipe_section(TrainSpec, d, "train", name))
    mo, o, t, da = r.model, r.objective, r.train, r.data
    if mo.aggregation not in AGGREGATIONS:
        raise ValueError(f"recipe {name!r}: aggregation must be one of {AGGREGATIONS}, got {mo.aggregation!r}")
    if not (o.descriptors or o.morgan_bits):
        raise ValueError(f"recipe {name!r}: [objective] needs descriptors = true or morgan_bits > 0")
    check_recipe_values(
        name,
        positive={"hidden_size": mo.hidden_size, "depth": mo.depth, "head_hidden": mo.head_hidden,
                  "max_steps": t.max_steps, "batch_size": t.batch_size, "lr": t.lr, "log_every": t.log_every,
                  "val_every": t.val_every, "checkpoint_every": t.checkpoint_every, "chunk_size": da.chunk_size,
                  "morgan_radius": o.morgan_radius},
        non_negative={"warmup_steps": t.warmup_steps, "clip_norm": t.clip_norm, "end_lr": t.end_lr,
                      "weight_decay": t.weight_decay, "morgan_bits": o.morgan_bits, "morgan_weight": o.morgan_weight,
                      "loader_workers": t.loader_workers})
    for k, v in {"val_fraction": da.val_fraction, "dropout": mo.dropout}.items():
        if not 0.0 <= v < 1.0:
            raise ValueError(f"recipe {name!r}: {k} must be in [0, 1), got {v}")
    if not 0.0 <= o.clip_percentile < 50.0:
        raise ValueError(f"recipe {name!r}: clip_percentile must be in [0, 50), got {o.clip_percentile}")
    return r


def load_dmpnn_recipe(name_or_path) -> DMPNNPretrainRecipe:
    return load_kind_recipe(name_or_path, recipe_from_dict)


__all__ = ["KIND", "EncoderSpec", "DataSpec", "ObjectiveSpec", "TrainSpec", "DMPNNPretrainRecipe",
           "recipe_from_dict", "load_dmpnn_recipe"]
