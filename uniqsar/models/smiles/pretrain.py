"""Masked-token pretraining of the SMILES transformer on a SMILES corpus.

    pretrain(recipe, corpus, out)   # = `uniqsar pretrain --recipe pretrain_smiles_small --corpus ... --out ...`

Run folder `out` (the same layout as the Uni-Mol2 pretraining, whose corpus / exclusion / logging code is
reused, not copied):
  corpus.csv, corpus.json        canonical SMILES + train/val split (seeded hash), corpus statistics and exclusions
  ckpt/last.pt                   training state (model, optimizer, scheduler, RNG states as tensors, position);
                                 torch.load(weights_only=True); written atomically every `checkpoint_every` steps
  losses.csv, val_losses.csv     one row per step / per validation (loss, masked-token accuracy); losses.png
  checkpoint.pt, model_card.json the export (pretrained.py layout: format, config, vocab, model state_dict).
                                 Shipping it as the default: copy them to uniqsar/models/smiles/weights/default.pt
                                 and default.json.

Objective (BERT): per molecule int(p·n + U[0,1)) (at least 1) of its n real tokens are selected (p = 0.15);
80 % become <mask>, 10 % a uniformly random non-special token, 10 % stay; cross-entropy on the selected ones.
Augmentation: each time a molecule is drawn it is written as a randomized SMILES with probability
`random_smiles_prob` (RDKit seed drawn from the checkpointed RNG), else canonically. Validation uses canonical
SMILES with fixed masks. Schedule: AdamW (no decay on biases / LayerNorm), linear warmup, polynomial (linear)
decay to end_lr, grad-norm clipping. Each epoch's batch order is a pure function of (seed, epoch) and the
corruption RNG and the torch RNG are checkpointed, so a resumed run continues the same sample stream.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from uniqsar.featurize.smiles_tokens import CLS_ID, MASK_ID, PAD_ID, SEP_ID, SmilesTokenizer, randomized_smiles
from uniqsar.models.pretrain_common import CsvLog, Progress, batch_to, corpus_split, lr_lambda, optimizer_step, \
    resume_run, run_steps, save_training_state, start_run, write_model_card
from uniqsar.models.torch_trainer import resolve_device
from uniqsar.models.unimol2.pretrain_data import epoch_batches

from .model import SmilesMLM, num_params
from .pretrain_recipe import ObjectiveSpec, SmilesPretrainRecipe, load_smiles_recipe, recipe_from_dict  # noqa: F401

COLUMNS = ["step", "loss", "acc", "lr", "mols", "tokens", "elapsed_s"]


# ----------------------------------------------------------------------------------------- samples


def mask_tokens(ids: np.ndarray, rng: np.random.Generator, obj: ObjectiveSpec, n_special: int,
                vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(corrupted ids, selected mask) for one ``<cls> ... <sep>`` sequence (80/10/10 BERT corruption)."""
    ids = np.asarray(ids, np.int64)
    real = np.flatnonzero((ids != CLS_ID) & (ids != SEP_ID) & (ids != PAD_ID))
    sel = np.zeros(len(ids), bool)
    if len(real) == 0:
        return ids.copy(), sel
    k = min(len(real), max(1, int(obj.mask_prob * len(real) + rng.random())))
    pos = rng.choice(real, size=k, replace=False)
    sel[pos] = True
    out = ids.copy()
    u = rng.random(k)
    to_mask = u < obj.mask_token_frac
    to_rand = (u >= obj.mask_token_frac) & (u < obj.mask_token_frac + obj.random_token_frac)
    out[pos[to_mask]] = MASK_ID
    out[pos[to_rand]] = rng.integers(n_special, vocab_size, size=int(to_rand.sum()))
    return out, sel


def sample_ids(smiles: str, tok: SmilesTokenizer, rng: np.random.Generator, p_random: float, max_len: int) -> list[int]:
    """Token ids of the molecule written canonically or (with probability p_random) as a random SMILES."""
    text = smiles
    if p_random > 0 and rng.random() < p_random:
        try:
            text = randomized_smiles(smiles, 1, seed=int(rng.integers(1, 2**31 - 1)))[0]
        except ValueError:
            pass
    return tok.encode(text, max_len=max_len)


