"""Directed message-passing neural network (D-MPNN; Yang et al. 2019, as in chemprop v2).

Messages live on directed bonds. With ``x_v`` atom features, ``e_vw`` bond features:

    h0_vw = W_i [x_v ; e_vw]                         (hidden, no bias)
    h_vw  = ReLU(h0_vw)
    repeat depth-1 times:
        m_vw  = sum_{k in N(v)} h_kv  -  h_wv         (all messages into v except the one from w)
        h_vw  = dropout(ReLU(h0_vw + W_h m_vw))
    h_v   = dropout(ReLU(W_o [x_v ; sum_{k in N(v)} h_kv]))
    h_mol = sum of h_v over the molecule's atoms / 100 ("norm"; or mean, sum)
            [; standardized RDKit descriptors]
    y     = FFN(h_mol)

A batch is one disconnected graph (``uniqsar.featurize.graph.collate_graphs``); every step is a
gather or an ``index_add_`` over the whole batch, no Python loop over atoms. A molecule's output
depends only on its own atoms (no batch norm, no padding), so it does not change with its batch.

Learner ``dmpnn`` (``input = "smiles"``): regression on standardized targets, binary with BCE, multiclass
with a K-logit head and cross-entropy, joint targets (``multitask``: one T-output head, a loss masked where a
label is missing; ``torch_trainer.masked_multitask_loss``).
Without a validation part, early stopping uses a seeded scaffold-grouped inner split of
``valid_frac`` of the training molecules (skipped below 50 molecules). ``rdkit_features=True``
is the "Chemprop-RDKit" variant: the RDKit 2D descriptors (``rdkit_desc``, from the feature
cache) are standardized with training statistics (columns with huge values are signed-log1p'ed
first; NaN -> 0, clipped to +-6) and concatenated before the FFN.

Defaults follow the chemprop 2.3 CLI (``chemprop train``; checked against its source): hidden
300, depth 3, no bias in W_i/W_h, ReLU, dropout 0, FFN 1 x 300, batch 64, 50 epochs, Adam without
weight decay, peak lr 1e-3, "norm" aggregation (sum / 100), new random batches every epoch, no
early stopping (all epochs run; the best-validation-loss epoch is kept), standardized regression
targets. Differences: the lr schedule is the Trainer's (linear warmup over 6 % of the steps from
~0 to 1e-3, then linear decay to 0); chemprop's Noam-like one (1e-4 -> 1e-3 over 2 epochs, then
exponential decay to 1e-4; ``schedule="noam"``) scored worse with this network on 5 of 6 TDC
task/seed pairs tried, equal on the sixth (``benchmarks/dmpnn/README.md``). Gradient-norm clipping at 10 (chemprop:
none); atom features 58 vs 72 (our element list differs; see ``uniqsar.featurize.graph``).
``patience``, ``size_buckets`` / ``reshuffle`` select the older early-stopping / fixed-batch
behaviour. On one CPU thread this is ~1.5 CPU-s per epoch per 700 molecules.

Pretrained start (``weights = "default"`` or a checkpoint path): the encoder is loaded, the FFN head is new, the
encoder learns at ``encoder_lr_mult`` x ``lr``. ``standardize_encoder=True`` (pretrained starts only) inserts a
fixed per-dimension standardization of the molecule vector before the head, computed once from the pretrained
encoder on the training molecules: a descriptor-pretrained encoder's vectors are ~20x the scale of a random
init's (``benchmarks/pretrain/results/dmpnn_plan.md``), which a new head initialised for unit inputs fits badly.

Invalid SMILES: dropped from training; NaN from ``predict``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from uniqsar.featurize.graph import ATOM_DIM, BOND_DIM, GRAPH_VERSION, collate_graphs, smiles_to_graphs
from uniqsar.models.base import JOINT, TASKS, Learner
from uniqsar.models.torch_trainer import (TrainConfig, Trainer, masked_multitask_loss, scale_targets, target_stats,
                                          to_predictions)
from uniqsar.registry import register_learner


# --------------------------------------------------------------------------- network
#: readout over atoms: mean, sum, or chemprop v2's default "norm" (sum / ``aggregation_norm``)
AGGREGATIONS = ("mean", "sum", "norm")


def _reverse(H: torch.Tensor) -> torch.Tensor:
    """``H[rev]`` for directed bonds stored in reverse pairs (2i, 2i+1): a swap, no gather."""
    return H.view(-1, 2, H.shape[1]).flip(1).reshape(H.shape)


class DMPNNModel(nn.Module):
    def __init__(self, hidden_size: int = 300, depth: int = 3, dropout: float = 0.0,
                 ffn_hidden_size: int = 300, ffn_layers: int = 1, aggregation: str = "norm",
                 n_extra: int = 0, aggregation_norm: float = 100.0, n_outputs: int = 1,
                 standardize: bool = False):
        super().__init__()
        self.n_outputs = int(n_outputs)
        if depth < 1:
            raise ValueError("depth must be >= 1")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not {aggregation!r}")
        self.depth = depth
        self.aggregation = aggregation
        self.aggregation_norm = float(aggregation_norm)
        self.W_i = nn.Linear(ATOM_DIM + BOND_DIM, hidden_size, bias=False)
        self.W_h = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_o = nn.Linear(ATOM_DIM + hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        layers: list[nn.Module] = []
        width = hidden_size + n_extra
        for _ in range(ffn_layers):
            layers += [nn.Linear(width, ffn_hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = ffn_hidden_size
        layers.append(nn.Linear(width, self.n_outputs))
        self.ffn = nn.Sequential(*layers)
        if standardize:  # fixed per-dimension shift / scale of the molecule vector (set_standardization)
            self.register_buffer("mol_mean", torch.zeros(hidden_size))
            self.register_buffer("mol_scale", torch.ones(hidden_size))

    @torch.no_grad()
    def set_standardization(self, batches) -> None:
        """Set the fixed shift / scale from ``encode`` over ``batches`` (dicts as ``collate`` makes): each
        dimension then enters the head with mean 0 and standard deviation 1 on those molecules (a dimension that
        is constant there keeps scale 1)."""
        was = self.training
        self.eval()
        Z = torch.cat([self.encode_batch(b) for b in batches])
        self.train(was)
        sd = Z.std(dim=0, unbiased=False)
        self.mol_mean.copy_(Z.mean(dim=0))
        self.mol_scale.copy_(torch.where(sd > 1e-6, sd, torch.ones_like(sd)))

    def encode(self, V, E, src, dst, rev, batch, n_atoms) -> torch.Tensor:
        """Molecule vectors ``(M, hidden)`` for a collated batch of M molecules."""
        n_at = V.shape[0]
        H0 = self.W_i(torch.cat([V.index_select(0, src), E], dim=1))        # (nE, h)
        H = torch.relu(H0)
        for _ in range(self.depth - 1):
            into = H.new_zeros(n_at, H.shape[1]).index_add_(0, dst, H)    # (nA, h) sum of messages into each atom
            M = into.index_select(0, src) - _reverse(H)                     # (nE, h) exclude the reverse bond
            H = self.dropout(torch.relu(H0 + self.W_h(M)))
        into = H.new_zeros(n_at, H.shape[1]).index_add_(0, dst, H)        # (nA, h); zeros for isolated atoms
        Hv = self.dropout(torch.relu(self.W_o(torch.cat([V, into], dim=1))))  # (nA, h)
        mol = Hv.new_zeros(n_atoms.shape[0], Hv.shape[1]).index_add_(0, batch, Hv)  # (M, h)
        if self.aggregation == "mean":
            mol = mol / n_atoms.clamp(min=1).unsqueeze(1).to(mol.dtype)
        elif self.aggregation == "norm":
            mol = mol / self.aggregation_norm
        return mol

    def encode_batch(self, b: dict) -> torch.Tensor:
        """``encode`` of a batch dict as ``collate_graphs`` / ``collate`` make it (tensors)."""
        return self.encode(b["V"], b["E"], b["src"], b["dst"], b["rev"], b["batch"], b["n_atoms"])

    def forward(self, V, E, src, dst, rev, batch, n_atoms, X_d=None) -> torch.Tensor:
        mol = self.encode(V, E, src, dst, rev, batch, n_atoms)
        if hasattr(self, "mol_mean"):
            mol = (mol - self.mol_mean) / self.mol_scale
        if X_d is not None:
            mol = torch.cat([mol, X_d], dim=1)                              # (M, h + d)
        out = self.ffn(mol)                                                 # (M, n_outputs)
        return out.squeeze(-1) if self.n_outputs == 1 else out             # (M,) for one output


def noam_lambda(steps: int, epochs: int, warmup_epochs: float, ratio: float):
    """chemprop v2's Noam-like schedule as a multiplier of the peak lr: linear from ``ratio`` to 1
    over ``warmup_epochs``, then exponential decay to ``ratio`` at the last step
    (``chemprop.schedulers.build_NoamLike_LRSched`` with init_lr = final_lr = ratio * max_lr)."""
    per_epoch = max(1, steps // max(1, epochs))
    warmup = int(round(warmup_epochs * per_epoch))
    cooldown = max(1, steps - warmup)

    def f(step: int) -> float:
        if step < warmup:
            return ratio + (1.0 - ratio) * step / warmup
        return ratio ** min(1.0, (step - warmup) / cooldown)

    return f


class DMPNNTrainer(Trainer):
    """The shared Trainer, optionally with chemprop's lr schedule (``schedule="noam"``, one parameter
    group); ``schedule="linear"``: the Trainer's own warmup + linear decay to 0."""

    def __init__(self, *args, schedule: str = "linear", warmup_epochs: float = 2.0,
                 final_lr_ratio: float = 0.1, **kwargs):
        super().__init__(*args, **kwargs)
        self.schedule, self.warmup_epochs, self.final_lr_ratio = schedule, warmup_epochs, final_lr_ratio

    def _optimizer(self, model: nn.Module, steps: int):
        if self.schedule != "noam":
            return super()._optimizer(model, steps)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=self.cfg.lr,
                                weight_decay=self.cfg.weight_decay)
        f = noam_lambda(steps, self.cfg.epochs, self.warmup_epochs, self.final_lr_ratio)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, f)


