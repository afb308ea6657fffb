"""Disk cache of Uni-Mol2 conformers (the expensive part of the 3D featurizer: ETKDG + MMFF).

What is stored: per (canonical SMILES, conformer seed) the heavy-atom coordinates (N, 3) float32 of that
conformer (before any crop) and whether the 3D embedding failed (2D fallback). Conformer k of a molecule
uses seed `seed + k` (features.embed_conformers), so a run with 1 conformer and one with 5 share the first.
Graph features are cheap and are rebuilt from the SMILES; only coordinates are cached.

Layout: `<root>/<protocol>/<shard>.npz` with arrays `keys` (unicode "SMILES|seed"), `is2d` (bool),
`offsets` (int64, rows into `coords`) and `coords` (float32 (sum N, 3)). Shards are written atomically
(temp file + rename) and read with `np.load(allow_pickle=False)`; a corrupt shard is ignored.
Root: `$UNIQSAR_CONFORMER_DIR`, else `$UNIQSAR_CACHE_DIR/conformers`, else `~/.cache/uniqsar/conformers`.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from . import features as _features
from .features import embed_conformers, featurize_mol

# Identity of the conformer protocol; bump when features.embed_conformers changes its output. v2: ETKDG stops
# after EMBED_TIMEOUT_S (v1 had no limit; its conformers are the same except for molecules that hit it).
PROTOCOL = "etkdg-mmff-v2"


def protocol_id() -> str:
    """The conformer cache's folder name: the protocol and the embedding timeout in force."""
    return f"{PROTOCOL}-t{int(_features.EMBED_TIMEOUT_S)}"


def default_conformer_dir() -> Path:
    if os.environ.get("UNIQSAR_CONFORMER_DIR"):
        return Path(os.environ["UNIQSAR_CONFORMER_DIR"])
    if os.environ.get("UNIQSAR_CACHE_DIR"):
        return Path(os.environ["UNIQSAR_CACHE_DIR"]) / "conformers"
    from uniqsar.featurize.cache import default_cache_dir

    return default_cache_dir().parent / "conformers"