def collate_mlm(samples: list[tuple[np.ndarray, np.ndarray, list[int]]]) -> dict:
    """samples: (corrupted ids, selected mask, original ids) -> padded tensors."""
    L = max(len(s[0]) for s in samples)
    tokens = np.full((len(samples), L), PAD_ID, np.int64)
    sel = np.zeros((len(samples), L), bool)
    target = np.full((len(samples), L), PAD_ID, np.int64)
    for b, (x, m, y) in enumerate(samples):
        tokens[b, :len(x)], sel[b, :len(x)], target[b, :len(x)] = x, m, y
    return {"tokens": torch.from_numpy(tokens), "masked": torch.from_numpy(sel), "target": torch.from_numpy(target)}


def mlm_loss(model: SmilesMLM, batch: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(mean cross-entropy over selected tokens, number correct, number selected)."""
    logits = model(batch["tokens"], batch["masked"])
    y = batch["target"][batch["masked"]]
    loss = F.cross_entropy(logits.float(), y)
    return loss, (logits.argmax(-1) == y).sum(), int(y.numel())


# ----------------------------------------------------------------------------------------- training


def pretrain(recipe, corpus, out, *, resume: bool = False, max_steps: int | None = None, n_jobs: int = 1,
             exclude=(), threads: int | None = None, limit: int | None = None, verbose: bool = True,
             device: str = "cpu") -> dict:
    """Pretrain (or resume) into folder `out`; returns the model card. max_steps / limit override the recipe's
    train.max_steps / data.limit; threads: torch threads (n_jobs is accepted for CLI symmetry, unused);
    device: cpu, cuda[:N] or auto."""
    r = recipe if isinstance(recipe, SmilesPretrainRecipe) else load_smiles_recipe(recipe)
    if limit is not None:
        r = replace(r, data=replace(r.data, limit=int(limit)))
    d, o, t, cfg = r.data, r.objective, r.train, r.model
    total = int(max_steps or t.max_steps)
    out, ckpt_path, say = start_run(out, resume, verbose)
    from uniqsar.util import n_cores

    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads or t.threads or n_cores()))
    try:
        return _run(r, d, o, t, cfg, total, corpus, out, ckpt_path, resume, exclude, say, verbose,
                    resolve_device(device))
    finally:
        torch.set_num_threads(old_threads)


def _run(r, d, o, t, cfg, total, corpus, out, ckpt_path, resume, exclude, say, verbose, device) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    # -- data
    smiles, is_val, stats = corpus_split(out, corpus, d, t.seed, exclude, say, verbose)
    tok = SmilesTokenizer()
    lengths = np.array([len(tok.tokenize(s)) + 2 for s in smiles], np.int64)  # canonical, <cls>/<sep> included
    too_long = lengths > cfg.max_len
    train_pos = np.flatnonzero(~is_val & ~too_long)
    val_pos = np.flatnonzero(is_val & ~too_long)
    if len(train_pos) == 0:
        raise ValueError("no training molecules (all held out or longer than max_len)")
    n_unk = sum(tok.n_unknown(smiles[i]) > 0 for i in train_pos[:20000])
    say(f"data: {len(train_pos)} train / {len(val_pos)} val molecules, {int(too_long.sum())} longer than "
        f"{cfg.max_len} tokens skipped, mean {lengths[train_pos].mean():.1f} tokens; "
        f"{n_unk} of the first {min(20000, len(train_pos))} have out-of-vocabulary tokens")

    # -- model, optimizer, schedule
    torch.manual_seed(t.seed)
    model = SmilesMLM(cfg).to(device)  # BERT init in the constructor
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, t.warmup_steps, t.power, t.lr, t.end_lr))
    rng = np.random.default_rng([t.seed, 1])
    prog = Progress("tokens_seen")
    rng = resume_run(ckpt_path, resume, r.to_dict(), {"model": model}, opt, sched, total, prog, say) or rng
    n_params = num_params(model)
    say(f"model: {n_params:,} parameters ({n_params * 4 / 2**20:.1f} MB float32; {cfg.n_layers} layers, "
        f"d={cfg.d_model}, {cfg.n_heads} heads, FFN {cfg.ffn_dim}), {total} steps of {t.batch_size}, "
        f"{torch.get_num_threads()} threads")

    log = CsvLog(out / "losses.csv", COLUMNS, keep_upto=prog.step)
    vlog = CsvLog(out / "val_losses.csv", ["step", "loss", "acc"], keep_upto=prog.step)

    # -- fixed validation batches (canonical SMILES, same masks at every evaluation)
    vrng = np.random.default_rng([t.seed, 2])
    vpos = val_pos[:d.val_max]
    val_batches = []
    for b in epoch_batches(lengths[vpos], t.batch_size, 1 << 62, vrng):
        samples = []
        for i in vpos[b]:
            ids = tok.encode(smiles[i], max_len=cfg.max_len)
            samples.append((*mask_tokens(ids, vrng, o, tok.n_special, tok.vocab_size), ids))
        val_batches.append(collate_mlm(samples))

    def validate() -> dict:
        model.eval()
        loss_sum, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for b in val_batches:
                loss, c, k = mlm_loss(model, batch_to(b, device))
                loss_sum, correct, n = loss_sum + float(loss) * k, correct + int(c), n + k
        model.train()
        return {"loss": loss_sum / max(n, 1), "acc": correct / max(n, 1)}

    def save_state():
        save_training_state(ckpt_path, {"model": model}, opt, sched, rng, prog, total, r.to_dict())

    def batches(epoch: int, start: int):
        plan = epoch_batches(lengths[train_pos], t.batch_size, 1 << 62, np.random.default_rng([t.seed, 3, epoch]))
        for b in plan[start:]:
            samples = []
            for i in train_pos[b]:
                ids = sample_ids(smiles[i], tok, rng, o.random_smiles_prob, cfg.max_len)
                samples.append((*mask_tokens(ids, rng, o, tok.n_special, tok.vocab_size), ids))
            yield collate_mlm(samples)

    def train_step(batch: dict):
        loss, correct, k = mlm_loss(model, batch_to(batch, device))
        lr = optimizer_step(loss, opt, sched, model.parameters(), t.clip_norm)
        n_tok = int((batch["tokens"] != PAD_ID).sum())
        prog.counts["tokens_seen"] += n_tok
        lv, acc = float(loss.detach()), int(correct) / max(k, 1)
        if not math.isfinite(lv):
            raise FloatingPointError(f"non-finite loss at step {prog.step + 1}")
        return {"loss": lv, "acc": acc}, lr, len(batch["tokens"]), {"tokens": n_tok}

    # -- loop
    model.train()
    last = run_steps(prog, total, t, batches=batches, train_step=train_step, validate=validate if val_batches else None,
                     describe=lambda v: f"loss {v['loss']:.4f} acc {v['acc']:.3f}",
                     rate=lambda mols, steps, dt: f"{mols / dt:.1f} mol/s {steps / dt:.2f} steps/s",
                     save_state=save_state, log=log, vlog=vlog, say=say)

    # -- export
    from .pretrained import save_checkpoint

    val_final = validate() if val_batches else {}
    model.eval()
    save_checkpoint(model.cpu(), tok, out / "checkpoint.pt")
    card = {
        "format": "uniqsar-smiles-pretrain/1",
        "kind": "smiles_transformer",
        "recipe": r.to_dict(),
        "config": cfg.to_dict(),
        "num_params": n_params,
        "size_mb_float32": round(n_params * 4 / 2**20, 2),
        "vocab_sha256": tok.sha256,
        "data": {**stats, "n_train": int(len(train_pos)), "n_val": int(len(val_pos)),
                 "n_too_long": int(too_long.sum()), "mean_tokens": float(lengths[train_pos].mean())},
        "tokens_seen": prog.counts["tokens_seen"],
        "install_as_default": "mkdir -p uniqsar/models/smiles/weights && cp checkpoint.pt "
                              "uniqsar/models/smiles/weights/default.pt && cp model_card.json "
                              "uniqsar/models/smiles/weights/default.json",
    }
    return write_model_card(out, card, steps=prog.step, molecules_seen=prog.mols_seen, n_train=len(train_pos),
                            elapsed_s=prog.elapsed(), device=device, train_losses=last, val_losses=val_final, say=say)


__all__ = ["pretrain", "mask_tokens", "collate_mlm", "mlm_loss", "sample_ids"]
