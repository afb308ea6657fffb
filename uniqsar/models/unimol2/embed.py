"""Molecule embeddings from Uni-Mol2: SMILES in, (n, D) float32 out, NaN rows for molecules that fail.

Runs in "correct" masking mode, so a molecule's vector does not depend on what it is batched with;
batches are bucketed by size. Threads: whatever torch.set_num_threads says (or `num_threads` for this call).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from uniqsar.util import log

from .features import collate, featurize, iter_batches
from .model import UniMol2, pool
from .weights import load_model


def embed_features(model: UniMol2, feats: list, *, batch_size: int = 32, pooling: str = "cls",
                   device="cpu", mode: str = "correct", verbose: bool = False) -> np.ndarray:
    """feats[i]: a list of conformer feature dicts (averaged) or None (-> NaN row)."""
    width = model.cfg.embed_dim * (2 if pooling == "cls+mean" else 1)
    out = np.zeros((len(feats), width), dtype=np.float64)
    count = np.zeros(len(feats), dtype=np.int64)
    items = [(i, f) for i, confs in enumerate(feats) if confs for f in confs]
    sizes = [len(f["src_tokens"]) for _, f in items]
    model = model.to(device).eval()
    done, t0, last = 0, time.time(), 0.0
    with torch.inference_mode():
        for idx in iter_batches(sizes, batch_size=batch_size):
            batch = {k: v.to(device) for k, v in collate([items[j][1] for j in idx]).items()}
            vec = pool(model(batch, mode=mode, coords=False), batch["atom_mask"], pooling).float().cpu().numpy()
            for row, j in enumerate(idx):
                out[items[j][0]] += vec[row]
                count[items[j][0]] += 1
            done += len(idx)
            if verbose and (time.time() - last > 5 or done == len(items)):
                last = time.time()
                log(f"Uni-Mol2 embed: {done}/{len(items)} conformers ({done / max(last - t0, 1e-9):.1f}/s)")
    res = (out / np.maximum(count, 1)[:, None]).astype(np.float32)
    res[count == 0] = np.nan
    return res


def embed_smiles(
    smiles: list[str],
    weights="random",
    *,
    batch_size: int = 32,
    n_jobs: int = 1,
    pooling: str = "cls",
    n_conformers: int = 1,
    seed: int = 0,
    conformer_seed: int = 42,
    max_atoms: int = 128,
    device="cpu",
    num_threads: int | None = None,
    verbose: bool | None = None,
    return_reasons: bool = False,
):
    """Embed SMILES with Uni-Mol2.

    weights: "random" / "random:<size>" (seeded init_bert_params, 84m by default), a released size name
    ("84m", ...), a checkpoint path or folder, or a UniMol2 instance. pooling: "cls" -> (n, D),
    "cls+mean" -> (n, 2D) (CLS and the mean over atoms). n_conformers > 1 averages conformers generated with
    seeds conformer_seed + k (k = 0 is the unimol_tools conformer). seed drives random weights and the crop
    of molecules above max_atoms. Returns float32 (n, width), plus per-row failure reasons if asked.
    """
    smiles = list(smiles)
    verbose = True if verbose is None else verbose
    old_threads = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        model = load_model(weights, seed=seed, device=device)
        feats, reasons = featurize(smiles, n_jobs=n_jobs, seed=conformer_seed, n_conformers=n_conformers,
                                   max_atoms=max_atoms, crop_seed=seed, verbose=verbose)
        emb = embed_features(model, feats, batch_size=batch_size, pooling=pooling, device=device, verbose=verbose)
    finally:
        torch.set_num_threads(old_threads)
    return (emb, reasons) if return_reasons else emb