def _heavy_mol(smiles: str):
    """The H-free molecule in the atom order featurize_mol sees (AddHs then RemoveAllHs, as the featurizer)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError("RDKit could not parse the SMILES")
    return AllChem.RemoveAllHs(AllChem.AddHs(mol))


def compute_coords(smiles: str, seeds: Sequence[int]):
    """[(coords (N, 3) float32, is_2d)] for each seed, or a reason string. Never raises."""
    from rdkit import RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    try:
        out = []
        for s in seeds:
            (m, is2d), = embed_conformers(smiles, seed=int(s), n_conformers=1)
            heavy = AllChem.RemoveAllHs(m)
            if heavy.GetNumAtoms() == 0:
                raise ValueError("no heavy atoms")
            out.append((heavy.GetConformer().GetPositions().astype(np.float32), bool(is2d)))
        return out
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def _chunk_coords(jobs):
    return [compute_coords(s, seeds) for s, seeds in jobs]


def build_features(smiles: str, confs, *, max_atoms: int = 128, crop_seed: int = 0):
    """Feature dicts (features.featurize_mol) of a molecule from cached coordinates."""
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    mol = _heavy_mol(smiles)
    out = []
    for coords, is2d in confs:
        if len(coords) != mol.GetNumAtoms():
            raise ValueError(f"cached conformer has {len(coords)} atoms, molecule {mol.GetNumAtoms()}")
        m = Chem.Mol(mol)
        m.RemoveAllConformers()
        conf = Chem.Conformer(m.GetNumAtoms())
        for i, (x, y, z) in enumerate(coords.astype(np.float64)):
            conf.SetAtomPosition(i, Point3D(x, y, z))
        m.AddConformer(conf, assignId=True)
        out.append(featurize_mol(m, max_atoms=max_atoms, crop_seed=crop_seed, coords_2d=is2d))
    return out


class ConformerCache:
    def __init__(self, root=None, enabled: bool = True):
        self.root = Path(root) if root is not None else default_conformer_dir()
        self.enabled = enabled
        self._tables: dict[str, dict] = {}  # shard file name -> {key: (coords, is2d)}
        self.last_hits = 0
        self.last_misses = 0

    @property
    def folder(self) -> Path:
        return self.root / protocol_id()

    def _load(self) -> dict:
        table: dict = {}
        if not self.enabled or not self.folder.is_dir():
            return table
        for shard in sorted(self.folder.glob("*.npz")):
            if shard.name not in self._tables:
                part = {}
                try:
                    with np.load(shard, allow_pickle=False) as z:
                        keys, is2d, off, coords = z["keys"].tolist(), z["is2d"], z["offsets"], z["coords"]
                    for i, k in enumerate(keys):
                        part[k] = (coords[off[i]:off[i + 1]], bool(is2d[i]))
                except Exception:  # corrupt / foreign shard: ignored, molecules recomputed
                    part = {}
                self._tables[shard.name] = part
            table.update(self._tables[shard.name])
        return table

    def _write(self, entries: dict) -> None:
        if not entries:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = list(entries)
        coords = [entries[k][0] for k in keys]
        offsets = np.concatenate([[0], np.cumsum([len(c) for c in coords])]).astype(np.int64)
        name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16] + ".npz"
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=np.asarray(keys, dtype=str), is2d=np.array([entries[k][1] for k in keys], bool),
                         offsets=offsets, coords=np.concatenate(coords).astype(np.float32).reshape(-1, 3))
            os.replace(tmp, self.folder / name)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def coordinates(self, smiles: Sequence[str], *, seed: int = 42, n_conformers: int = 1, n_jobs: int = 1,
                    verbose: bool = False):
        """Per molecule: a list of n_conformers (coords, is_2d), or a reason string."""
        smiles = list(smiles)
        seeds = [seed + k for k in range(n_conformers)]
        table = self._load()
        todo = list(dict.fromkeys(s for s in smiles if any(f"{s}|{q}" not in table for q in seeds)))
        self.last_misses = len(todo)
        self.last_hits = len(set(smiles)) - len(todo)
        failed: dict[str, str] = {}
        if todo:
            jobs = [(s, [q for q in seeds if f"{s}|{q}" not in table]) for s in todo]
            results = _coords_with_progress(jobs, n_jobs, n_conformers, verbose)
            new = {}
            for (s, qs), res in zip(jobs, results):
                if isinstance(res, str):
                    failed[s] = res
                    continue
                for q, c in zip(qs, res):
                    new[f"{s}|{q}"] = c
            if self.enabled:
                self._write(new)
            table.update(new)
        return [failed[s] if s in failed else [table[f"{s}|{q}"] for q in seeds] for s in smiles]

    def features(self, smiles: Sequence[str], *, seed: int = 42, n_conformers: int = 1, max_atoms: int = 128,
                 crop_seed: int = 0, n_jobs: int = 1, verbose: bool = False):
        """Like features.featurize: (list of per-molecule lists of conformer dicts or None, reasons)."""
        coords = self.coordinates(smiles, seed=seed, n_conformers=n_conformers, n_jobs=n_jobs, verbose=verbose)
        feats, reasons = [], []
        for s, c in zip(smiles, coords):
            if isinstance(c, str):
                feats.append(None)
                reasons.append(c)
                continue
            try:
                feats.append(build_features(s, c, max_atoms=max_atoms, crop_seed=crop_seed))
                reasons.append(None)
            except Exception as e:
                feats.append(None)
                reasons.append(f"{type(e).__name__}: {e}")
        return feats, reasons


def _coords_with_progress(jobs: list, n_jobs: int, n_conformers: int, verbose: bool) -> list:
    """_chunk_coords over ``jobs`` in blocks, so progress shows from the first block on (then every 5 s)."""
    from uniqsar.util import log

    if verbose:
        log(f"Uni-Mol2 conformers: computing {len(jobs)} molecule(s) x up to {n_conformers}")
    block = max(16, 32 * n_jobs)
    results: list = []
    t0, last = time.time(), 0.0
    for b in range(0, len(jobs), block):
        part = jobs[b:b + block]
        if n_jobs == 1 or len(part) < 8:
            results += _chunk_coords(part)
        else:
            from joblib import Parallel, delayed

            size = max(1, -(-len(part) // (4 * n_jobs)))
            for p in Parallel(n_jobs=n_jobs)(delayed(_chunk_coords)(part[i:i + size])
                                             for i in range(0, len(part), size)):
                results += p
        if verbose and len(jobs) > block and (last == 0.0 or time.time() - last > 5 or len(results) == len(jobs)):
            last = time.time()
            log(f"Uni-Mol2 conformers: {len(results)}/{len(jobs)} molecules ({len(results) / (last - t0):.1f}/s)")
    return results


_PROCESS_CACHES: dict[tuple[str, bool], ConformerCache] = {}


def cached_featurize(smiles, *, n_jobs: int = 1, seed: int = 42, n_conformers: int = 1, max_atoms: int = 128,
                     crop_seed: int = 0, verbose: bool = False, cache: ConformerCache | None = None):
    """Drop-in for features.featurize with conformers from / to the disk cache
    (disable with UNIQSAR_CONFORMER_CACHE=0)."""
    if cache is None:
        enabled = os.environ.get("UNIQSAR_CONFORMER_CACHE", "1") not in ("0", "false", "no")
        root = default_conformer_dir()
        key = (str(root), enabled)
        if key not in _PROCESS_CACHES:  # one per root and process: loaded shards stay in memory across calls
            _PROCESS_CACHES[key] = ConformerCache(root, enabled=enabled)
        cache = _PROCESS_CACHES[key]
    return cache.features(list(smiles), seed=seed, n_conformers=n_conformers, max_atoms=max_atoms,
                          crop_seed=crop_seed, n_jobs=n_jobs, verbose=verbose)
