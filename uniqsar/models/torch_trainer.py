"""One training loop for every torch learner (Uni-Mol2 head, D-MPNN, SMILES encoder).

The learner supplies the model, a ``collate(items) -> dict of tensors`` and the item list; this
module owns batching (size-bucketed, seeded shuffles), AdamW with linear warmup then linear
decay, gradient clipping, early stopping on a validation part (best epoch's weights restored),
a time limit (:func:`uniqsar.util.time_limit`: no epoch is started that would end after it),
seeds, CPU thread budgets and the optional CUDA device. Losses: MSE on standardized targets for
regression, BCE-with-logits for binary, cross-entropy on K logits for multiclass (``y`` = class index), or
the learner's own ``loss`` (joint multitask: :func:`masked_multitask_loss`). Outputs are ``(B,)`` for one
value per molecule or ``(B, D)`` for several (class logits, joint targets).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from uniqsar.util import current_deadline, log


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-4
    head_lr_mult: float = 10.0  # parameters named in ``head_prefixes`` learn faster
    weight_decay: float = 1e-2
    epochs: int = 30
    batch_size: int = 32
    warmup_frac: float = 0.06
    patience: int = 8
    grad_clip: float = 1.0
    seed: int = 0
    n_threads: int = 1
    device: str = "cpu"
    verbose: bool = False
    #: new batch composition every epoch: molecules of equal size are ordered at random before
    #: bucketing (equal sizes everywhere -> fully random batches); False: the same batches
    reshuffle: bool = False

    @classmethod
    def from_learner(cls, learner, **overrides) -> "TrainConfig":
        """The config of a torch learner: every field it has a parameter for (``learner._param``), plus its
        seed and thread budget; ``overrides`` win."""
        from dataclasses import fields

        values = {"seed": learner.seed, "n_threads": learner.n_threads}
        for f in fields(cls):
            if f.name in learner.defaults or f.name in learner.fixed_defaults:
                values[f.name] = type(getattr(cls, f.name))(learner._param(f.name))
        return cls(**{**values, **overrides})


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' requested but CUDA is not available; use device='cpu'")
    return device


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def batches(sizes: Sequence[int], batch_size: int, rng: np.random.Generator | None,
            reshuffle: bool = False) -> list[np.ndarray]:
    """Size-bucketed batches (similar sizes together: less padding). Shuffled when ``rng`` given;
    with ``reshuffle`` (and ``rng``) ties in size are broken at random, so batches change per call."""
    sizes = np.asarray(sizes)
    if reshuffle and rng is not None:
        order = np.lexsort((rng.random(len(sizes)), sizes))
    else:
        order = np.argsort(sizes, kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(chunks)
    return chunks


def target_stats(task: str, y: np.ndarray, n_classes: int | None = None,
                 target_tasks: Sequence[str] | None = None) -> dict:
    """How a torch learner scales its training targets and what it predicts for a molecule it cannot read:
    ``{"y_mean", "y_std", "fallback", "n_outputs"}``. Regression: mean / std (the fallback: the mean); binary:
    0 / 1 (the prevalence); multiclass: 0 / 1 and K outputs (the class frequencies); ``multitask`` (joint
    targets, ``y`` (n, T) with NaN where missing): per column, as for its ``target_tasks`` entry."""
    y = np.asarray(y, float)
    if task == "multitask":
        cols = [target_stats(t, y[:, j][np.isfinite(y[:, j])]) for j, t in enumerate(target_tasks)]
        return {"y_mean": [c["y_mean"] for c in cols], "y_std": [c["y_std"] for c in cols],
                "fallback": [c["fallback"] for c in cols], "n_outputs": len(cols)}
    if task == "multiclass":
        return {"y_mean": 0.0, "y_std": 1.0, "fallback": class_prior(y, n_classes), "n_outputs": int(n_classes)}
    if not len(y):
        return {"y_mean": 0.0, "y_std": 1.0, "fallback": 0.0 if task == "regression" else 0.5, "n_outputs": 1}
    if task == "binary":
        return {"y_mean": 0.0, "y_std": 1.0, "fallback": float(np.mean(y)), "n_outputs": 1}
    mean = float(np.mean(y))
    return {"y_mean": mean, "y_std": float(np.std(y)) or 1.0, "fallback": mean, "n_outputs": 1}


def scale_targets(y: np.ndarray, y_mean, y_std) -> np.ndarray:
    """Standardized training targets (per column for joint targets; class indices and 0/1 unchanged)."""
    return (np.asarray(y, float) - np.asarray(y_mean, float)) / np.asarray(y_std, float)


def to_predictions(task: str, raw: np.ndarray, y_mean, y_std, fallback,
                   target_tasks: Sequence[str] | None = None) -> np.ndarray:
    """Raw outputs -> probability of class 1 (binary: sigmoid of the logit), class probabilities (multiclass:
    softmax of the ``(n, K)`` logits), the de-standardized value, or (multitask) each column as its
    ``target_tasks`` entry says; rows without an output (NaN) get ``fallback`` (a vector: multiclass, multitask)."""
    if task == "multitask":
        cols = [to_predictions(t, raw[:, j].copy(), y_mean[j], y_std[j], fallback[j])
                for j, t in enumerate(target_tasks)]
        return np.column_stack(cols) if cols else np.zeros((len(raw), 0))
    if task == "multiclass":
        missing = np.isnan(raw).any(axis=1)
        z = np.nan_to_num(raw - np.nanmax(np.where(missing[:, None], 0.0, raw), axis=1, keepdims=True), nan=0.0)
        pred = np.exp(z)
        pred /= pred.sum(axis=1, keepdims=True)
        pred[missing] = np.asarray(fallback, float)
        return pred
    if task == "binary":
        with np.errstate(over="ignore"):
            pred = 1.0 / (1.0 + np.exp(-raw))
    else:
        pred = raw * y_std + y_mean
    pred[np.isnan(pred)] = fallback
    return pred


def class_prior(y: np.ndarray, n_classes: int) -> list[float]:
    """Training class frequencies (the prediction for a molecule the network cannot read)."""
    counts = np.bincount(np.asarray(y, float).astype(int), minlength=n_classes).astype(float)
    return (counts / max(1.0, counts.sum())).tolist()


def masked_multitask_loss(kinds: Sequence[str]) -> Callable:
    """Loss for ``(B, T)`` outputs of T joint targets: MSE (``regression``, standardized) or BCE-with-logits
    (``binary``) per column, over the cells with a label only (NaN = missing), averaged over the cells."""
    binary = torch.tensor([k == "binary" for k in kinds])

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mask = ~torch.isnan(y)
        y0 = torch.where(mask, y, torch.zeros_like(y))
        b = binary.to(out.device).expand_as(out)
        cell = torch.where(b, nn.functional.binary_cross_entropy_with_logits(out, y0, reduction="none"),
                           (out - y0) ** 2)
        return (cell * mask).sum() / mask.sum().clamp(min=1)

    return loss


def _to(batch: dict, device: str) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


class Trainer:
    """``forward(model, batch) -> (B,)`` raw outputs (regression value / binary logit).

    ``collate`` builds training batches (it may augment, e.g. pick a random conformer);
    ``eval_collate`` (default: ``collate``) builds validation / prediction batches deterministically."""

    def __init__(self, cfg: TrainConfig, task: str, forward: Callable, collate: Callable,
                 head_prefixes: tuple[str, ...] = (), eval_collate: Callable | None = None,
                 loss: Callable | None = None):
        self.cfg = cfg
        self.loss = loss
        self.task = task
        self.forward = forward
        self.collate = collate
        self.eval_collate = eval_collate or collate
        self.head_prefixes = head_prefixes
        self.device = resolve_device(cfg.device)
        self.history: list[dict] = []
        self.best_epoch: int | None = None

    def _optimizer(self, model: nn.Module, steps: int):
        head, body = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (head if name.startswith(self.head_prefixes) and self.head_prefixes else body).append(p)
        groups = [g for g in ({"params": body, "lr": self.cfg.lr},
                              {"params": head, "lr": self.cfg.lr * self.cfg.head_lr_mult}) if g["params"]]
        opt = torch.optim.AdamW(groups, weight_decay=self.cfg.weight_decay)
        warmup = max(1, int(self.cfg.warmup_frac * steps))

        def schedule(step):
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (steps - step) / max(1, steps - warmup))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss is not None:
            return self.loss(out, y)
        if self.task == "multiclass":
            return nn.functional.cross_entropy(out, y.long())
        if self.task == "binary":
            return nn.functional.binary_cross_entropy_with_logits(out, y)
        return nn.functional.mse_loss(out, y)

    def predict_raw(self, model: nn.Module, items: list, sizes: Sequence[int],
                    batch_size: int | None = None) -> np.ndarray:
        model.eval()
        out = None
        with torch.inference_mode():
            for idx in batches(sizes, batch_size or self.cfg.batch_size * 2, None):
                batch = _to(self.eval_collate([items[i] for i in idx]), self.device)
                res = self.forward(model, batch).float().cpu().numpy()
                if out is None:  # (n,) or (n, D), as the model's outputs
                    out = np.empty((len(items),) + res.shape[1:])
                out[idx] = res
        return out if out is not None else np.empty(0)

    def predict_rows(self, model: nn.Module, n_rows: int, rows: Sequence[int], items: list, sizes: Sequence[int],
                     n_threads: int) -> np.ndarray:
        """Raw outputs of ``items`` averaged per input row (``items[k]`` belongs to row ``rows[k]``; several
        items per row = test-time augmentation); NaN for rows without an item. Runs on ``self.device`` with
        ``n_threads`` torch threads and leaves ``model`` on the CPU."""
        count = np.zeros(n_rows)
        n_out = int(getattr(model, "n_outputs", 1))  # (n,) for one output per molecule, else (n, D)
        raw = np.zeros((n_rows,) if n_out == 1 else (n_rows, n_out))
        if len(items):
            old = torch.get_num_threads()
            torch.set_num_threads(max(1, n_threads))
            try:
                out = self.predict_raw(model.to(self.device), items, sizes)
            finally:
                torch.set_num_threads(old)
                model.cpu()
            raw = np.zeros((n_rows,) + out.shape[1:])
            np.add.at(raw, np.asarray(rows), out)
            np.add.at(count, np.asarray(rows), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = raw / (count if raw.ndim == 1 else count[:, None])
        raw[count == 0] = np.nan
        return raw

    def fit(self, model: nn.Module, items: list, y: np.ndarray, sizes: Sequence[int],
            valid: tuple[list, np.ndarray, Sequence[int]] | None = None,
            valid_score: Callable[[np.ndarray, np.ndarray], float] | None = None) -> nn.Module:
        """Train; with ``valid`` keep the epoch with the best validation loss (or ``valid_score``,
        lower is better) and stop after ``patience`` epochs without improvement. Under a
        :func:`~uniqsar.util.time_limit`, stop (after at least one epoch) when the last epoch's
        duration says the next one would end after the deadline."""
        cfg = self.cfg
        old_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, cfg.n_threads))
        try:
            seed_everything(cfg.seed)
            rng = np.random.default_rng(cfg.seed)
            model.to(self.device)
            n_batches = math.ceil(len(items) / cfg.batch_size)
            opt, sched = self._optimizer(model, max(1, n_batches * cfg.epochs))
            y_t = torch.as_tensor(np.asarray(y, np.float32))  # (N,) or (N, T) with NaN where missing
            best, best_state, bad = math.inf, None, 0
            deadline, epoch_seconds = current_deadline(), 0.0
            for epoch in range(cfg.epochs):
                if epoch and deadline is not None and time.time() + epoch_seconds > deadline:
                    log(f"  time limit: training stopped after {epoch} of {cfg.epochs} epochs")
                    break
                model.train()
                t0, total = time.time(), 0.0
                for idx in batches(sizes, cfg.batch_size, rng, cfg.reshuffle):
                    batch = _to(self.collate([items[i] for i in idx]), self.device)
                    loss = self._loss(self.forward(model, batch).float(), y_t[idx].to(self.device))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    opt.step()
                    sched.step()
                    total += float(loss.detach()) * len(idx)
                rec = {"epoch": epoch + 1, "train_loss": total / len(items), "seconds": time.time() - t0}
                if valid is not None:
                    v_items, v_y, v_sizes = valid
                    raw = self.predict_raw(model, v_items, v_sizes)
                    if valid_score is not None:
                        v = valid_score(np.asarray(v_y), raw)
                    else:
                        v = float(self._loss(torch.as_tensor(raw, dtype=torch.float32),
                                             torch.as_tensor(np.asarray(v_y, np.float32))))
                    rec["valid"] = v
                    if v < best - 1e-6:
                        best, bad = v, 0
                        self.best_epoch = epoch + 1
                        best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
                    else:
                        bad += 1
                self.history.append(rec)
                epoch_seconds = time.time() - t0
                if cfg.verbose:
                    print(f"  epoch {epoch + 1}/{cfg.epochs} " + " ".join(f"{k} {v:.4g}" for k, v in rec.items()
                                                                       if k != "epoch"), file=sys.stderr)
                if valid is not None and bad >= cfg.patience:
                    break
            if best_state is not None:
                model.load_state_dict(best_state)
            return model
        finally:
            torch.set_num_threads(old_threads)
