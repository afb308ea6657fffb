"""Descriptor-supervised pretraining of the D-MPNN encoder (CheMeleon / KPGT style) on a SMILES corpus.

    pretrain(recipe, corpus, out)   # = `uniqsar pretrain --recipe pretrain_dmpnn_desc --corpus ... --out ...`

The encoder (``DMPNNModel.encode``: message passing + aggregation, the same network the ``dmpnn`` learner uses)
feeds one MLP head that regresses every RDKit 2D descriptor (``Descriptors._descList``) and, optionally, predicts
the bits of a Morgan fingerprint (BCE). Descriptor targets are scaled robustly with training statistics:
signed log1p for heavy-tailed columns (99.9th percentile of |x| >= ``log_above``), clipped to the
[p, 100 - p] percentiles, z-scored; undefined values (NaN) are masked out of the loss.

Run folder `out`:
  corpus.csv, corpus.json      canonical SMILES + train/val split (seeded hash), corpus statistics and exclusions
                               (shared with the Uni-Mol2 / SMILES pretraining: ``pretrain_common.corpus_split``)
  (feature cache)              descriptors (float32) and packed Morgan bits per chunk of the corpus, computed in
                               parallel (``n_jobs`` processes) into ``<cache>/dmpnn_targets/<settings>/<chunk sha>.npz``
                               (``targets_dir``): an interrupted run, a later stage or a run on a prefix of the same
                               corpus recomputes only the chunks it has not seen
  ckpt/last.pt                 training state (encoder + head, optimizer, scheduler, RNG, position), atomic,
                               torch.load(weights_only=True)
  losses.csv, val_losses.csv   per step / per validation (loss, desc MSE, bit BCE); losses.png
  checkpoint.pt, model_card.json   the export (``pretrained.py`` layout: encoder only) and its card with the
                               pretraining provenance (corpus, exclusions, whether TDC ADMET test sets were excluded)

Each epoch's batch order is a pure function of (seed, epoch), and the torch RNG is checkpointed, so a resumed run
continues the same stream. Graphs are built by ``loader_workers`` processes ahead of the training step.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uniqsar.models.pretrain_common import CsvLog, Progress, batch_to, corpus_split, fmt_time, lr_lambda, \
    optimizer_step, resume_run, run_steps, save_training_state, start_run, write_model_card
from uniqsar.models.torch_trainer import resolve_device

from .learner import DMPNNModel
from .pretrain_recipe import DMPNNPretrainRecipe, load_dmpnn_recipe, recipe_from_dict  # noqa: F401 (the kind's API)

COLUMNS = ["step", "loss", "desc", "bits", "lr", "mols", "elapsed_s"]
TARGETS_VERSION = "1"


# ----------------------------------------------------------------------------------------- targets


def _target_chunk(smiles: list[str], morgan_bits: int, radius: int, descriptors: bool):
    """(descriptors float32 (n, n_desc) with NaN where undefined, packed Morgan bits uint8 (n, ceil(bits/8)))."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    from uniqsar.featurize.descriptors import RDKitDescriptors, descriptor_names

    RDLogger.DisableLog("rdApp.*")
    n_desc = len(descriptor_names()) if descriptors else 0
    D = np.full((len(smiles), n_desc), np.nan, np.float32)
    bits = np.zeros((len(smiles), (morgan_bits + 7) // 8), np.uint8)
    feat = RDKitDescriptors()
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=morgan_bits) if morgan_bits else None
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            continue
        if n_desc:
            with np.errstate(all="ignore"):
                D[i] = np.clip(feat.featurize_mol(mol), -3e38, 3e38).astype(np.float32)
        if gen is not None:
            bits[i] = np.packbits(gen.GetFingerprintAsNumPy(mol).astype(bool))
    return D, bits


def _write_chunk(path: Path, smiles: list[str], morgan_bits: int, radius: int, descriptors: bool) -> int:
    D, bits = _target_chunk(smiles, morgan_bits, radius, descriptors)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, desc=D, bits=bits)
    os.replace(tmp, path)
    return len(smiles)


