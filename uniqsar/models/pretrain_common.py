"""Recipe validation, run-folder plumbing and the training loop shared by the pretraining kinds (Uni-Mol2,
SMILES transformer, D-MPNN): the recipe's sections, value checks and common ``[data]`` fields, the LR schedule,
RNG state as tensors (so checkpoints load with ``weights_only=True``), atomic checkpoint writes, the run's
counters and its resume (``Progress``, ``resume_run``, ``save_training_state``), the loop's cadence
(``run_steps``: log / validate / checkpoint every N steps, interrupt -> checkpoint), the corpus split files,
append-only loss CSVs, the loss plot and the model card. What each kind keeps: its batches, its model and
losses, and how it prints its loss terms."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, fields
from itertools import islice
from pathlib import Path

import numpy as np
import torch


def typed_section(cls, d: dict, where: str) -> dict:
    """Validate one TOML table against dataclass ``cls``: known keys only, each of its default's type
    (an int is accepted for a float field and converted); errors name ``where`` and the key."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    out = {}
    for k, v in d.items():
        default = getattr(cls(), k)
        if isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(default, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif isinstance(default, int):
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, str)
        if not ok:
            raise ValueError(f"{where}.{k}: expected {type(default).__name__}, got {v!r}")
        out[k] = float(v) if isinstance(default, float) else v
    return out


RECIPE_SECTIONS = ("model", "data", "objective", "train")


@dataclass(frozen=True)
class CorpusSpec:
    """The ``[data]`` fields every kind has (``corpus_split`` reads them); a kind's ``DataSpec`` subclasses it,
    adds its own fields after these and may override a default (its field keeps its place)."""
    smiles_col: str = ""  # "" = auto-detect (smiles, canonical_smiles, drug, smi; any case)
    offset: int = 0  # skip this many data rows first (e.g. continued pretraining on molecules not yet seen)
    limit: int = 0  # then read only `limit` rows (0 = all)
    subsample: int = 0  # then keep a seeded random subset of this size (0 = all)
    val_fraction: float = 0.02  # held out by a seeded hash of the canonical SMILES
    val_max: int = 2048  # validation molecules actually evaluated


def recipe_model_table(d: dict, name: str, kind: str) -> dict:
    """The ``[model]`` table of parsed recipe ``d`` without its ``kind`` key, after refusing unknown top-level
    sections and a ``kind`` other than ``kind`` (a missing one means ``kind``)."""
    unknown = sorted(set(d) - set(RECIPE_SECTIONS))
    if unknown:
        raise ValueError(f"recipe {name!r}: unknown section(s) {unknown}; allowed: {', '.join(RECIPE_SECTIONS)}")
    m = dict(d.get("model", {}))
    got = m.pop("kind", kind)
    if got != kind:
        raise ValueError(f"recipe {name!r}: [model] kind must be {kind!r}, got {got!r}")
    return m


def recipe_section(cls, d: dict, key: str, name: str):
    """Dataclass ``cls`` built from table ``d[key]`` of recipe ``name`` (validated by ``typed_section``)."""
    return cls(**typed_section(cls, d.get(key, {}), f"recipe {name!r} [{key}]"))


def check_recipe_values(name: str, *, unit: dict | None = None, positive: dict | None = None,
                        non_negative: dict | None = None) -> None:
    """Refuse recipe values out of range: ``unit`` in [0, 1], ``positive`` > 0, ``non_negative`` >= 0
    (each a {field name: value} dict; the error names the first offending field)."""
    for k, v in (unit or {}).items():
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"recipe {name!r}: {k} must be in [0, 1], got {v}")
    for k, v in (positive or {}).items():
        if v <= 0:
            raise ValueError(f"recipe {name!r}: {k} must be > 0, got {v}")
    for k, v in (non_negative or {}).items():
        if v < 0:
            raise ValueError(f"recipe {name!r}: {k} must be >= 0, got {v}")


def load_kind_recipe(name_or_path, recipe_from_dict):
    """A pretraining kind's typed recipe: ``name_or_path`` resolved as ``uniqsar pretrain --recipe`` does,
    then ``recipe_from_dict(parsed TOML, name=file stem)``."""
    from uniqsar.models.pretraining import resolve_recipe

    path, d = resolve_recipe(name_or_path)
    return recipe_from_dict(d, name=path.stem)


def lr_lambda(total: int, warmup: int, power: float, lr: float, end_lr: float):
    """Linear warmup, then polynomial decay (power 1 = linear) from ``lr`` to ``end_lr`` at ``total``."""
    def f(step: int) -> float:  # multiplier of the base lr at optimizer step `step` (0-based)
        if warmup and step < warmup:
            return (step + 1) / warmup
        frac = min(1.0, (step - warmup) / max(1, total - warmup))
        return (end_lr + (lr - end_lr) * (1.0 - frac) ** power) / lr

    return f


