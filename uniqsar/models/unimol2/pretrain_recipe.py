"""Pretraining recipes (TOML in uniqsar/recipes/pretrain/pretrain_unimol2_*.toml) as frozen dataclasses.

Recipes are data: parsed with tomllib and validated field by field, never executed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from uniqsar.models.pretrain_common import (CorpusSpec, check_recipe_values, load_kind_recipe, recipe_model_table,
                                            recipe_section, typed_section)

from .config import UniMol2Config, get_config



# ----------------------------------------------------------------------------------------- recipe


@dataclass(frozen=True)
class DataSpec(CorpusSpec):
    """The corpus fields (``CorpusSpec``) and the conformer shards'."""
    val_max: int = 512
    shard_size: int = 500  # molecules per conformer shard
    conformer_seed: int = 42


@dataclass(frozen=True)
class ObjectiveSpec:
    mask_token_prob: float = 0.15
    coord_noise_prob: float = 0.15
    noise: float = 1.0  # uniform noise half-width, Angstrom
    kabsch: bool = True  # align the noised structure back onto the clean one
    drop_feat_prob: float = 0.5
    use_2d_prob: float = 0.5
    token_loss: float = 1.0
    coord_loss: float = 5.0
    dist_loss: float = 10.0
    aux_descriptors: bool = False  # regress z-scored RDKit descriptors from the CLS vector
    aux_set: str = "basic"  # "basic": the 10 of pretrain_data.DESCRIPTORS; "rdkit": every RDKit 2D descriptor
    aux_loss: float = 1.0


@dataclass(frozen=True)
class TrainSpec:
    max_steps: int = 1000
    batch_size: int = 32  # molecules per step (upper bound)
    max_pairs: int = 32 * 48 * 48  # and about B·L² <= max_pairs
    lr: float = 1e-4
    end_lr: float = 0.0
    warmup_steps: int = 100
    power: float = 1.0  # polynomial decay power (1 = linear)
    weight_decay: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-6
    clip_norm: float = 1.0
    seed: int = 1
    threads: int = 0  # torch threads; 0 = all cores
    log_every: int = 50
    val_every: int = 500
    checkpoint_every: int = 500
    mode: str = "correct"
    # Continued pretraining: start from these weights ("default", a checkpoint path or a released size
    # name) instead of a fresh Uni-Core init; the optimizer and schedule start fresh. init_sha256, if set,
    # must match the file (a recipe names exact weights, not whatever "default" is at the time).
    init_weights: str = ""
    init_sha256: str = ""


@dataclass(frozen=True)
class PretrainRecipe:
    name: str
    model: UniMol2Config
    data: DataSpec = field(default_factory=DataSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    train: TrainSpec = field(default_factory=TrainSpec)

    def to_dict(self) -> dict:
        return {"name": self.name, "model": self.model.to_dict(), "data": asdict(self.data),
                "objective": asdict(self.objective), "train": asdict(self.train)}


def recipe_from_dict(d: dict, name: str = "custom") -> PretrainRecipe:
    m = recipe_model_table(d, name, "unimol2")
    size = m.pop("size", "tiny")
    try:
        cfg = get_config(size, **typed_section(UniMol2Config, m, f"recipe {name!r} [model]"), lm_head=True,
                         num_classes=0)
    except (KeyError, TypeError) as e:
        raise ValueError(f"recipe {name!r} [model]: {e}") from None
    r = PretrainRecipe(name, cfg, recipe_section(DataSpec, d, "data", name),
                       recipe_section(ObjectiveSpec, d, "objective", name), recipe_section(TrainSpec, d, "train", name))
    o, t, da = r.objective, r.train, r.data
    check_recipe_values(
        name,
        unit={"mask_token_prob": o.mask_token_prob, "coord_noise_prob": o.coord_noise_prob,
              "drop_feat_prob": o.drop_feat_prob, "use_2d_prob": o.use_2d_prob, "val_fraction": da.val_fraction},
        positive={"max_steps": t.max_steps, "batch_size": t.batch_size, "lr": t.lr, "log_every": t.log_every,
                  "val_every": t.val_every, "checkpoint_every": t.checkpoint_every, "shard_size": da.shard_size},
        non_negative={"token_loss": o.token_loss, "coord_loss": o.coord_loss, "dist_loss": o.dist_loss,
                      "aux_loss": o.aux_loss, "warmup_steps": t.warmup_steps, "clip_norm": t.clip_norm,
                      "noise": o.noise, "offset": da.offset, "limit": da.limit})
    if o.aux_set not in ("basic", "rdkit"):
        raise ValueError(f"recipe {name!r}: objective.aux_set must be 'basic' or 'rdkit', got {o.aux_set!r}")
    if t.init_sha256 and not t.init_weights:
        raise ValueError(f"recipe {name!r}: train.init_sha256 is set but train.init_weights is empty")
    if t.mode not in ("correct", "reference"):
        raise ValueError(f"recipe {name!r}: train.mode must be 'correct' or 'reference'")
    return r


def load_pretrain_recipe(name_or_path) -> PretrainRecipe:
    return load_kind_recipe(name_or_path, recipe_from_dict)