def target_settings(r: DMPNNPretrainRecipe) -> dict:
    """What the cached targets depend on (besides the molecules)."""
    from rdkit import __version__ as rdkit_version

    from uniqsar.featurize.descriptors import descriptor_names

    o = r.objective
    return {"version": TARGETS_VERSION, "rdkit": rdkit_version,
            "descriptors": descriptor_names() if o.descriptors else [], "morgan_bits": o.morgan_bits,
            "morgan_radius": o.morgan_radius}


def targets_dir(r: DMPNNPretrainRecipe, cache_dir=None) -> Path:
    """The content-addressed target cache: ``<feature cache>/dmpnn_targets/<settings hash>/<chunk sha>.npz``.
    A chunk is found by the sha256 of its SMILES, so runs that share molecules in the same chunks (a later stage,
    a prefix of a corpus) reuse each other's targets."""
    import hashlib

    from uniqsar.featurize.cache import default_cache_dir

    settings = target_settings(r)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    d = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "dmpnn_targets" / digest
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "settings.json").exists():
        (d / "settings.json").write_text(json.dumps(settings))
    return d


def chunk_paths(tdir: Path, smiles: list[str], chunk_size: int) -> list[Path]:
    import hashlib

    return [tdir / (hashlib.sha256("\n".join(smiles[i:i + chunk_size]).encode()).hexdigest()[:32] + ".npz")
            for i in range(0, len(smiles), chunk_size)]


def corpus_targets(smiles: list[str], r: DMPNNPretrainRecipe, n_jobs: int, say,
                   cache_dir=None) -> tuple[np.ndarray, np.ndarray, Path]:
    """Descriptors and packed Morgan bits of every corpus molecule, computed per chunk (in parallel) into the
    content-addressed cache ``targets_dir``; an interrupted run recomputes only the missing chunks."""
    o, cs = r.objective, r.data.chunk_size
    tdir = targets_dir(r, cache_dir)
    paths = chunk_paths(tdir, smiles, cs)
    todo = [k for k in range(len(paths)) if not paths[k].exists()]
    if todo:
        say(f"targets: {len(todo)} of {len(paths)} chunks of {cs} molecules to compute with {n_jobs} process(es) "
            f"({len(target_settings(r)['descriptors'])} descriptors, {o.morgan_bits} Morgan bits) into {tdir}")
        t0, done = time.time(), 0
        args = [(paths[k], smiles[k * cs:(k + 1) * cs], o.morgan_bits, o.morgan_radius, o.descriptors) for k in todo]
        if n_jobs <= 1:
            results = (_write_chunk(*a) for a in args)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            pool = ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn"))
            results = (f.result() for f in as_completed([pool.submit(_write_chunk, *a) for a in args]))
        n_todo = sum(len(a[1]) for a in args)
        for n in results:
            done += n
            dt = time.time() - t0
            say(f"targets: {done}/{n_todo} molecules | {done / dt:.0f} mol/s | ETA {fmt_time((n_todo - done) * dt / done)}")
        if n_jobs > 1:
            pool.shutdown()
    else:
        say(f"targets: all {len(paths)} chunks cached in {tdir}")
    D, B = [], []
    for p in paths:
        with np.load(p) as z:
            D.append(z["desc"])
            B.append(z["bits"])
    return np.concatenate(D), np.concatenate(B), tdir


