"""SMILES-transformer fine-tuning learner (`smiles_transformer`): pretrained encoder + MLP head, end to end.

Input: canonical SMILES (``input = "smiles"``). Encoder weights: ``weights`` (see pretrained.py: "default" =
the shipped checkpoint, or a seeded random init with a warning while none ships; "random"; a checkpoint path).
Head: the pooled vector (CLS + mean of the token states by default) -> dropout -> Linear(hidden) -> GELU ->
dropout -> Linear(1) (K logits for multiclass, one output per target for joint targets). Training: the shared torch_trainer loop (AdamW, head at ``head_lr_mult`` x lr, warmup +
linear decay, gradient clipping, early stopping on X_valid or an inner scaffold split of ``valid_frac``).
Regression fits standardized targets (mean / std stored); binary fits one logit (BCE); multiclass K logits
(cross-entropy); joint targets (``multitask``) one output each with a loss masked where a label is missing.

Augmentation: at train time each molecule is written as a randomized SMILES with probability
``random_smiles_prob`` every time it is batched (RDKit seeds from the learner's seeded RNG). Prediction
averages the raw outputs (standardized value / logit) over ``n_tta`` writings: the canonical SMILES and
``n_tta - 1`` randomized SMILES whose seeds depend only on (seed, canonical SMILES, k), so a molecule's
prediction does not depend on the rest of its batch. ``freeze_layers = k`` freezes the embeddings and the
first k blocks. SMILES longer than the encoder's ``max_len`` are truncated.

A molecule that cannot be parsed or tokenized is skipped in training and predicted as the training mean
(regression), prevalence (binary) or class frequencies (multiclass), so OOF vectors stay complete; ``n_failed_``
counts them in training.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from uniqsar.featurize.smiles_tokens import PAD_ID, SmilesTokenizer, randomized_smiles, smiles_seed
from uniqsar.models.base import JOINT, FinetuneLearner
from uniqsar.models.torch_trainer import TrainConfig, Trainer, masked_multitask_loss, scale_targets, target_stats
from uniqsar.registry import register_learner

from .model import SmilesEncoder, SmilesTransformerConfig, pool

HEAD_PREFIXES = ("head.",)
EMBEDDING_PREFIXES = ("encoder.tok_embed.", "encoder.pos_embed.")


class FineTuneModel(nn.Module):
    """Encoder -> pooled vector -> MLP head -> (B,) raw outputs."""

    def __init__(self, encoder: SmilesEncoder, pooling: str = "cls+mean", head_hidden: int = 256,
                 dropout: float = 0.1, seed: int = 0, n_outputs: int = 1):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.n_outputs = int(n_outputs)
        width = encoder.cfg.d_model * (2 if pooling == "cls+mean" else 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, head_hidden), nn.GELU(),
                                      nn.Dropout(dropout), nn.Linear(head_hidden, self.n_outputs))
            nn.init.normal_(self.head[4].weight, 0.0, 0.02)
            nn.init.zeros_(self.head[4].bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out = self.head(pool(self.encoder(tokens), tokens, self.pooling))  # (B, n_outputs)
        return out[:, 0] if self.n_outputs == 1 else out


def pad_batch(seqs: list[list[int]]) -> dict:
    L = max(len(s) for s in seqs)
    out = np.full((len(seqs), L), PAD_ID, np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return {"tokens": torch.from_numpy(out)}


def _forward(model, batch):
    return model(batch["tokens"])


@register_learner
class SmilesTransformerLearner(FinetuneLearner):
    key = "smiles_transformer"
    pretrained_module = "uniqsar.models.smiles.pretrained"
    test_params: dict[str, Any] = {"weights": "random", "arch": {"d_model": 32, "n_layers": 2, "n_heads": 2, "ffn_dim": 64},
                                   "lr": 2e-3, "batch_size": 16, "dropout": 0.0, "epochs": 30, "n_tta": 2}
    test_size_caps: dict[str, Any] = {"epochs": 2}
    defaults: dict[str, Any] = {**FinetuneLearner.defaults, "lr": 2e-4, "epochs": 20}
    fixed_defaults: dict[str, Any] = {  # arch: SmilesTransformerConfig overrides
        **FinetuneLearner.fixed_defaults,
        "head_hidden": 256,
        "patience": 5,
        "random_smiles_prob": 0.8,  # training augmentation
        "n_tta": 4,  # prediction: canonical + 3 randomized SMILES, raw outputs averaged
    }
    search_ranges: dict[str, tuple] = {"lr": (2e-5, 1e-3), "epochs": (10, 40, 5), "dropout": (0.0, 0.3),
                                       "freeze_layers": (0, 3), "batch_size": (16, 32, 64)}
    state_indent = 1  # smiles_transformer.json kept as it was written

    # ------------------------------------------------------------------------------- model
    def _build(self, n_outputs: int = 1):
        from .pretrained import load_mlm

        mlm, tok = load_mlm(self._param("weights"), seed=self.seed, arch=self._param("arch"))
        model = FineTuneModel(mlm.encoder, str(self._param("pooling")), int(self._param("head_hidden")),
                              float(self._param("dropout")), seed=self.seed + 1, n_outputs=n_outputs)
        self._configure(model)
        return model, tok

    def _configure(self, model: FineTuneModel) -> None:
        p = float(self._param("dropout"))
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = p
        for block in model.encoder.layers:
            block.attn_dropout = p
        k = min(int(self._param("freeze_layers")), model.encoder.cfg.n_layers)
        frozen = EMBEDDING_PREFIXES + tuple(f"encoder.layers.{i}." for i in range(k)) if k else ()
        for name, prm in model.named_parameters():
            prm.requires_grad = not (frozen and name.startswith(frozen))

    def _trainer(self, rng: np.random.Generator | None = None):
        cfg = TrainConfig.from_learner(self)
        tok, max_len, p_rand = self.tokenizer_, self.config_.max_len, float(self._param("random_smiles_prob"))

        def train_collate(items):  # item: (mol, canonical ids); a fresh randomized SMILES with probability p_rand
            seqs = []
            for mol, ids in items:
                if p_rand > 0 and rng.random() < p_rand:
                    text = randomized_smiles(mol, 1, seed=int(rng.integers(1, 2**31 - 1)))[0]
                    try:
                        ids = tok.encode(text, max_len=max_len)
                    except ValueError:
                        pass
                seqs.append(ids)
            return pad_batch(seqs)

        def eval_collate(items):  # item: (mol, ids) in validation, or ids in prediction
            return pad_batch([it[1] if isinstance(it, tuple) else it for it in items])

        loss = masked_multitask_loss(self.target_tasks) if self.task == JOINT else None
        return Trainer(cfg, self.task, _forward, train_collate, HEAD_PREFIXES, eval_collate=eval_collate, loss=loss)

    # ------------------------------------------------------------------------------- data
    def _parse(self, smiles) -> list:
        """Per SMILES: (mol, canonical SMILES, canonical ids) or None (unparsable / untokenizable)."""
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        out = []
        for s in smiles:
            mol = Chem.MolFromSmiles(str(s)) if s is not None else None
            if mol is None or mol.GetNumAtoms() == 0:
                out.append(None)
                continue
            can = Chem.MolToSmiles(mol)
            mol = Chem.MolFromSmiles(can)  # canonical atom order: randomized SMILES depend on it
            try:
                out.append((mol, can, self.tokenizer_.encode(can, max_len=self.config_.max_len)))
            except ValueError:
                out.append(None)
        return out

    def _inner_split(self, smiles: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The seeded scaffold-grouped fold 0 of round(1 / valid_frac) folds (random split if that fails);
        no split when the training part would lose a class."""
        from uniqsar.data.split import make_folds

        n_folds = max(2, int(round(1.0 / float(self._param("valid_frac")))))
        binary = self.task in ("binary", "multiclass")  # stratified; the training part keeps every class
        try:
            valid = make_folds(list(smiles), n_folds, self.seed, "scaffold", y if binary else None) == 0
        except Exception:
            valid = np.zeros(len(smiles), bool)
            valid[np.random.default_rng(self.seed).permutation(len(smiles))[: max(1, len(smiles) // n_folds)]] = True
        if valid.all() or (binary and len(np.unique(y[~valid])) < len(np.unique(y))):
            valid[:] = False
        return valid

    # ------------------------------------------------------------------------------- fit / predict
    def fit(self, X, y, X_valid=None, y_valid=None) -> "SmilesTransformerLearner":
        X = np.asarray(X, dtype=object).ravel()
        y = np.asarray(y, dtype=np.float64)
        if self.task == "multiclass":
            self._classes(y)
        n_outputs = len(self.target_tasks) if self.task == JOINT else (self.n_classes if self.task == "multiclass"
                                                                       else 1)
        torch.manual_seed(self.seed)
        model, self.tokenizer_ = self._build(n_outputs)
        self.config_ = model.encoder.cfg
        parsed = self._parse(X)
        labelled = np.isfinite(y).any(axis=1) if y.ndim == 2 else np.isfinite(y)  # joint: any target labelled
        ok = np.array([p is not None for p in parsed]) & labelled
        if ok.sum() < 2:
            raise ValueError("smiles_transformer needs at least 2 valid molecules with finite targets")
        self.n_failed_ = int((~ok).sum())
        idx = np.flatnonzero(ok)
        if X_valid is not None and y_valid is not None and len(X_valid):
            v_parsed = self._parse(np.asarray(X_valid, dtype=object).ravel())
            v_y_all = np.asarray(y_valid, dtype=np.float64)
            v_lab = np.isfinite(v_y_all).any(axis=1) if v_y_all.ndim == 2 else np.isfinite(v_y_all)
            v_idx = np.flatnonzero(np.array([p is not None for p in v_parsed]) & v_lab)
            tr = [parsed[i] for i in idx]
            tr_y = y[idx]
            va, va_y = [v_parsed[i] for i in v_idx], v_y_all[v_idx]
        else:
            valid = np.zeros(len(idx), bool)
            if len(idx) >= int(self._param("min_valid")):
                valid = self._inner_split(np.array([parsed[i][1] for i in idx], dtype=object), y[idx])
            tr, tr_y = [parsed[i] for i in idx[~valid]], y[idx[~valid]]
            va, va_y = [parsed[i] for i in idx[valid]], y[idx[valid]]
        stats = target_stats(self.task, tr_y, self.n_classes, self.target_tasks)
        self.y_mean_, self.y_std_, self.fallback_ = stats["y_mean"], stats["y_std"], stats["fallback"]
        scale = lambda v: scale_targets(v, self.y_mean_, self.y_std_)  # noqa: E731
        trainer = self._trainer(np.random.default_rng(self.seed))
        items = [(p[0], p[2]) for p in tr]
        valid_part = None
        if len(va):
            valid_part = ([(p[0], p[2]) for p in va], scale(va_y), [len(p[2]) for p in va])
        trainer.fit(model, items, scale(tr_y), [len(p[2]) for p in tr], valid=valid_part)
        self.history_ = trainer.history
        self.best_epoch_ = trainer.best_epoch
        self.model_ = model.cpu().eval()
        return self

    def _variants(self, parsed) -> list[tuple[int, list[int]]]:
        """(row, ids) for the canonical SMILES and n_tta - 1 randomized SMILES of every parsed molecule."""
        n_tta = max(1, int(self._param("n_tta")))
        pairs = []
        for i, p in enumerate(parsed):
            if p is None:
                continue
            mol, can, ids = p
            pairs.append((i, ids))
            for k in range(1, n_tta):
                text = randomized_smiles(mol, 1, seed=smiles_seed(can, self.seed, k))[0]
                try:
                    pairs.append((i, self.tokenizer_.encode(text, max_len=self.config_.max_len)))
                except ValueError:
                    continue
        return pairs

    def predict_raw(self, X) -> np.ndarray:
        """Raw outputs (standardized value / logit) averaged over the SMILES writings; NaN for failed molecules."""
        X = np.asarray(X, dtype=object).ravel()
        pairs = self._variants(self._parse(X))
        return self._trainer().predict_rows(self.model_, len(X), [i for i, _ in pairs], [ids for _, ids in pairs],
                                            [len(ids) for _, ids in pairs], self.n_threads)

    # ------------------------------------------------------------------------------- persistence
    def _state_record(self) -> dict:
        return {"config": self.config_.to_dict(), "vocab": self.tokenizer_.tokens, "pooling": self.model_.pooling,
                "head_hidden": int(self.model_.head[1].out_features)}

    def _model_from_state(self, state: dict) -> FineTuneModel:
        self.config_ = SmilesTransformerConfig.from_dict(state["config"])
        self.tokenizer_ = SmilesTokenizer(state["vocab"])
        return FineTuneModel(SmilesEncoder(self.config_), state["pooling"], int(state["head_hidden"]),
                             float(self._param("dropout")), seed=0, n_outputs=int(state.get("n_outputs", 1)))
