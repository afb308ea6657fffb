"""Per-atom Uni-Mol2 representations: for each molecule the CLS vector (D,), one vector per heavy atom (N, D), the
atomic numbers (N,) and the coordinates (N, 3) the model saw.

Atom order: the RDKit atom order of the SMILES as given (hydrogens removed, as every Uni-Mol2 input is): the SMILES
is parsed as written, never canonicalized here, so atom i is the i-th heavy atom of the input string. Molecules
above ``max_atoms`` heavy atoms are cropped to a seeded subset (the kept atoms stay in order; ``atom_index`` says
which). The forward runs in "correct" masking mode, so a molecule's vectors do not depend on its batch
neighbours (at batch size 1 this is exactly unimol_tools' output).

On disk (``save_atomic`` / ``load_atomic``): one ``.npz`` of flat arrays, readable with ``allow_pickle=False``:
  smiles (n,) str   error (n,) str ('' = ok)   cls (n, D) float32 (NaN rows = failed)
  offsets (n+1,) int64: atoms of molecule i are rows offsets[i]:offsets[i+1] of
  atomic_reprs (sum N, D) float32   atomic_coords (sum N, 3) float32   atomic_numbers (sum N,) int64
  atomic_symbols (sum N,) str       atom_index (sum N,) int64 (index of the atom in the input SMILES' heavy atoms)
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from uniqsar.util import log

from .features import collate, featurize_mol, iter_batches
from .model import UniMol2

FORMAT = "uniqsar-atomic-v1"


def featurize_smiles_list(smiles, *, max_atoms: int = 128, seed: int = 42, crop_seed: int = 0, n_jobs: int = 1,
                          verbose: bool = False):
    """One conformer per molecule (the unimol_tools protocol: ETKDG seed 42 + MMFF), from the conformer cache.
    Returns (features, reasons): features[i] a feature dict or None, reasons[i] None or why it failed."""
    from .conformer_cache import cached_featurize

    feats, reasons = cached_featurize([str(s) for s in smiles], n_jobs=max(1, n_jobs), seed=seed, n_conformers=1,
                                      max_atoms=max_atoms, crop_seed=crop_seed, verbose=verbose)
    return [f[0] if f else None for f in feats], list(reasons)


def featurize_atoms_coords(atoms, coordinates, *, max_atoms: int = 128, crop_seed: int = 0) -> dict:
    """Features of a custom conformer given as element symbols (or atomic numbers) and coordinates, built as
    unimol_tools builds it: atoms without bonds, sanitized, hydrogens removed."""
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    coords = np.asarray(coordinates, dtype=np.float64).reshape(-1, 3)
    if len(coords) != len(atoms):
        raise ValueError(f"{len(atoms)} atoms but {len(coords)} coordinates")
    mol = Chem.RWMol()
    for a in atoms:
        mol.AddAtom(Chem.Atom(int(a)) if isinstance(a, (int, np.integer)) else Chem.Atom(str(a)))
    conf = Chem.Conformer(len(atoms))
    for i, (x, y, z) in enumerate(coords):
        conf.SetAtomPosition(i, Point3D(float(x), float(y), float(z)))
    mol.AddConformer(conf, assignId=True)
    Chem.SanitizeMol(mol)
    return featurize_mol(mol.GetMol(), max_atoms=max_atoms, crop_seed=crop_seed)


def kept_atoms(n_heavy: int, max_atoms: int, crop_seed: int) -> np.ndarray:
    """Indices of the heavy atoms the featurizer keeps (all of them unless the molecule is cropped)."""
    if n_heavy <= max_atoms:
        return np.arange(n_heavy)
    return np.sort(np.random.default_rng(crop_seed).choice(n_heavy, size=max_atoms, replace=False))


def atomic_forward(model: UniMol2, feats: list, *, batch_size: int = 32, device="cpu",
                   verbose: bool = False) -> list:
    """Per molecule (None where feats[i] is None): dict cls (D,), atoms (N, D), coords (N, 3) float32 (the input
    coordinates) and numbers (N,) int64. Batched by size; "correct" masking, so batching does not change a vector."""
    out: list = [None] * len(feats)
    items = [i for i, f in enumerate(feats) if f is not None]
    sizes = [len(feats[i]["src_tokens"]) for i in items]
    model = model.to(device).eval()
    done, t0, last = 0, time.time(), 0.0
    with torch.inference_mode():
        for idx in iter_batches(sizes, batch_size=max(1, batch_size)):
            mols = [items[j] for j in idx]
            batch = {k: v.to(device) for k, v in collate([feats[i] for i in mols]).items()}
            res = model(batch, mode="correct", coords=False)
            cls = res["cls"].float().cpu().numpy()
            atoms = res["atoms"].float().cpu().numpy()
            for row, i in enumerate(mols):
                n = len(feats[i]["src_tokens"])
                out[i] = {"cls": cls[row].copy(), "atoms": atoms[row, :n].copy(),
                          "coords": np.asarray(feats[i]["src_coord"], dtype=np.float32).copy(),
                          "numbers": np.asarray(feats[i]["src_tokens"], dtype=np.int64).copy()}
            done += len(mols)
            if verbose and (time.time() - last > 5 or done == len(items)):
                last = time.time()
                log(f"Uni-Mol2 atomic: {done}/{len(items)} molecules ({done / max(last - t0, 1e-9):.1f}/s)")
    return out


def atomic_smiles(smiles, weights="default", *, max_atoms: int = 128, batch_size: int = 32, seed: int = 0,
                  arch: dict | None = None, n_jobs: int = 1, device="cpu", verbose: bool = False):
    """SMILES (as written) -> (per-molecule results of :func:`atomic_forward`, reasons, weights identity)."""
    from .pretrained import identity, load_backbone

    feats, reasons = featurize_smiles_list(smiles, max_atoms=max_atoms, crop_seed=seed, n_jobs=n_jobs,
                                           verbose=verbose)
    model = load_backbone(weights, seed=seed, arch=arch, device="cpu")
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, n_jobs))
    try:
        res = atomic_forward(model, feats, batch_size=batch_size, device=device, verbose=verbose)
    finally:
        torch.set_num_threads(old)
    return res, reasons, identity(weights, seed, arch)


def save_atomic(path, smiles, results: list, reasons: list, *, max_atoms: int, crop_seed: int, dim: int) -> Path:
    """Write ``results`` (from :func:`atomic_forward`) as one flat ``.npz`` (module docstring); returns the path."""
    from rdkit import Chem

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pt = Chem.GetPeriodicTable()
    n = len(smiles)
    cls = np.full((n, dim), np.nan, dtype=np.float32)
    reprs, coords, numbers, index, counts = [], [], [], [], []
    errors = []
    for i, r in enumerate(results):
        if r is None:
            counts.append(0)
            errors.append(str(reasons[i] or "failed"))
            continue
        cls[i] = r["cls"]
        reprs.append(r["atoms"])
        coords.append(r["coords"])
        numbers.append(r["numbers"])
        n_heavy = _n_heavy(smiles[i])
        index.append(kept_atoms(n_heavy, max_atoms, crop_seed) if n_heavy is not None else np.arange(len(r["numbers"])))
        counts.append(len(r["numbers"]))
        errors.append("")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    nums = np.concatenate(numbers).astype(np.int64) if numbers else np.zeros(0, np.int64)
    arrays = {
        "format": np.array(FORMAT),
        "smiles": np.asarray([str(s) for s in smiles], dtype=str),
        "error": np.asarray(errors, dtype=str),
        "cls": cls,
        "offsets": offsets,
        "atomic_reprs": np.concatenate(reprs).astype(np.float32) if reprs else np.zeros((0, dim), np.float32),
        "atomic_coords": np.concatenate(coords).astype(np.float32) if coords else np.zeros((0, 3), np.float32),
        "atomic_numbers": nums,
        "atomic_symbols": np.asarray([pt.GetElementSymbol(int(z)) for z in nums], dtype="<U3"),
        "atom_index": np.concatenate(index).astype(np.int64) if index else np.zeros(0, np.int64),
    }
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    np.savez(path, **arrays)
    return path


def _n_heavy(smiles: str) -> int | None:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return None if mol is None else Chem.RemoveAllHs(Chem.AddHs(mol)).GetNumAtoms()


def load_atomic(path) -> dict:
    """Read a file written by :func:`save_atomic` (no pickle) into per-molecule lists: smiles, error, cls (n, D),
    atomic_reprs / atomic_coords / atomic_numbers / atomic_symbols / atom_index (one array per molecule)."""
    with np.load(path, allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"]) != FORMAT:
            raise ValueError(f"{path} is not a uniqsar atomic-representation file ({FORMAT})")
        data = {k: z[k] for k in z.files}
    off = data["offsets"]
    out = {"smiles": data["smiles"].tolist(), "error": data["error"].tolist(), "cls": data["cls"]}
    for key in ("atomic_reprs", "atomic_coords", "atomic_numbers", "atomic_symbols", "atom_index"):
        out[key] = [data[key][off[i]:off[i + 1]] for i in range(len(off) - 1)]
    return out


def embed_atomic_table(data, out_dir, *, smiles_col: str | None = None, weights="default", seed: int = 0,
                       batch_size: int = 32, max_atoms: int = 128, n_jobs: int = 1, arch: dict | None = None,
                       device="cpu") -> dict:
    """``uniqsar embed --atomic``: every row of a table (path or DataFrame), SMILES as written, to
    ``out_dir/atomic.npz`` (+ ``summary.json``). Rows whose SMILES does not parse get an error and no atoms."""
    import pandas as pd

    from uniqsar.data.dataset import find_smiles_column, read_table
    from uniqsar.io.artifacts import write_json

    from .pretrained import describe

    df = data if isinstance(data, pd.DataFrame) else read_table(data)
    col = find_smiles_column(df, smiles_col)
    smiles = ["" if pd.isna(s) else str(s) for s in df[col]]
    results, reasons, ident = atomic_smiles(smiles, weights, max_atoms=max_atoms, batch_size=batch_size, seed=seed,
                                            arch=arch, n_jobs=n_jobs, device=device, verbose=True)
    dim = next((r["cls"].shape[0] for r in results if r is not None), 0)
    if not dim:
        from .pretrained import load_backbone

        dim = load_backbone(weights, seed=seed, arch=arch).cfg.embed_dim
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} is a file; --atomic writes a folder")
    path = save_atomic(out_dir / "atomic.npz", smiles, results, reasons, max_atoms=max_atoms, crop_seed=seed, dim=dim)
    n_failed = sum(r is None for r in results)
    summary = {"format": FORMAT, "file": path.name, "n_rows": len(smiles), "n_failed": n_failed, "dim": int(dim),
               "n_atoms": int(sum(len(r["numbers"]) for r in results if r is not None)), "smiles_col": col,
               "max_atoms": int(max_atoms), "seed": int(seed), "weights": ident, "weights_text": describe(ident),
               "atom_order": "RDKit order of the heavy atoms of each SMILES as written (not canonicalized)",
               "read_with": "uniqsar.models.unimol2.atomic.load_atomic(path) or numpy.load(path, allow_pickle=False)"}
    write_json(out_dir / "summary.json", summary)
    return summary


__all__ = ["embed_atomic_table", "featurize_smiles_list", "featurize_atoms_coords", "atomic_forward", "atomic_smiles", "save_atomic",
           "load_atomic", "kept_atoms"]
