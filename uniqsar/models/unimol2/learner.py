"""Uni-Mol2 fine-tuning learner (`unimol2`): backbone + a linear head on the CLS vector, trained end to end.

Input: canonical SMILES (``input = "smiles"``). Conformers come from the disk cache (conformer_cache.py), so
CV folds and trials share them. Training: the shared torch_trainer loop (AdamW, warmup + linear decay, gradient
clipping, early stopping). Regression fits standardized targets (mean / std stored); binary fits one logit;
multiclass K logits (cross-entropy); joint targets (``multitask``) one output per target with a masked loss.
Augmentation: `n_conformers` conformers per molecule, a random one each time a molecule is batched; prediction
averages the raw outputs over all of them. Early stopping uses `X_valid` when given, else an inner scaffold-grouped
split of `valid_frac` of the training part (CV calls fit without a validation part).

A molecule without features (no conformer / unparsable) is skipped in training and predicted as the training
mean (regression), prevalence (binary) or class frequencies (multiclass), so OOF vectors stay complete;
`n_failed_` counts them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from uniqsar.models.base import JOINT, FinetuneLearner
from uniqsar.models.torch_trainer import TrainConfig, Trainer, masked_multitask_loss, scale_targets, target_stats
from uniqsar.registry import register_learner

from .model import Dropout, LinearHead, UniMol2, pool

# Modules below the encoder blocks: frozen together with the first `freeze_layers` blocks.
EMBEDDING_PREFIXES = ("embed_tokens.", "atom_feature.", "edge_feature.", "se3_invariant_kernel.",
                      "encoder.layer_norm.", "encoder.pair_layer_norm.")
HEAD_PREFIXES = ("classification_head.",)


def load_backbone_for_finetune(weights, seed: int, arch: dict | None):
    """A UniMol2 backbone without task / LM heads."""
    from .pretrained import load_backbone

    backbone = load_backbone(weights, seed=seed, arch=arch)
    if backbone.classification_head is not None or backbone.lm_head is not None:
        cfg = backbone.cfg.with_(num_classes=0, lm_head=False)
        sd = {k: v for k, v in backbone.state_dict().items() if not k.startswith(("lm_head.", "classification_head."))}
        with torch.device("meta"):
            bare = UniMol2(cfg)
        bare.load_state_dict(sd, strict=True, assign=True)
        backbone = bare
    return backbone


class FineTuneModel(nn.Module):
    """Backbone -> pooled vector (CLS or CLS + atom mean) -> LinearHead -> (B,) raw output."""

    def __init__(self, backbone: UniMol2, pooling: str = "cls+mean", seed: int = 0, n_outputs: int = 1):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.n_outputs = int(n_outputs)
        width = backbone.cfg.embed_dim * (2 if pooling == "cls+mean" else 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.classification_head = LinearHead(width, self.n_outputs, backbone.cfg.pooler_dropout)
            self.classification_head.out_proj.weight.data.normal_(0.0, 0.02)
            self.classification_head.out_proj.bias.data.zero_()

    def forward(self, batch: dict) -> torch.Tensor:
        out = self.backbone(batch, coords=False)
        logits = self.classification_head(pool(out, batch["atom_mask"], self.pooling))  # (B, n_outputs)
        return logits[:, 0] if self.n_outputs == 1 else logits  # (B,) for one output


@register_learner
class UniMol2Learner(FinetuneLearner):
    key = "unimol2"
    pretrained_module = "uniqsar.models.unimol2.pretrained"
    test_params: dict[str, Any] = {"weights": "random", "arch": {"layers": 2, "embed_dim": 32, "heads": 2, "pair_dim": 16,
                                                              "pair_hidden": 4},
                                   "epochs": 16, "lr": 3e-3, "head_lr_mult": 3.0, "batch_size": 8, "dropout": 0.0,
                                   "n_conformers": 1}
    test_size_caps: dict[str, Any] = {"epochs": 2}
    defaults: dict[str, Any] = {**FinetuneLearner.defaults, "lr": 3e-4, "epochs": 16}
    fixed_defaults: dict[str, Any] = {  # arch: UniMol2Config overrides
        **FinetuneLearner.fixed_defaults,
        "patience": 4,
        "n_conformers": 3,  # training augmentation + prediction average
        "conformer_seed": 42,
        "max_atoms": 128,
        # unimol_tools' freeze_layers: parameters whose name (as in unimol_tools' UniMolV2Model: "encoder",
        # "embed_tokens", "classification_head", ...) starts with one of these are frozen; freeze_reversed: the others
        "freeze_prefixes": None,
        "freeze_reversed": False,
    }

    search_ranges: dict[str, tuple] = {"lr": (1e-5, 1e-3), "epochs": (8, 32, 4), "dropout": (0.0, 0.3),
                                       "freeze_layers": (0, 2), "batch_size": (16, 32)}

    # ------------------------------------------------------------------------------- features
    def _features(self, smiles):
        from .conformer_cache import cached_featurize

        feats, _ = cached_featurize([str(s) for s in smiles], n_jobs=max(1, self.n_threads),
                                    seed=int(self._param("conformer_seed")),
                                    n_conformers=int(self._param("n_conformers")),
                                    max_atoms=int(self._param("max_atoms")),
                                    crop_seed=self.seed)
        return feats

    # ------------------------------------------------------------------------------- model
    def _build(self, n_outputs: int = 1):
        """Backbone from `weights` + a fresh seeded head (1 output, K logits or T targets); dropout, freezing."""
        backbone = load_backbone_for_finetune(self._param("weights"), seed=self.seed, arch=self._param("arch"))
        model = FineTuneModel(backbone, str(self._param("pooling")), seed=self.seed + 1, n_outputs=n_outputs)
        self._configure(model)
        return model

    def _configure(self, model) -> None:
        p = float(self._param("dropout"))
        for m in model.modules():
            if isinstance(m, (Dropout, nn.Dropout)):
                m.p = p
        k = min(int(self._param("freeze_layers")), model.backbone.cfg.layers)
        frozen = EMBEDDING_PREFIXES + tuple(f"encoder.layers.{i}." for i in range(k)) if k else ()
        frozen = tuple("backbone." + f for f in frozen)
        prefixes = self._param("freeze_prefixes")
        prefixes = tuple([prefixes] if isinstance(prefixes, str) else prefixes or ())
        reverse = bool(self._param("freeze_reversed"))
        for name, prm in model.named_parameters():
            # the movement head never enters the loss: no gradients for it
            off = name.startswith("backbone.movement_pred_head.") or bool(frozen and name.startswith(frozen))
            if prefixes:  # unimol_tools naming: the backbone's modules sit at the top level there
                off = off or (reverse ^ name.removeprefix("backbone.").startswith(prefixes))
            prm.requires_grad = not off

    @staticmethod
    def _forward(model, batch):
        return model(batch)

    def _trainer(self, rng):
        from .features import collate

        cfg = TrainConfig.from_learner(self)

        def train_collate(items):  # item = a molecule's list of conformers: a random one (augmentation)
            return collate([confs[int(rng.integers(len(confs)))] for confs in items])

        def eval_collate(items):  # item = a list of conformers (first used) or one conformer dict
            return collate([it[0] if isinstance(it, list) else it for it in items])

        loss = masked_multitask_loss(self.target_tasks) if self.task == JOINT else None
        return Trainer(cfg, self.task, self._forward, train_collate, HEAD_PREFIXES, eval_collate=eval_collate,
                       loss=loss)

    # ------------------------------------------------------------------------------- fit / predict
    def _inner_split(self, smiles: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Boolean mask of the inner validation molecules: the scaffold-grouped fold (seeded) closest to
        valid_frac of the data; a seeded random split when scaffolds are too lumpy (one huge group)."""
        from uniqsar.data.split import make_folds

        frac = float(self._param("valid_frac"))
        n_folds = max(2, int(round(1.0 / frac)))
        target = frac * len(smiles)
        binary = self.task in ("binary", "multiclass")  # stratified; the training part keeps every class
        n_cls = len(np.unique(y)) if binary else 0

        def usable(mask):
            return 0 < mask.sum() <= 2 * target and (not binary or len(np.unique(y[~mask])) == n_cls)

        try:
            folds = make_folds(list(smiles), n_folds, self.seed, "scaffold", y if binary else None)
            options = [folds == f for f in np.unique(folds)]
            options = [m for m in options if usable(m)]
            if options:
                return min(options, key=lambda m: abs(m.sum() - target))
        except Exception:  # scaffold split failed: random split below
            pass
        valid = np.zeros(len(smiles), bool)
        valid[np.random.default_rng(self.seed).permutation(len(smiles))[: max(1, int(round(target)))]] = True
        if binary and len(np.unique(y[~valid])) < n_cls:
            valid[:] = False
        return valid

    def fit(self, X, y, X_valid=None, y_valid=None) -> "UniMol2Learner":
        X = np.asarray(X, dtype=object).ravel()
        y = np.asarray(y, dtype=np.float64)
        if self.task == "multiclass":
            self._classes(y)
        feats = self._features(X)
        ok = np.array([f is not None for f in feats])
        if ok.sum() == 0:
            raise ValueError("unimol2: no training molecule could be featurized")
        self.n_failed_ = int((~ok).sum())
        if X_valid is not None and y_valid is not None and len(X_valid):
            v_feats = self._features(np.asarray(X_valid, dtype=object).ravel())
            v_ok = np.array([f is not None for f in v_feats])
            tr_items, tr_y = [feats[i] for i in np.flatnonzero(ok)], y[ok]
            va_items = [v_feats[i] for i in np.flatnonzero(v_ok)]
            va_y = np.asarray(y_valid, dtype=np.float64)[v_ok]
        else:
            idx = np.flatnonzero(ok)
            valid = np.zeros(len(idx), bool)
            if len(idx) >= int(self._param("min_valid")):
                valid = self._inner_split(X[idx], y[idx])
            tr_items, tr_y = [feats[i] for i in idx[~valid]], y[idx[~valid]]
            va_items, va_y = [feats[i] for i in idx[valid]], y[idx[valid]]
        stats = target_stats(self.task, tr_y, self.n_classes, self.target_tasks)
        self.y_mean_, self.y_std_, self.fallback_ = stats["y_mean"], stats["y_std"], stats["fallback"]
        scale = lambda v: scale_targets(v, self.y_mean_, self.y_std_)  # noqa: E731
        model = self._build(stats["n_outputs"])
        rng = np.random.default_rng(self.seed)
        trainer = self._trainer(rng)
        sizes = [len(c[0]["src_tokens"]) for c in tr_items]
        valid_part = None
        if len(va_items):
            valid_part = (va_items, scale(va_y), [len(c[0]["src_tokens"]) for c in va_items])
        trainer.fit(model, tr_items, scale(tr_y), sizes, valid=valid_part)
        self.history_ = trainer.history
        self.best_epoch_ = trainer.best_epoch
        self.model_ = model.cpu().eval()
        self.config_ = model.backbone.cfg.to_dict()
        return self

    def predict_raw(self, X) -> np.ndarray:
        """Raw model outputs (standardized value / logit) averaged over conformers; NaN for failed molecules."""
        X = np.asarray(X, dtype=object).ravel()
        pairs = [(i, c) for i, confs in enumerate(self._features(X)) if confs for c in confs]
        return self._trainer(np.random.default_rng(0)).predict_rows(
            self.model_, len(X), [i for i, _ in pairs], [c for _, c in pairs],
            [len(c["src_tokens"]) for _, c in pairs], self.n_threads)

    # ------------------------------------------------------------------------------- persistence
    def _state_record(self) -> dict:
        return {"config": self.config_, "pooling": self.model_.pooling}

    def _model_from_state(self, state: dict) -> FineTuneModel:
        from .config import UniMol2Config

        self.config_ = state["config"]
        return FineTuneModel(UniMol2(UniMol2Config.from_dict(state["config"])), state["pooling"], seed=0,
                             n_outputs=int(state.get("n_outputs", 1)))