def check_resumed_schedule(saved_total: int | None, total: int) -> None:
    """A resumed run whose step budget changed follows a recomputed schedule (LambdaLR only keeps the
    step): warn, since the learning rate jumps (a warm restart when the budget grows)."""
    if saved_total is not None and int(saved_total) != total:
        warnings.warn(f"the checkpoint was planned for {int(saved_total)} steps, this run for {total}: the "
                      f"learning-rate schedule is recomputed for {total} steps (the rate jumps at the resume "
                      f"point)", stacklevel=2)


def restore_checkpoint(ckpt_path: Path, recipe: dict, modules: dict, opt, sched, total: int):
    """Load a training checkpoint (``weights_only``) into ``modules`` ({checkpoint key: nn.Module}), the
    optimizer, the scheduler and the torch RNG. A checkpoint of a different [model] is refused; a changed
    step budget is warned about. Returns (checkpoint dict with the counters, corpus RNG)."""
    st = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    saved_model, model = json.loads(st["recipe"])["model"], json.loads(json.dumps(recipe["model"]))
    if saved_model != model:
        raise ValueError(f"{ckpt_path.parent.parent}: the checkpoint was trained with model {saved_model}, the "
                         f"recipe now says {model}; use a new --out")
    for key, module in modules.items():
        module.load_state_dict(st[key])
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    torch.set_rng_state(st["rng_torch"])
    if "rng_cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state(st["rng_cuda"])
    check_resumed_schedule(st.get("max_steps"), total)
    return st, rng_from_tensor(st["rng_numpy"])


def start_run(out, resume: bool, verbose: bool):
    """(run folder, its ``ckpt/last.pt``, say): a folder that already holds a run is refused unless ``resume``;
    ``say`` prints to stderr when ``verbose``."""
    out = Path(out)
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if verbose else (lambda msg: None)
    ckpt_path = out / "ckpt" / "last.pt"
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{out} already holds a pretraining run; pass --resume to continue it, or a new --out")
    return out, ckpt_path, say


class Progress:
    """Where a pretraining run stands: the counters its checkpoint records (``step``; ``epoch`` and
    ``pos_in_epoch``, the batches of that epoch done; ``mols_seen``; the kind's own ``counts`` such as
    ``tokens_seen``) and its training time (``elapsed0`` before this process, plus the time since ``t_start``)."""

    def __init__(self, *counts: str):
        self.step = self.epoch = self.pos_in_epoch = self.mols_seen = 0
        self.counts = dict.fromkeys(counts, 0)
        self.elapsed0, self.t_start = 0.0, time.time()

    def load(self, st: dict) -> None:
        self.step, self.epoch, self.pos_in_epoch = int(st["step"]), int(st["epoch"]), int(st["pos_in_epoch"])
        self.mols_seen, self.elapsed0 = int(st["mols_seen"]), float(st["elapsed"])
        self.counts = {k: int(st[k]) for k in self.counts}

    def elapsed(self) -> float:
        return self.elapsed0 + time.time() - self.t_start

    def state(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "pos_in_epoch": self.pos_in_epoch,
                "mols_seen": self.mols_seen, **self.counts, "elapsed": self.elapsed()}


def resume_run(ckpt_path: Path, resume: bool, recipe: dict, modules: dict, opt, sched, total: int, p: Progress,
               say):
    """With ``resume`` and a checkpoint: ``restore_checkpoint`` it, load its counters into ``p`` and return its
    corpus RNG; else None (saying so when ``resume`` found no checkpoint yet)."""
    if resume and ckpt_path.exists():
        st, rng = restore_checkpoint(ckpt_path, recipe, modules, opt, sched, total)
        p.load(st)
        say(f"resuming from step {p.step} (epoch {p.epoch}) of {ckpt_path}")
        return rng
    if resume:
        say("--resume: no checkpoint yet, starting from step 0")
    return None


def save_training_state(ckpt_path: Path, modules: dict, opt, sched, rng: np.random.Generator, p: Progress,
                        total: int, recipe: dict, **extra) -> None:
    """Write the training checkpoint atomically: ``modules``' state dicts ({checkpoint key: nn.Module}), the
    optimizer, scheduler, torch and corpus RNG states, ``p``'s counters, the step budget, the recipe, then
    ``extra`` entries."""
    st = {**{k: m.state_dict() for k, m in modules.items()}, "optimizer": opt.state_dict(),
          "scheduler": sched.state_dict(), **rng_states(), "rng_numpy": rng_tensor(rng), **p.state(),
          "max_steps": total, "recipe": json.dumps(recipe), **extra}
    atomic_save(st, ckpt_path)