def fit_target_scaler(D: np.ndarray, log_above: float, clip_percentile: float) -> dict:
    """Robust scaling of descriptor targets from training rows (JSON-able; see the module docstring)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        X = D.astype(np.float64)
        log_mask = np.nan_to_num(np.nanpercentile(np.abs(X), 99.9, axis=0), nan=0.0) >= log_above
        X[:, log_mask] = np.sign(X[:, log_mask]) * np.log1p(np.abs(X[:, log_mask]))
        lo = np.nanpercentile(X, clip_percentile, axis=0)
        hi = np.nanpercentile(X, 100.0 - clip_percentile, axis=0)
        C = np.clip(X, lo, hi)
        mean, std = np.nanmean(C, axis=0), np.nanstd(C, axis=0)
    bad = ~np.isfinite(mean)
    lo, hi, mean = (np.where(bad, 0.0, v) for v in (lo, hi, mean))
    std = np.where(~np.isfinite(std) | (std < 1e-8), 1.0, std)
    return {"log_mask": log_mask.tolist(), "lo": lo.tolist(), "hi": hi.tolist(), "mean": mean.tolist(),
            "std": std.tolist(), "constant": (bad | (np.nan_to_num(hi - lo) == 0)).tolist()}


def apply_target_scaler(D: np.ndarray, s: dict) -> np.ndarray:
    """Scaled float32 targets; NaN where the descriptor is undefined or the column is constant (masked)."""
    X = D.astype(np.float64)
    m = np.asarray(s["log_mask"], bool)
    X[:, m] = np.sign(X[:, m]) * np.log1p(np.abs(X[:, m]))
    Z = (np.clip(X, s["lo"], s["hi"]) - np.asarray(s["mean"])) / np.asarray(s["std"])
    Z[:, np.asarray(s["constant"], bool)] = np.nan
    return Z.astype(np.float32)


# ----------------------------------------------------------------------------------------- model + batches


class PretrainNet(nn.Module):
    """The D-MPNN encoder with one MLP head: descriptors (first ``n_desc`` outputs), then Morgan-bit logits."""

    def __init__(self, spec, n_desc: int, n_bits: int):
        super().__init__()
        self.encoder = DMPNNModel(spec.hidden_size, spec.depth, spec.dropout, spec.hidden_size, 1, spec.aggregation,
                                  0, spec.aggregation_norm)
        del self.encoder.ffn  # the learner's FFN is not pretrained
        self.n_desc, self.n_bits = n_desc, n_bits
        self.head = nn.Sequential(nn.Linear(spec.hidden_size, spec.head_hidden), nn.ReLU(),
                                  nn.Linear(spec.head_hidden, n_desc + n_bits))

    def forward(self, b: dict) -> torch.Tensor:
        z = self.encoder.encode_batch(b)  # (M, h)
        return self.head(z)                                                                         # (M, d + bits)


def objective(net: PretrainNet, b: dict, morgan_weight: float) -> tuple[torch.Tensor, float, float]:
    """(total loss, descriptor MSE over defined entries, bit BCE)."""
    out = net(b)
    desc = bits = out.new_zeros(())
    if net.n_desc:
        y = b["desc"]
        ok = torch.isfinite(y)
        desc = ((out[:, :net.n_desc] - torch.nan_to_num(y)) ** 2 * ok).sum() / ok.sum().clamp(min=1)
    if net.n_bits:
        bits = F.binary_cross_entropy_with_logits(out[:, net.n_desc:], b["bits"])
    return desc + morgan_weight * bits, float(desc.detach()), float(bits.detach())


class _Batches(torch.utils.data.Dataset):
    """Batch ``k`` of a plan -> collated graph tensors + targets (built in a loader process)."""

    def __init__(self, smiles, plan, desc, bits, n_bits: int):
        self.smiles, self.plan, self.desc, self.bits, self.n_bits = smiles, plan, desc, bits, n_bits

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int) -> dict:
        from uniqsar.featurize.graph import collate_graphs, smiles_to_graphs

        idx = self.plan[k]
        graphs = smiles_to_graphs([self.smiles[i] for i in idx])
        keep = [j for j, g in enumerate(graphs) if g is not None]
        idx = idx[keep]
        b = {key: torch.from_numpy(v) for key, v in collate_graphs([graphs[j] for j in keep]).items()}
        b["desc"] = torch.from_numpy(self.desc[idx])
        if self.n_bits:
            b["bits"] = torch.from_numpy(np.unpackbits(self.bits[idx], axis=1)[:, :self.n_bits].astype(np.float32))
        return b


def _worker_init(_):
    torch.set_num_threads(1)


def _loader(ds: _Batches, start: int, workers: int):
    if workers <= 0:
        return (ds[k] for k in range(start, len(ds)))
    return torch.utils.data.DataLoader(ds, batch_size=None, sampler=range(start, len(ds)), num_workers=workers,
                                       prefetch_factor=8, worker_init_fn=_worker_init)


def epoch_plan(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    perm = np.random.default_rng([seed, 3, epoch]).permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


# ----------------------------------------------------------------------------------------- training


def pretrain(recipe, corpus, out, *, resume: bool = False, max_steps: int | None = None, n_jobs: int = 1,
             exclude=(), threads: int | None = None, limit: int | None = None, verbose: bool = True,
             device: str = "cpu") -> dict:
    """Pretrain (or resume) into folder `out`; returns the model card. max_steps / limit override the recipe's
    train.max_steps / data.limit; n_jobs: processes for the descriptor targets; threads: torch threads."""
    r = recipe if isinstance(recipe, DMPNNPretrainRecipe) else load_dmpnn_recipe(recipe)
    if limit is not None:
        r = replace(r, data=replace(r.data, limit=int(limit)))
    total = int(max_steps or r.train.max_steps)
    out, ckpt_path, say = start_run(out, resume, verbose)
    from uniqsar.util import n_cores

    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads or r.train.threads or n_cores()))
    try:
        return _run(r, total, corpus, out, ckpt_path, resume, exclude, say, verbose, max(1, int(n_jobs)),
                    resolve_device(device))
    finally:
        torch.set_num_threads(old_threads)


def _run(r, total, corpus, out, ckpt_path, resume, exclude, say, verbose, n_jobs, device) -> dict:
    d, o, t, spec = r.data, r.objective, r.train, r.model
    out.mkdir(parents=True, exist_ok=True)
    smiles, is_val, stats = corpus_split(out, corpus, d, t.seed, exclude, say, verbose)
    D, bits, tdir = corpus_targets(smiles, r, n_jobs, say)
    train_pos, val_pos = np.flatnonzero(~is_val), np.flatnonzero(is_val)[:d.val_max]
    if len(train_pos) == 0:
        raise ValueError("no training molecules (all held out)")
    scaler = fit_target_scaler(D[train_pos[np.random.default_rng(t.seed).permutation(len(train_pos))[:200_000]]],
                               o.log_above, o.clip_percentile) if o.descriptors else None
    Z = apply_target_scaler(D, scaler) if scaler else np.zeros((len(smiles), 0), np.float32)
    del D
    n_desc, n_bits = Z.shape[1], o.morgan_bits
    say(f"data: {len(train_pos)} train / {len(val_pos)} val molecules; targets: {n_desc} descriptors "
        f"({sum(scaler['log_mask']) if scaler else 0} log-scaled, {sum(scaler['constant']) if scaler else 0} "
        f"constant and masked) + {n_bits} Morgan bits")

    torch.manual_seed(t.seed)
    net = PretrainNet(spec, n_desc, n_bits).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, t.warmup_steps, t.power, t.lr, t.end_lr))
    prog = Progress()
    resume_run(ckpt_path, resume, r.to_dict(), {"net": net}, opt, sched, total, prog, say)
    n_params = sum(p.numel() for p in net.encoder.parameters())
    say(f"model: encoder {n_params:,} parameters (hidden {spec.hidden_size}, depth {spec.depth}, "
        f"{spec.aggregation}), head {sum(p.numel() for p in net.head.parameters()):,}; {total} steps of "
        f"{t.batch_size} (~{total * t.batch_size / len(train_pos):.2f} epochs), {torch.get_num_threads()} threads, "
        f"{t.loader_workers} loader process(es)")

    log = CsvLog(out / "losses.csv", COLUMNS, keep_upto=prog.step)
    vlog = CsvLog(out / "val_losses.csv", ["step", "loss", "desc", "bits"], keep_upto=prog.step)
    val_batches = list(_loader(_Batches(smiles, [val_pos[i:i + 256] for i in range(0, len(val_pos), 256)], Z, bits,
                                        n_bits), 0, 0))

    def validate() -> dict:
        net.eval()
        sums, n = np.zeros(3), 0
        with torch.no_grad():
            for b in val_batches:
                k = int(b["n_atoms"].shape[0])
                loss, dl, bl = objective(net, batch_to(b, device), o.morgan_weight)
                sums, n = sums + k * np.array([float(loss), dl, bl]), n + k
        net.train()
        return dict(zip(("loss", "desc", "bits"), (sums / max(n, 1)).tolist()))

    def save_state():
        save_training_state(ckpt_path, {"net": net}, opt, sched, np.random.default_rng(t.seed), prog, total,
                            r.to_dict())

    def batches(epoch: int, start: int):
        plan = [train_pos[b] for b in epoch_plan(len(train_pos), t.batch_size, t.seed, epoch)]
        return _loader(_Batches(smiles, plan, Z, bits, n_bits), start, t.loader_workers)

    def train_step(b: dict):
        loss, dl, bl = objective(net, batch_to(b, device), o.morgan_weight)
        lr = optimizer_step(loss, opt, sched, net.parameters(), t.clip_norm)
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise FloatingPointError(f"non-finite loss at step {prog.step + 1}")
        return {"loss": lv, "desc": dl, "bits": bl}, lr, int(b["n_atoms"].shape[0]), {}

    net.train()
    last = run_steps(prog, total, t, batches=batches, train_step=train_step, validate=validate if val_batches else None,
                     describe=lambda v: f"loss {v['loss']:.4f} desc {v['desc']:.4f} bits {v['bits']:.4f}",
                     rate=lambda mols, steps, dt: f"{mols / dt:.0f} mol/s", show_epoch=True, save_state=save_state,
                     log=log, vlog=vlog, say=say)

    from .pretrained import provenance_of, save_checkpoint

    val_final = validate() if val_batches else {}
    net.eval()
    prov = provenance_of(stats)
    save_checkpoint(net.encoder.cpu(), spec, out / "checkpoint.pt", prov, recipe=r.name)
    card = {
        "format": "uniqsar-dmpnn-pretrain/1",
        "kind": "dmpnn",
        "recipe": r.to_dict(),
        "encoder": {k: getattr(spec, k) for k in ("hidden_size", "depth", "aggregation", "aggregation_norm")},
        "num_params": n_params,
        "size_mb_float32": round(n_params * 4 / 2**20, 2),
        "provenance": prov,
        "data": {**stats, "n_train": int(len(train_pos)), "n_val_evaluated": int(len(val_pos))},
        "targets": {"descriptors": n_desc, "morgan_bits": n_bits, "cache": str(tdir), "scaler": scaler},
        "install_as_default": "cp checkpoint.pt uniqsar/models/dmpnn/weights/default.pt && cp model_card.json "
                              "uniqsar/models/dmpnn/weights/default.json",
    }
    return write_model_card(out, card, steps=prog.step, molecules_seen=prog.mols_seen, n_train=len(train_pos),
                            elapsed_s=prog.elapsed(), device=device, train_losses=last, val_losses=val_final,
                            plot_terms=("loss", "desc", "bits"), say=say)


__all__ = ["pretrain", "PretrainNet", "objective", "corpus_targets", "targets_dir", "chunk_paths", "fit_target_scaler", "apply_target_scaler",
           "epoch_plan"]
