"""Pretrain a Uni-Mol2 model from scratch on a SMILES corpus (objectives of shared/reference/unimol2.md §2).

    pretrain(recipe, corpus, out)   # = `uniqsar pretrain --recipe ... --corpus ... --out ...`

Run folder `out`:
  corpus.csv, corpus.json        canonical SMILES + train/val split, corpus statistics
  conformers/shard_*.npz         3D conformers + 2D layouts + graph features (resumable)
  ckpt/last.pt                   training state (model, optimizer, scheduler, RNG states as tensors, step);
                                 torch.load(weights_only=True); written atomically every `checkpoint_every` steps
  losses.csv, val_losses.csv     one row per step / per validation; losses.png (if matplotlib is installed)
  checkpoint.pt, model_card.json the export: official layout {'model': state_dict} (with lm_head), load_unimol2

Loss = token_loss·MLM + coord_loss·coord-L1 + dist_loss·distance-L1 (+ aux_loss·descriptor-MSE if enabled).
Schedule: AdamW (0.9, 0.99, eps 1e-6, wd 1e-4), linear warmup, polynomial decay (power 1 = linear) to end_lr,
grad-norm clipping. Batches are size-bucketed; each epoch's batch order is a pure function of (seed, epoch),
and the corruption RNG and torch RNG are checkpointed, so a resumed run continues the same sample stream.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from uniqsar.models.pretrain_common import CsvLog, Progress, atomic_save, batch_to, corpus_split, lr_lambda, \
    optimizer_step, resume_run, run_steps, save_training_state, start_run, write_model_card
from uniqsar.models.torch_trainer import resolve_device
from uniqsar.models.weights_identity import file_sha256

from .model import UniMol2
from .pretrain_data import DESCRIPTORS, ConformerStore, DescriptorScaler, collate_pretrain, corpus_descriptors, \
    corrupt, epoch_batches, prepare_conformers, rdkit_descriptor_names
from .pretrain_recipe import (  # noqa: F401  (DataSpec, TrainSpec, recipe_from_dict re-exported)
    DataSpec, ObjectiveSpec, PretrainRecipe, TrainSpec, load_pretrain_recipe, recipe_from_dict,
)

TERMS = ("loss", "mlm", "coord", "dist", "aux")


# ----------------------------------------------------------------------------------------- init


def init_from_weights(model: UniMol2, t: TrainSpec, say) -> dict:
    """Continued pretraining: copy every weight (backbone and pretraining heads) from `t.init_weights` into
    `model`. The checkpoint's architecture (dropout rates aside) must equal the recipe's; its file hash is
    checked against `t.init_sha256` if given. Returns {"weights", "path", "sha256", "provenance"} for the model card."""
    from .pretrained import identity, resolve_spec
    from .weights import load_unimol2

    spec = resolve_spec(t.init_weights)
    if spec["kind"] != "file":
        raise ValueError(f"train.init_weights = {t.init_weights!r} resolves to a random initialisation, "
                         "not to a checkpoint file")
    sha = file_sha256(spec["path"])
    if t.init_sha256 and sha != t.init_sha256:
        raise ValueError(f"train.init_weights {spec['path']}: sha256 {sha} does not match the recipe's "
                         f"init_sha256 {t.init_sha256}")
    src, _ = load_unimol2(spec["path"], lm_head=True)
    want, got = model.cfg.to_dict(), src.cfg.to_dict()
    diff = {k: (got.get(k), v) for k, v in want.items()
            if got.get(k) != v and k != "num_classes" and "dropout" not in k}  # dropouts may change
    if diff:
        raise ValueError(f"train.init_weights {spec['path']}: architecture differs from the recipe's "
                         f"(checkpoint, recipe): {diff}")
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    if unexpected or [k for k in missing if not k.startswith("movement_pred_head.")]:
        raise ValueError(f"train.init_weights {spec['path']}: missing {missing}, unexpected {unexpected}")
    say(f"init: weights from {spec['path']} (sha256 {sha[:12]}...)" +
        (f"; fresh: {sorted({k.split('.')[0] for k in missing})}" if missing else ""))
    # the start's provenance: the continued run's card (provenance.card_provenance) is clean only if it is
    prov = identity(t.init_weights)["provenance"]
    return {"weights": t.init_weights, "path": str(spec["path"]), "sha256": sha, "provenance": prov}


# ----------------------------------------------------------------------------------------- losses


def pretrain_losses(model: UniMol2, batch: dict, obj: ObjectiveSpec, aux_head=None, mode="correct") -> dict:
    """Per-term losses (unweighted) and the weighted total under "loss"."""
    token_mask = batch["token_mask"]
    out = model(batch, mode=mode, masked_tokens=token_mask)
    am = batch["atom_mask"].float()  # (B, N)
    if token_mask.any():
        mlm = F.cross_entropy(out["mlm_logits"].float(), batch["target_tokens"][token_mask])
    else:
        mlm = out["coords"].sum() * 0.0
    target = batch["target_coord"]  # (B, N, 3) clean, centred
    coord = (((out["coords"] - target).abs().sum(-1) * am).sum(1) / am.sum(1)).mean()

    def pdist(x):  # (B, N, N); sqrt clamped so that the zero diagonal has a finite gradient
        return ((x.unsqueeze(1) - x.unsqueeze(2)) ** 2).sum(-1).clamp_min(1e-10).sqrt()

    pm = am.unsqueeze(1) * am.unsqueeze(2)  # (B, N, N) real pairs
    dist = (((pdist(out["coords"]) - pdist(target)).abs() * pm).sum((1, 2)) / pm.sum((1, 2))).mean()
    total = obj.token_loss * mlm + obj.coord_loss * coord + obj.dist_loss * dist
    res = {"mlm": mlm, "coord": coord, "dist": dist}
    if aux_head is not None and "desc_z" in batch:
        aux = F.mse_loss(aux_head(out["cls"]), batch["desc_z"])
        total = total + obj.aux_loss * aux
        res["aux"] = aux
    res["loss"] = total
    return res


# ----------------------------------------------------------------------------------------- training


def pretrain(recipe, corpus, out, *, resume: bool = False, max_steps: int | None = None, n_jobs: int = 1,
             exclude=(), threads: int | None = None, limit: int | None = None, verbose: bool = True,
             device: str = "cpu") -> dict:
    """Pretrain (or resume) into folder `out`. Returns the model card dict. max_steps / limit override the
    recipe's train.max_steps / data.limit; n_jobs is for conformer generation, threads for torch;
    device: cpu, cuda[:N] or auto (exact resume is guaranteed on the CPU; CUDA kernels may be non-deterministic)."""
    r = recipe if isinstance(recipe, PretrainRecipe) else load_pretrain_recipe(recipe)
    if limit is not None:
        r = replace(r, data=replace(r.data, limit=int(limit)))
    d, o, t = r.data, r.objective, r.train
    total = int(max_steps or t.max_steps)
    out, ckpt_path, say = start_run(out, resume, verbose)
    from uniqsar.util import n_cores

    torch.set_num_threads(int(threads or t.threads or n_cores()))
    device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)

    # -- data
    smiles, is_val, stats = corpus_split(out, corpus, d, t.seed, exclude, say, verbose)
    shards = prepare_conformers(smiles, out / "conformers", shard_size=d.shard_size, seed=d.conformer_seed,
                                max_atoms=r.model.max_atoms, n_jobs=n_jobs, verbose=verbose)
    store = ConformerStore(shards)
    val_pos = np.array([k for k, row in enumerate(store.index) if is_val[row]], np.int64)
    train_pos = np.array([k for k, row in enumerate(store.index) if not is_val[row]], np.int64)
    if len(train_pos) == 0:
        raise ValueError("no training molecules with a conformer")
    if o.aux_descriptors and o.aux_set == "rdkit":
        desc_names = rdkit_descriptor_names()
        desc = corpus_descriptors(smiles, out / "descriptors_rdkit.npz", n_jobs=n_jobs, verbose=verbose)
        desc = desc[np.asarray(store.index, np.int64)]  # corpus rows -> store positions
    else:
        desc_names = list(DESCRIPTORS)
        desc = store.arrays["desc"].astype(np.float64)
    norm = DescriptorScaler.fit(desc[train_pos])
    store.arrays["desc"] = norm.transform(desc)
    sizes = store.n_atoms[train_pos]
    say(f"data: {len(train_pos)} train / {len(val_pos)} val molecules with conformers, {len(store.failed)} failed, "
        f"mean {sizes.mean():.1f} heavy atoms")

    # -- model, optimizer, schedule
    torch.manual_seed(t.seed)
    model = UniMol2(r.model)  # init_bert_params in the constructor
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 0.02)  # a plain Parameter: not covered by init_bert_params
    init = init_from_weights(model, t, say) if t.init_weights else None
    aux_head = torch.nn.Linear(r.model.embed_dim, store.arrays["desc"].shape[1]) if o.aux_descriptors else None
    model.to(device)
    if aux_head is not None:
        aux_head.to(device)
    params = list(model.parameters()) + (list(aux_head.parameters()) if aux_head else [])
    opt = torch.optim.AdamW(params, lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, t.warmup_steps, t.power, t.lr, t.end_lr))
    rng = np.random.default_rng([t.seed, 1])
    prog = Progress("atoms_seen")
    modules = {"model": model, **({"aux_head": aux_head} if aux_head is not None else {})}
    rng = resume_run(ckpt_path, resume, r.to_dict(), modules, opt, sched, total, prog, say) or rng
    n_params = model.num_params()
    say(f"model: {n_params:,} parameters ({n_params * 4 / 2**20:.1f} MB float32), {total} steps, "
        f"{torch.get_num_threads()} threads")

    cols = ["step", *[x for x in TERMS if x != "aux" or aux_head is not None], "lr", "mols", "elapsed_s"]
    log = CsvLog(out / "losses.csv", cols, keep_upto=prog.step)
    vlog = CsvLog(out / "val_losses.csv", ["step", *cols[1:-3]], keep_upto=prog.step)

    # -- fixed validation batches (same corruptions at every evaluation)
    vrng = np.random.default_rng([t.seed, 2])
    vpos = val_pos[:d.val_max]
    val_batches = [collate_pretrain([corrupt(store.get(int(vpos[i])), vrng, o) for i in b])
                   for b in epoch_batches(store.n_atoms[vpos], t.batch_size, t.max_pairs, vrng)] if len(vpos) else []

    def with_desc(batch):
        if aux_head is not None:
            batch["desc_z"] = batch["desc"]
        return batch

    def validate() -> dict:
        model.eval()
        sums, n = {}, 0
        with torch.no_grad():
            for b in val_batches:
                res = pretrain_losses(model, batch_to(with_desc(b), device), o, aux_head, t.mode)
                k = len(b["src_tokens"])
                for key, v in res.items():
                    sums[key] = sums.get(key, 0.0) + float(v) * k
                n += k
        model.train()
        return {k: v / n for k, v in sums.items()}

    def save_state():
        save_training_state(ckpt_path, modules, opt, sched, rng, prog, total, r.to_dict())

    def batches(epoch: int, start: int):
        plan = epoch_batches(sizes, t.batch_size, t.max_pairs, np.random.default_rng([t.seed, 3, epoch]))
        for b in plan[start:]:
            yield with_desc(collate_pretrain([corrupt(store.get(int(k)), rng, o) for k in train_pos[b]]))

    def train_step(batch: dict):
        res = pretrain_losses(model, batch_to(batch, device), o, aux_head, t.mode)
        lr = optimizer_step(res["loss"], opt, sched, params, t.clip_norm)
        prog.counts["atoms_seen"] += int(batch["atom_mask"].sum())
        vals = {k: v.item() for k, v in res.items()}
        if not math.isfinite(vals["loss"]):
            raise FloatingPointError(f"non-finite loss at step {prog.step + 1}: {vals}")
        return vals, lr, len(batch["src_tokens"]), {}

    def describe(v: dict) -> str:
        return (f"loss {v['loss']:.4f} (mlm {v['mlm']:.3f} coord {v['coord']:.3f} dist {v['dist']:.3f}" +
                (f" aux {v['aux']:.3f}" if "aux" in v else "") + ")")

    # -- loop
    model.train()
    last = run_steps(prog, total, t, batches=batches, train_step=train_step, validate=validate if val_batches else None,
                     describe=describe, save_state=save_state, log=log, vlog=vlog, say=say)

    # -- export
    val_final = validate() if val_batches else {}
    model.eval()
    export = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_save(export, out / "checkpoint.pt")
    card = {
        "format": "uniqsar-unimol2-pretrain/1",
        "recipe": r.to_dict(),
        "config": r.model.to_dict(),
        "num_params": n_params,
        "data": {**stats, "n_train_with_conformer": int(len(train_pos)), "n_val_with_conformer": int(len(val_pos)),
                 "conformer_failures": int(len(store.failed)), "mean_heavy_atoms": float(sizes.mean()),
                 "descriptors": desc_names if aux_head is not None else [],
                 "descriptor_scaler": norm.to_dict() if aux_head is not None else {}},
        "init_weights": init,
        "tokens_seen": prog.counts["atoms_seen"],
    }
    return write_model_card(out, card, steps=prog.step, molecules_seen=prog.mols_seen, n_train=len(train_pos),
                            elapsed_s=prog.elapsed(), device=device, train_losses=last, val_losses=val_final, say=say)


__all__ = ["pretrain", "pretrain_losses", "load_pretrain_recipe", "recipe_from_dict", "PretrainRecipe",
           "DataSpec", "ObjectiveSpec", "TrainSpec"]