def optimizer_step(loss: torch.Tensor, opt, sched, params, clip_norm: float) -> float:
    """Backpropagate ``loss``, clip the gradient norm of ``params`` to ``clip_norm`` (when > 0), step the
    optimizer and the scheduler; returns the learning rate this step used."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
    lr = opt.param_groups[0]["lr"]
    opt.step()
    sched.step()
    return lr


def mol_rate(mols: int, steps: int, dt: float) -> str:
    return f"{mols / dt:.1f} mol/s"


def run_steps(p: Progress, total: int, t, *, batches, train_step, describe, validate, save_state, log: CsvLog,
              vlog: CsvLog, say, rate=mol_rate, show_epoch: bool = False) -> dict:
    """Train from ``p`` to step ``total`` at the cadence of TrainSpec ``t``; returns the last log window's mean
    loss terms. The kind supplies:

    - ``batches(epoch, start)``: the epoch's batches from position ``start`` (built lazily: no batch is drawn
      past ``total``);
    - ``train_step(batch)``: one optimizer step -> (loss terms {name: float}, lr, molecules, extra CSV values
      {column: value}); it adds its own ``p.counts``;
    - ``describe(terms)``: the loss terms as printed in the log window and validation lines;
    - ``validate()`` -> {term: value} (None: no validation set), ``save_state()``: write the checkpoint;
    - ``rate(mols, steps, dt)``: the window's speed as printed; ``show_epoch``: print the epoch after the step.

    Each step writes a row of ``log`` (its columns filled by name: step, the terms, lr, mols, the extra values,
    elapsed_s). Every ``log_every`` steps (and at the end) the window's mean terms, speed and ETA are said;
    every ``val_every`` steps (and at the end) ``validate`` is run, written to ``vlog`` and said; every
    ``checkpoint_every`` steps (and at the end) ``save_state`` is called. Ctrl-C saves a checkpoint, says how
    to resume and re-raises; ``log`` and ``vlog`` are closed in every case."""
    p.t_start = time.time()
    win, win_t, win_m, win_n = {}, time.time(), 0, 0
    last: dict = {}
    try:
        while p.step < total:
            for batch in islice(batches(p.epoch, p.pos_in_epoch), total - p.step):
                terms, lr, mols, extra = train_step(batch)
                p.step, p.pos_in_epoch, p.mols_seen = p.step + 1, p.pos_in_epoch + 1, p.mols_seen + mols
                row = {"step": p.step, **terms, "lr": lr, "mols": mols, **extra, "elapsed_s": round(p.elapsed(), 2)}
                log.write([row.get(c, "") for c in log.header])
                for k, v in terms.items():
                    win[k] = win.get(k, 0.0) + v
                win_m, win_n = win_m + mols, win_n + 1
                if p.step % t.log_every == 0 or p.step == total:
                    dt = max(time.time() - win_t, 1e-9)
                    last = {k: v / win_n for k, v in win.items()}
                    at = f"step {p.step}/{total}" + (f" (epoch {p.epoch})" if show_epoch else "")
                    say(f"{at} | {describe(last)} | lr {lr:.2e} | {rate(win_m, win_n, dt)} | "
                        f"ETA {fmt_time((total - p.step) * dt / win_n)}")
                    win, win_t, win_m, win_n = {}, time.time(), 0, 0
                if validate is not None and (p.step % t.val_every == 0 or p.step == total):
                    v = validate()
                    vlog.write([p.step, *[v.get(c, "") for c in vlog.header[1:]]])
                    say(f"step {p.step} validation: {describe(v)}")
                if p.step % t.checkpoint_every == 0 or p.step == total:
                    save_state()
            if p.step < total:  # the epoch ran out of batches
                p.epoch, p.pos_in_epoch = p.epoch + 1, 0
    except KeyboardInterrupt:
        say(f"interrupted at step {p.step}; saving a checkpoint (resume with --resume)")
        save_state()
        raise
    finally:
        log.fh.close()
        vlog.fh.close()
    return last


def batch_to(batch: dict, device: str) -> dict:
    """The batch's tensors on ``device`` (a no-op on the CPU)."""
    if device == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def rng_states() -> dict:
    """torch RNG states to checkpoint (CPU, and CUDA when it is in use), as uint8 tensors."""
    st = {"rng_torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["rng_cuda"] = torch.cuda.get_rng_state()
    return st


def rng_tensor(rng: np.random.Generator) -> torch.Tensor:
    return torch.tensor(list(json.dumps(rng.bit_generator.state).encode()), dtype=torch.uint8)


def rng_from_tensor(t: torch.Tensor) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = json.loads(bytes(t.tolist()).decode())
    return rng


def atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def corpus_split(out: Path, corpus, data, seed: int, exclude, say, verbose: bool):
    """(smiles, is_val, stats) of run folder ``out``: reused from its corpus.csv when a previous (possibly
    interrupted) run fixed it, else read from ``corpus`` (recipe [data] section ``data``) and written."""
    if (out / "corpus.csv").exists():
        smiles, is_val, stats = read_corpus_dir(out)
        if exclude and sorted(map(str, exclude)) != sorted(stats["exclusion_files"]):
            raise ValueError(f"{out}: the corpus was built with exclusions {stats['exclusion_files']}; "
                             f"use a new --out for different ones")
        say(f"corpus: reusing {out / 'corpus.csv'} ({len(smiles)} molecules)")
        return smiles, is_val, stats
    from uniqsar.models.unimol2.pretrain_data import read_corpus

    smiles, is_val, stats = read_corpus(corpus, smiles_col=data.smiles_col or None, limit=data.limit or None,
                                        subsample=data.subsample or None, seed=seed, exclude=exclude,
                                        val_fraction=data.val_fraction, verbose=verbose, offset=data.offset)
    write_corpus(out, smiles, is_val, stats)
    return smiles, is_val, stats


def write_corpus(out: Path, smiles, is_val, stats) -> None:
    tmp = out / "corpus.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["smiles", "split"])
        w.writerows([s, "val" if v else "train"] for s, v in zip(smiles, is_val))
    os.replace(tmp, out / "corpus.csv")
    (out / "corpus.json").write_text(json.dumps(stats, indent=1))


def read_corpus_dir(out: Path):
    with open(out / "corpus.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return [r[0] for r in rows], np.array([r[1] == "val" for r in rows]), json.loads((out / "corpus.json").read_text())


class CsvLog:
    """Append-only CSV; on resume rows after `keep_upto` (written after the last checkpoint) are dropped."""

    def __init__(self, path: Path, header: list[str], keep_upto: int | None):
        self.path, self.header = path, list(header)
        rows = []
        if keep_upto is not None and path.exists():
            with open(path, newline="") as fh:
                rows = [r for r in list(csv.reader(fh))[1:] if r and int(r[0]) <= keep_upto]
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerows([header, *rows])
        self.fh = open(path, "a", newline="")
        self.w = csv.writer(self.fh)

    def write(self, row) -> None:
        self.w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
        self.fh.flush()


def write_model_card(out: Path, card: dict, *, steps: int, molecules_seen: int, n_train: int, elapsed_s: float,
                     device: str, train_losses: dict, val_losses: dict, plot_terms=None, say=None) -> dict:
    """Finish a pretraining run: write ``out/model_card.json`` (``card`` plus the fields every kind records: the
    step and molecule counts, epochs, time, device, final losses, ``checkpoint.pt``'s sha256, the command line,
    the source commit and the uniqsar / torch / numpy versions), plot the losses and say so. Returns the card."""
    from uniqsar import __version__
    from uniqsar.models.weights_identity import file_sha256
    from uniqsar.util import source_commit

    card = {**card, "steps": steps, "epochs": round(molecules_seen / max(1, n_train), 3),
            "molecules_seen": molecules_seen, "elapsed_s": round(elapsed_s, 1), "device": device,
            "final_train_losses": train_losses, "final_val_losses": val_losses, "checkpoint": "checkpoint.pt",
            "sha256": file_sha256(out / "checkpoint.pt"), "command": " ".join(sys.argv), "commit": source_commit(),
            "versions": {"uniqsar": __version__, "torch": torch.__version__, "numpy": np.__version__}}
    (out / "model_card.json").write_text(json.dumps(card, indent=1))
    plot_losses(out, **({"terms": plot_terms} if plot_terms else {}))
    if say is not None:
        say(f"done: {steps} steps, {molecules_seen} molecules seen; exported {out / 'checkpoint.pt'}")
    return card


def fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def plot_losses(out: Path, terms=("loss", "mlm", "coord", "dist", "aux", "acc")) -> Path | None:
    """losses.png: one panel per loss column present in losses.csv (train, smoothed) and val_losses.csv."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import pandas as pd
    except ImportError:
        print("losses.png skipped: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        return None
    tr = pd.read_csv(out / "losses.csv")
    va = pd.read_csv(out / "val_losses.csv") if (out / "val_losses.csv").exists() else None
    terms = [t for t in terms if t in tr.columns and tr[t].notna().any()]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3), squeeze=False)
    win = max(1, len(tr) // 50)
    for ax, t in zip(axes[0], terms):
        ax.plot(tr["step"], tr[t].rolling(win, min_periods=1).mean(), label="train")
        if va is not None and len(va) and t in va.columns:
            ax.plot(va["step"], va[t], "o-", label="val")
        ax.set_title(t)
        ax.set_xlabel("step")
        if t != "acc":
            ax.set_yscale("log")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=80)
    plt.close(fig)
    return out / "losses.png"