def collate(items) -> dict:
    """``items``: list of ``(MolGraph, descriptor row or None)``."""
    g = collate_graphs([it[0] for it in items])
    out = {k: torch.from_numpy(v) for k, v in g.items()}
    if items[0][1] is not None:
        out["X_d"] = torch.from_numpy(np.stack([it[1] for it in items]).astype(np.float32))
    return out


def _forward(model, batch):
    return model(batch["V"], batch["E"], batch["src"], batch["dst"], batch["rev"], batch["batch"],
                 batch["n_atoms"], batch.get("X_d"))


# --------------------------------------------------------------------------- descriptors
_LOG_ABOVE = 1e4  # columns whose training |max| exceeds this are signed-log1p'ed
_CLIP = 6.0


def _rdkit_descriptors(smiles) -> np.ndarray:
    from uniqsar.featurize.cache import FeatureCache
    from uniqsar.registry import get_featurizer

    return FeatureCache().get(get_featurizer("rdkit_desc"), [str(s) for s in smiles]).astype(np.float64)


def _signed_log(X: np.ndarray, mask: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[:, mask] = np.sign(X[:, mask]) * np.log1p(np.abs(X[:, mask]))
    return X


def fit_descriptor_scaler(X: np.ndarray) -> dict:
    with np.errstate(all="ignore"):
        mask = np.nan_to_num(np.nanmax(np.abs(X), axis=0), nan=0.0) > _LOG_ABOVE
        Xl = _signed_log(X, mask)
        mean = np.nan_to_num(np.nanmean(Xl, axis=0), nan=0.0)
        std = np.nan_to_num(np.nanstd(Xl, axis=0), nan=0.0)
    std[std < 1e-8] = 1.0
    return {"log_mask": mask.tolist(), "mean": mean.tolist(), "std": std.tolist()}


def apply_descriptor_scaler(X: np.ndarray, scaler: dict) -> np.ndarray:
    mask = np.asarray(scaler["log_mask"], bool)
    with np.errstate(all="ignore"):
        Z = (_signed_log(X, mask) - np.asarray(scaler["mean"])) / np.asarray(scaler["std"])
    return np.clip(np.nan_to_num(Z, nan=0.0, posinf=_CLIP, neginf=-_CLIP), -_CLIP, _CLIP).astype(np.float32)


# --------------------------------------------------------------------------- learner
@register_learner
class DMPNN(Learner):
    key = "dmpnn"
    input = "smiles"
    tasks = TASKS + (JOINT,)
    defaults: dict[str, Any] = {
        "hidden_size": 300, "depth": 3, "dropout": 0.0, "ffn_hidden_size": None, "ffn_layers": 1,
        "aggregation": "norm", "aggregation_norm": 100.0, "rdkit_features": False,
        "lr": 1e-3, "schedule": "linear", "warmup_epochs": 2, "final_lr_ratio": 0.1, "weight_decay": 0.0,
        "epochs": 50, "batch_size": 64, "patience": None, "valid_frac": 0.1, "grad_clip": 10.0,
        "size_buckets": False, "reshuffle": True,
        "weights": None, "encoder_lr_mult": 0.5, "standardize_encoder": False,
    }
    needs_weights = True  # weights_identity: the encoder's start (pretrained, or a seeded random init)
    test_params: dict[str, Any] = {"hidden_size": 32, "ffn_hidden_size": 32, "depth": 2, "epochs": 40, "batch_size": 64,
                                   "lr": 5e-3, "aggregation": "mean"}
    test_size_caps: dict[str, Any] = {"epochs": 2}
    #: parameters that a pretrained encoder (``weights``) fixes: they are read from its checkpoint
    arch_keys = ("hidden_size", "depth", "aggregation", "aggregation_norm")
    #: below this many training molecules no inner validation split is carved out
    min_valid_split = 50

    @staticmethod
    def search_space(trial, task: str) -> dict[str, Any]:
        return {
            "depth": trial.suggest_int("depth", 2, 6),
            "hidden_size": trial.suggest_int("hidden_size", 100, 500, step=100),
            "dropout": trial.suggest_float("dropout", 0.0, 0.4, step=0.05),
            "ffn_layers": trial.suggest_int("ffn_layers", 1, 3),
            "lr": trial.suggest_float("lr", 2e-4, 3e-3, log=True),
            "epochs": trial.suggest_int("epochs", 30, 80, step=10),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
            "aggregation": trial.suggest_categorical("aggregation", list(AGGREGATIONS)),
            "rdkit_features": trial.suggest_categorical("rdkit_features", [False, True]),
        }

    # -- helpers ----------------------------------------------------------------------------
    def _p(self) -> dict[str, Any]:
        p = {**self.defaults, **self.params}
        if getattr(self, "saved_dims_", None):  # a loaded model keeps the shape it was trained with
            p.update(self.saved_dims_)
        elif self._pretrained():
            from .pretrained import identity

            cfg = identity(p["weights"])["config"]
            p.update({k: cfg[k] for k in self.arch_keys})
        if p["ffn_hidden_size"] is None:
            p["ffn_hidden_size"] = p["hidden_size"]
        return p

    def weights_identity(self) -> dict:
        """Identity + provenance of the encoder's initial weights (the run manifest's `representations`)."""
        from .pretrained import identity

        if self._pretrained():
            return identity(self.params["weights"])
        return {**identity("random", self.seed), "name": "scratch"}

    def _pretrained(self) -> bool:
        """True when the encoder starts from pretrained weights (``weights`` = "default" or a checkpoint path);
        None / "none" / "scratch" train from a seeded random init (chemprop's default)."""
        w = self.params.get("weights")
        return w is not None and str(w).lower() not in ("none", "scratch")

    def _arch(self) -> dict[str, Any]:
        """The readout settings, saved with the model (a model keeps its readout if defaults change)."""
        p = self._p()
        arch = {"aggregation": str(p["aggregation"]), "aggregation_norm": float(p["aggregation_norm"])}
        if p["standardize_encoder"]:
            if not self._pretrained():
                raise ValueError("dmpnn standardize_encoder needs pretrained weights (weights = 'default' or a path)")
            arch["standardize"] = True
        return arch

    def _build(self, n_extra: int, arch: dict | None = None, n_outputs: int = 1) -> DMPNNModel:
        p = self._p()
        arch = arch or self._arch()
        return DMPNNModel(int(p["hidden_size"]), int(p["depth"]), float(p["dropout"]),
                          int(p["ffn_hidden_size"]), int(p["ffn_layers"]), arch["aggregation"], n_extra,
                          arch["aggregation_norm"], n_outputs, bool(arch.get("standardize", False)))

    def _trainer(self):
        p = self._p()
        if p["schedule"] not in ("noam", "linear"):
            raise ValueError(f"dmpnn schedule must be 'noam' or 'linear', not {p['schedule']!r}")
        epochs = int(p["epochs"])
        patience = epochs + 1 if p["patience"] is None else int(p["patience"])
        # a pretrained encoder learns at encoder_lr_mult x lr, the FFN head at lr
        mult = float(p["encoder_lr_mult"]) if self._pretrained() else 1.0
        if mult <= 0:
            raise ValueError(f"dmpnn encoder_lr_mult must be > 0, got {mult}")
        cfg = TrainConfig(lr=float(p["lr"]) * mult, head_lr_mult=1.0 / mult, weight_decay=float(p["weight_decay"]),
                          epochs=epochs, batch_size=int(p["batch_size"]), patience=patience,
                          grad_clip=float(p["grad_clip"] or 0.0), seed=self.seed, n_threads=self.n_threads,
                          reshuffle=bool(p["reshuffle"]))
        loss = masked_multitask_loss(self.target_tasks) if self.task == JOINT else None
        return DMPNNTrainer(cfg, self.task, _forward, collate, head_prefixes=("ffn.",) if mult != 1.0 else (),
                             schedule=str(p["schedule"]), loss=loss,
                             warmup_epochs=float(p["warmup_epochs"]), final_lr_ratio=float(p["final_lr_ratio"]))

    def _items(self, smiles, graphs, rows) -> list:
        """Items for the graphs at positions ``rows`` (descriptors only if the variant wants them)."""
        if self.desc_scaler_ is None:
            return [(graphs[i], None) for i in rows]
        D = apply_descriptor_scaler(_rdkit_descriptors([smiles[i] for i in rows]), self.desc_scaler_)
        return [(graphs[i], D[j]) for j, i in enumerate(rows)]

    # -- fit / predict ----------------------------------------------------------------------
    def fit(self, X, y, X_valid=None, y_valid=None):
        p = self._p()
        smiles = np.asarray(X, dtype=object)
        y = np.asarray(y, dtype=float)
        graphs = smiles_to_graphs(smiles)
        if self.task == "multiclass":
            self._classes(y)
        labelled = np.isfinite(y).any(axis=1) if y.ndim == 2 else np.isfinite(y)  # joint: any target labelled
        ok = np.array([g is not None for g in graphs]) & labelled
        if ok.sum() < 2:
            raise ValueError("dmpnn needs at least 2 valid molecules with finite targets")
        rows = np.flatnonzero(ok)
        v_smiles = v_graphs = None
        if X_valid is not None and y_valid is not None and len(X_valid):
            v_smiles = np.asarray(X_valid, dtype=object)
            v_y = np.asarray(y_valid, dtype=float)
            v_graphs = smiles_to_graphs(v_smiles)
            v_lab = np.isfinite(v_y).any(axis=1) if v_y.ndim == 2 else np.isfinite(v_y)
            v_rows = np.flatnonzero(np.array([g is not None for g in v_graphs]) & v_lab)
            if len(v_rows) == 0:
                v_smiles = None
        elif p["valid_frac"] and len(rows) >= self.min_valid_split:
            from uniqsar.data.split import make_folds

            n_folds = max(2, int(round(1.0 / float(p["valid_frac"]))))
            folds = make_folds(list(smiles[rows]), n_folds, self.seed, "scaffold",
                               y[rows] if self.task in ("binary", "multiclass") else None)
            inner = folds == 0
            v_smiles, v_graphs, v_y, v_rows = smiles, graphs, y, rows[inner]
            rows = rows[~inner]

        # targets
        stats = target_stats(self.task, y[rows], self.n_classes, self.target_tasks)
        self.y_mean_, self.y_std_, self.n_outputs_ = stats["y_mean"], stats["y_std"], stats["n_outputs"]
        self.fallback_ = stats["fallback"]
        norm = lambda v: scale_targets(v, self.y_mean_, self.y_std_)  # noqa: E731

        # descriptors (training statistics only)
        self.desc_scaler_ = None
        if p["rdkit_features"]:
            self.desc_scaler_ = fit_descriptor_scaler(_rdkit_descriptors(smiles[rows]))
        n_extra = len(self.desc_scaler_["mean"]) if self.desc_scaler_ else 0

        items = self._items(smiles, graphs, rows)
        # Batches: no padding here, so grouping molecules by size buys no speed. Default (as
        # chemprop): new random batches every epoch (equal "sizes" + reshuffle). size_buckets=True
        # groups molecules of similar size (reshuffle: ties broken at random each epoch);
        # reshuffle=False keeps the same batches every epoch (only their order is shuffled).
        if p["size_buckets"]:
            sizes = [graphs[i].n_atoms for i in rows]
        elif p["reshuffle"]:
            sizes = np.zeros(len(rows), dtype=np.int64)
        else:
            sizes = np.random.default_rng(self.seed).permutation(len(rows))
        valid = None
        if v_smiles is not None:
            valid = (self._items(v_smiles, v_graphs, v_rows), norm(v_y[v_rows]),
                     [v_graphs[i].n_atoms for i in v_rows])

        torch.manual_seed(self.seed)  # weight init
        self.arch_ = self._arch()
        self.model_ = self._build(n_extra, self.arch_, self.n_outputs_)
        self.init_ = None
        if self._pretrained():
            from .pretrained import encoder_state, identity

            state, _ = encoder_state(p["weights"])
            missing, unexpected = self.model_.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith(("ffn.", "mol_")) for k in missing):
                raise ValueError(f"dmpnn: pretrained encoder {p['weights']!r} does not fit: missing {missing}, "
                                 f"unexpected {unexpected}")
            ident = identity(p["weights"])
            self.init_ = {k: ident.get(k) for k in ("name", "sha256", "provenance")}
            if self.arch_.get("standardize"):  # training molecules only (the inner validation part excluded)
                self.model_.set_standardization(collate(items[i:i + 256]) for i in range(0, len(items), 256))
        trainer = self._trainer()
        trainer.fit(self.model_, items, norm(y[rows]), sizes, valid=valid)
        self.model_.eval()
        self.history_ = trainer.history
        self.best_epoch_ = getattr(trainer, "best_epoch", None)  # None: no validation part
        self.n_extra_ = n_extra
        return self

    def predict_raw(self, X) -> np.ndarray:
        """Network outputs (de-standardized value / logit); NaN for invalid SMILES."""
        smiles = np.asarray(X, dtype=object)
        graphs = smiles_to_graphs(smiles)
        rows = np.flatnonzero([g is not None for g in graphs])
        items = self._items(smiles, graphs, rows) if len(rows) else []
        raw = self._trainer().predict_rows(self.model_, len(smiles), rows, items, [graphs[i].n_atoms for i in rows],
                                           self.n_threads)
        return raw * np.asarray(self.y_std_) + np.asarray(self.y_mean_)

    def predict(self, X) -> np.ndarray:
        """Values / probability of class 1 / (n, K) class probabilities / (n, T) joint targets; a SMILES the
        network cannot read gets the training fallback (mean, prevalence, class frequencies), as in every torch
        learner (models saved before the fallback was recorded: NaN)."""
        raw = self.predict_raw(X)
        if self.task == JOINT:  # predict_raw de-standardized already: only the binary columns change
            return to_predictions(JOINT, raw, [0.0] * self.n_outputs_, [1.0] * self.n_outputs_, self.fallback_,
                                  self.target_tasks)
        return to_predictions(self.task, raw, 0.0, 1.0, self.fallback_)

    # -- persistence ------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        torch.save(self.model_.state_dict(), path / "model.pt")
        state = {"graph_version": GRAPH_VERSION, "atom_dim": ATOM_DIM, "bond_dim": BOND_DIM,
                 "y_mean": self.y_mean_, "y_std": self.y_std_, "n_extra": self.n_extra_, "n_outputs": self.n_outputs_,
                 "fallback": self.fallback_,
                 "desc_scaler": self.desc_scaler_, "epochs_run": len(self.history_), "arch": self.arch_,
                 "init": getattr(self, "init_", None),
                 "dims": {k: self._p()[k] for k in ("hidden_size", "depth", "ffn_hidden_size", "ffn_layers")}}
        (path / "dmpnn.json").write_text(json.dumps(state))

    def _load_state(self, path: Path) -> None:
        state = json.loads((path / "dmpnn.json").read_text())
        if (state["graph_version"], state["atom_dim"], state["bond_dim"]) != (GRAPH_VERSION, ATOM_DIM, BOND_DIM):
            raise ValueError(f"{path}: saved with graph features v{state['graph_version']} "
                             f"({state['atom_dim']}/{state['bond_dim']}), this build has v{GRAPH_VERSION} "
                             f"({ATOM_DIM}/{BOND_DIM})")
        self.y_mean_, self.y_std_ = state["y_mean"], state["y_std"]  # lists for joint targets
        self.n_outputs_ = int(state.get("n_outputs", 1))
        nan = [np.nan] * self.n_outputs_ if self.task in ("multiclass", JOINT) else np.nan
        self.fallback_ = state.get("fallback", nan)
        self.n_extra_ = int(state["n_extra"])
        self.desc_scaler_ = state["desc_scaler"]
        self.init_ = state.get("init")
        self.saved_dims_ = state.get("dims")
        self.history_ = [{}] * int(state.get("epochs_run", 0))
        # models saved before "arch" was recorded: mean aggregation unless the params said otherwise
        self.arch_ = state.get("arch") or {"aggregation": str(self.params.get("aggregation", "mean")),
                                           "aggregation_norm": 100.0}
        self.model_ = self._build(self.n_extra_, self.arch_, self.n_outputs_)
        self.model_.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
        self.model_.eval()
