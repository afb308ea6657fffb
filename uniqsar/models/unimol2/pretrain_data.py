"""Uni-Mol2 pretraining data: corpus, exclusion guard, held-out split, on-disk conformer cache, corruptions.

Corpus -> canonical SMILES (deduplicated, excluded molecules removed) -> `corpus.csv` in the run folder
(`split` = train/val by a seeded hash of the canonical SMILES, so the split does not depend on row order).
Conformers (ETKDG + MMFF, the unimol_tools protocol of features.py) and a 2D RDKit layout are computed once,
in parallel, into sharded `.npz` files (atomic writes, read with allow_pickle=False); only missing shards are
computed, so an interrupted preparation resumes.

Corruptions follow shared/reference/unimol2.md §2 (see `corrupt`). Choices where the reference is silent or
where this code differs on purpose:
  * one conformer per molecule (seed 42, the unimol_tools protocol), cropped once (seeded) to max_atoms when
    cached, instead of sampling one of several stored conformers and cropping per sample;
  * a 2D sample's clean target is the (centred) 2D layout itself;
  * the Kabsch alignment is implemented (rotation without reflection + translation onto the clean centroid);
  * no padding to a multiple of 4: batches are size-bucketed and the model runs in "correct" masking mode, in
    which a molecule's output does not depend on the padded length.
Exclusion guard: a corpus molecule is dropped when its canonical SMILES, its stereo-free canonical SMILES, or
(for mixtures) any fragment matches any form of a listed molecule (raw and standardized, with/without stereo).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .features import collate

MASK_TOKEN = 127
N_SHORTEST_DROPPED = 511
DESCRIPTORS = ("MolWt", "MolLogP", "TPSA", "NumHDonors", "NumHAcceptors", "NumRotatableBonds", "RingCount",
               "FractionCSP3", "NumAromaticRings", "HeavyAtomCount")
SMILES_CANDIDATES = ("smiles", "canonical_smiles", "drug", "smi")


# ----------------------------------------------------------------------------------------- corpus + guard


def _smiles_column(path: Path, smiles_col: str | None = None, nrows: int | None = None, skip: int = 0) -> list[str]:
    """SMILES strings of a CSV/CSV.gz/TSV (column auto-detected) or a .smi/.txt file (first token per line):
    data rows skip .. skip + nrows (nrows None = to the end)."""
    import pandas as pd

    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".smi", ".txt")):
        out, n_seen = [], 0
        with (__import__("gzip").open(path, "rt") if path.name.endswith(".gz") else open(path)) as fh:
            for line in fh:
                if line.strip():
                    n_seen += 1
                    if n_seen > skip and (nrows is None or len(out) < nrows):
                        out.append(line.split()[0])
        return out
    sep = "\t" if name.endswith((".tsv", ".tab")) else ","
    df = pd.read_csv(path, sep=sep, nrows=nrows, skiprows=range(1, skip + 1) if skip else None)
    if smiles_col is None:
        lower = {str(c).lower(): c for c in df.columns}
        smiles_col = next((lower[c] for c in SMILES_CANDIDATES if c in lower), None)
        if smiles_col is None and df.shape[1] == 1:
            smiles_col = df.columns[0]
    if smiles_col not in df.columns:
        raise ValueError(f"{path}: no SMILES column found (tried {', '.join(SMILES_CANDIDATES)}, any case); "
                         f"columns are {list(df.columns)}")
    return df[smiles_col].dropna().astype(str).tolist()


def canonical_forms(smiles: str) -> tuple[str | None, str | None]:
    """(canonical isomeric SMILES, canonical SMILES without stereo) or (None, None) if it does not parse."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None or mol.GetNumAtoms() == 0:
        return None, None
    return Chem.MolToSmiles(mol), Chem.MolToSmiles(mol, isomericSmiles=False)


def load_exclusions(files) -> set[str]:
    """Every form under which a listed molecule is blocked: canonical, canonical without stereo, and the
    same two forms of its standardized parent (largest fragment, neutralized) as `uniqsar fit` sees it."""
    from rdkit import RDLogger

    from uniqsar.data.standardize import standardize_one

    RDLogger.DisableLog("rdApp.*")
    blocked: set[str] = set()
    for f in files or ():
        path = Path(f)
        if not path.is_file():
            raise FileNotFoundError(f"exclusion file not found: {path}")
        for s in _smiles_column(path):
            std, _ = standardize_one(s)
            for form in (*canonical_forms(s), *(canonical_forms(std) if std else ())):
                if form:
                    blocked.add(form)
    return blocked


def is_excluded(canon: str, noniso: str, blocked: set[str]) -> bool:
    if canon in blocked or noniso in blocked:
        return True
    if "." in noniso:  # a mixture containing a blocked molecule as a fragment
        return any(frag in blocked for frag in noniso.split(".") + canon.split("."))
    return False


def hash_split(smiles: list[str], val_fraction: float, seed: int) -> np.ndarray:
    """True for validation molecules: sha1(seed:canonical SMILES) < fraction. Stable under reordering."""
    h = [int.from_bytes(hashlib.sha1(f"{seed}:{s}".encode()).digest()[:8], "big") / 2**64 for s in smiles]
    return np.asarray(h) < val_fraction


PROGRESS_EVERY_S = 30.0  # seconds between progress lines while a corpus is canonicalized


def read_corpus(path, *, smiles_col=None, limit=None, subsample=None, seed=0, exclude=(), val_fraction=0.02,
                verbose=True, offset=0) -> tuple[list[str], np.ndarray, dict]:
    """Canonical, deduplicated corpus with excluded molecules removed. Returns (smiles, is_val, stats)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus not found: {path}")
    raw = _smiles_column(path, smiles_col, nrows=limit or None, skip=offset)
    if subsample and subsample < len(raw):
        keep = np.sort(np.random.default_rng(seed).choice(len(raw), size=subsample, replace=False))
        raw = [raw[i] for i in keep]
    blocked = load_exclusions(exclude)
    seen, smiles = set(), []
    n_invalid = n_excluded = n_dup = 0
    t0 = last = time.time()
    for i, s in enumerate(raw):
        if verbose and i and i % 1000 == 0 and time.time() - last >= PROGRESS_EVERY_S:
            last = time.time()
            rate = i / (last - t0)
            print(f"corpus: canonicalized {i}/{len(raw)} rows ({rate:.0f}/s, ~{(len(raw) - i) / rate:.0f}s left)",
                  file=sys.stderr, flush=True)
        canon, noniso = canonical_forms(s)
        if canon is None:
            n_invalid += 1
        elif is_excluded(canon, noniso, blocked):
            n_excluded += 1
        elif canon in seen:
            n_dup += 1
        else:
            seen.add(canon)
            smiles.append(canon)
    if not smiles:
        raise ValueError(f"{path}: no usable molecules left (invalid {n_invalid}, excluded {n_excluded})")
    is_val = hash_split(smiles, val_fraction, seed)
    stats = {"source": str(path), "offset": int(offset), "rows_read": len(raw), "invalid": n_invalid, "excluded": n_excluded,
             "duplicates": n_dup, "n_molecules": len(smiles), "n_val": int(is_val.sum()),
             "exclusion_files": [str(f) for f in exclude or ()], "n_blocked_forms": len(blocked)}
    if verbose:
        print(f"corpus: {len(raw)} rows -> {len(smiles)} molecules ({n_invalid} invalid, {n_excluded} excluded, "
              f"{n_dup} duplicates); {stats['n_val']} held out for validation", file=sys.stderr, flush=True)
    return smiles, is_val, stats


# ----------------------------------------------------------------------------------------- conformer cache


def descriptor_values(mol) -> np.ndarray:
    from rdkit.Chem import Descriptors

    out = []
    for name in DESCRIPTORS:
        try:
            out.append(float(getattr(Descriptors, name)(mol)))
        except Exception:
            out.append(np.nan)
    return np.asarray(out, np.float32)


def rdkit_descriptor_names() -> list[str]:
    from uniqsar.featurize.descriptors import descriptor_names

    return descriptor_names()


def corpus_descriptors(smiles: list[str], path: Path, n_jobs: int = 1, verbose: bool = True) -> np.ndarray:
    """Every RDKit 2D descriptor of every corpus molecule (n, n_desc) float64, NaN where undefined; cached in
    `path` (keyed by the corpus SMILES and the descriptor list, so a different RDKit recomputes)."""
    from uniqsar.registry import get_featurizer

    names = rdkit_descriptor_names()
    key = hashlib.sha256(("\n".join(smiles) + "|" + ",".join(names)).encode()).hexdigest()
    if path.exists():
        with np.load(path) as z:
            if str(z["key"]) == key:
                return z["X"]
    t0 = time.time()
    X = get_featurizer("rdkit_desc").compute(smiles, n_jobs=max(1, n_jobs)).astype(np.float64)
    if verbose:
        print(f"descriptors: {X.shape[1]} RDKit descriptors of {len(smiles)} molecules in {time.time() - t0:.0f}s",
              file=sys.stderr, flush=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, X=X, key=np.array(key))
    os.replace(tmp, path)
    return X


@dataclass(frozen=True)
class DescriptorScaler:
    """Robust z-scoring of descriptor targets: clip to the training 0.5-99.5 percentiles (descriptors have
    heavy tails), then standardize; NaN -> 0 (the mean); constant columns stay 0."""

    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> "DescriptorScaler":
        X = np.where(np.isfinite(X), X, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            lo, hi = np.nanpercentile(X, 0.5, axis=0), np.nanpercentile(X, 99.5, axis=0)
            C = np.clip(X, lo, hi)
            mean, std = np.nanmean(C, axis=0), np.nanstd(C, axis=0)
        bad = ~np.isfinite(mean)
        lo, hi, mean = (np.where(bad, 0.0, v) for v in (lo, hi, mean))
        std = np.where(~np.isfinite(std) | (std < 1e-8), 1.0, std)
        return cls(lo, hi, mean, std)

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.where(np.isfinite(X), X, np.nan)
        Z = (np.clip(X, self.lo, self.hi) - self.mean) / self.std
        return np.nan_to_num(Z, nan=0.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("lo", "hi", "mean", "std")}


def conformer_record(smiles: str, seed: int = 42, max_atoms: int = 128) -> dict:
    """Graph features + 3D conformer + 2D layout (both cropped alike) + descriptors of one molecule. Raises."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from .features import embed_conformers, featurize_mol

    (mol_h, is2d), = embed_conformers(smiles, seed=seed)
    feat = featurize_mol(mol_h, max_atoms=max_atoms, crop_seed=0, coords_2d=is2d)
    heavy = AllChem.RemoveAllHs(Chem.Mol(mol_h))  # same heavy-atom order as featurize_mol
    heavy.RemoveAllConformers()
    AllChem.Compute2DCoords(heavy)
    c2 = heavy.GetConformer().GetPositions().astype(np.float32)
    n = heavy.GetNumAtoms()
    if n > max_atoms:  # the seeded crop of featurize_mol (crop_seed=0)
        c2 = c2[np.sort(np.random.default_rng(0).choice(n, size=max_atoms, replace=False))]
    feat["coord2d"] = c2
    feat["desc"] = descriptor_values(heavy)
    return feat


def _write_npz(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def build_shard(smiles: list[str], start: int, path, seed: int, max_atoms: int) -> tuple[int, int]:
    """Compute and atomically write one shard (corpus rows start..start+len). Returns (n_ok, n_failed)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    recs, index, failed = [], [], []
    for k, s in enumerate(smiles):
        try:
            recs.append(conformer_record(s, seed=seed, max_atoms=max_atoms))
            index.append(start + k)
        except Exception:
            failed.append(start + k)
    def cat(key, dtype, trail=()):  # concatenate over molecules; N x N arrays are flattened to (N*N, ...)
        parts = [r[key].reshape(-1, *trail) for r in recs]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros((0, *trail), dtype)

    arrays = {
        "index": np.asarray(index, np.int64), "failed": np.asarray(failed, np.int64),
        "n_atoms": np.asarray([len(r["src_tokens"]) for r in recs], np.int32),
        "is2d": np.asarray([r["coords_2d"] for r in recs], bool),
        "tokens": cat("src_tokens", np.uint8), "atom_feat": cat("atom_feat", np.uint8, (8,)),
        "degree": cat("degree", np.uint8), "coord3d": cat("src_coord", np.float32, (3,)),
        "coord2d": cat("coord2d", np.float32, (3,)), "edge_feat": cat("edge_feat", np.uint8, (3,)),
        "shortest_path": cat("shortest_path", np.int16),
        "desc": np.stack([r["desc"] for r in recs]) if recs else np.zeros((0, len(DESCRIPTORS)), np.float32),
    }
    _write_npz(Path(path), arrays)
    return len(index), len(failed)


def prepare_conformers(smiles: list[str], cache_dir, *, shard_size=500, seed=42, max_atoms=128, n_jobs=1,
                       verbose=True) -> list[Path]:
    """Compute missing shards (joblib over shards; each worker writes its own file). Returns all shard paths."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    meta = {"n": len(smiles), "shard_size": shard_size, "seed": seed, "max_atoms": max_atoms,
            "smiles_sha256": hashlib.sha256("\n".join(smiles).encode()).hexdigest()}
    meta_path = cache / "meta.json"
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        raise ValueError(f"{cache} holds conformers of a different corpus or settings; use a new output folder")
    meta_path.write_text(json.dumps(meta, indent=1))
    starts = list(range(0, len(smiles), shard_size))
    paths = [cache / f"shard_{i:05d}.npz" for i in range(len(starts))]
    todo = [i for i, p in enumerate(paths) if not p.exists()]
    if not todo:
        return paths
    t0, done, n_mol = time.time(), 0, 0
    if verbose:
        print(f"conformers: {len(todo)}/{len(paths)} shards to compute ({len(smiles)} molecules, n_jobs={n_jobs})",
              file=sys.stderr, flush=True)
    jobs = [(smiles[starts[i]:starts[i] + shard_size], starts[i], paths[i], seed, max_atoms) for i in todo]
    if n_jobs == 1 or len(jobs) == 1:
        results = (build_shard(*j) for j in jobs)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(build_shard)(*j) for j in jobs)
    for ok, bad in results:
        done, n_mol = done + 1, n_mol + ok + bad
        if verbose:
            rate = n_mol / max(time.time() - t0, 1e-9)
            print(f"conformers: {done}/{len(todo)} shards, {rate:.1f} mol/s, "
                  f"ETA {(sum(len(j[0]) for j in jobs) - n_mol) / max(rate, 1e-9):.0f}s", file=sys.stderr, flush=True)
    return paths


class ConformerStore:
    """All shards in memory, addressable by corpus row index."""

    def __init__(self, paths):
        parts = []
        for p in paths:
            with np.load(p, allow_pickle=False) as z:
                parts.append({k: z[k] for k in z.files})
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        self.failed = cat.pop("failed")
        self.index = cat.pop("index")
        self.n_atoms = cat.pop("n_atoms").astype(np.int64)
        self.arrays = cat
        self.atom_off = np.concatenate([[0], np.cumsum(self.n_atoms)])
        self.pair_off = np.concatenate([[0], np.cumsum(self.n_atoms**2)])
        self.row = {int(r): k for k, r in enumerate(self.index)}

    def __len__(self) -> int:
        return len(self.index)

    def get(self, k: int) -> dict:
        """Record k (position in the store, not the corpus row) as int64/float32 arrays."""
        a, n = self.arrays, int(self.n_atoms[k])
        s, e = self.atom_off[k], self.atom_off[k + 1]
        ps, pe = self.pair_off[k], self.pair_off[k + 1]
        atom_feat = a["atom_feat"][s:e].astype(np.int64)
        c = atom_feat[:, 0]
        return {
            "src_tokens": a["tokens"][s:e].astype(np.int64), "atom_feat": atom_feat,
            "degree": a["degree"][s:e].astype(np.int64),
            "edge_feat": a["edge_feat"][ps:pe].reshape(n, n, 3).astype(np.int64),
            "shortest_path": a["shortest_path"][ps:pe].reshape(n, n).astype(np.int64),
            "pair_type": np.stack(np.broadcast_arrays(c[:, None] + 1, c[None, :] + 129), axis=-1),
            "atom_mask": np.ones(n, np.int64), "coord3d": a["coord3d"][s:e], "coord2d": a["coord2d"][s:e],
            "desc": a["desc"][k],
        }


# ----------------------------------------------------------------------------------------- corruptions


def kabsch_align(mobile: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rigidly superpose `mobile` (N, 3) onto `target` (N, 3) (rotation + translation, no reflection)."""
    mc, tc = mobile.mean(0), target.mean(0)
    h = (mobile - mc).T @ (target - tc)  # (3, 3)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return ((mobile - mc) @ r.T + tc).astype(np.float32)


def n_to_mask(n: int, prob: float, rng: np.random.Generator) -> int:
    """Uni-Core's count: int(prob * N + U[0, 1)), capped at N."""
    return min(n, int(prob * n + rng.random()))


def corrupt(rec: dict, rng: np.random.Generator, obj) -> dict:
    """One training sample from a store record (shared/reference/unimol2.md §2):

    1. feature dropout with obj.drop_feat_prob: atom_feat = edge_feat = degree = 1, shortest_path = 511,
       pair_type = (2, 130); such samples always use the 3D conformer;
    2. otherwise the 2D layout replaces the 3D conformer with obj.use_2d_prob;
    3. the chosen coordinates are centred: that is the clean target;
    4. int(p·N + U) atoms get token 127 (no random/keep variants; their features are not masked);
    5. independently, int(p·N + U) atoms get uniform noise in [-noise, noise] Å per axis, and the noised
       structure is Kabsch-aligned back onto the clean one (obj.kabsch).
    """
    n = len(rec["src_tokens"])
    out = {k: rec[k] for k in ("atom_feat", "degree", "edge_feat", "shortest_path", "pair_type", "atom_mask")}
    dropped = rng.random() < obj.drop_feat_prob
    use_2d = False
    if dropped:
        out["atom_feat"] = np.ones_like(rec["atom_feat"])
        out["edge_feat"] = np.ones_like(rec["edge_feat"])
        out["degree"] = np.ones_like(rec["degree"])
        out["shortest_path"] = np.full_like(rec["shortest_path"], N_SHORTEST_DROPPED)
        out["pair_type"] = np.broadcast_to(np.array([2, 130], np.int64), rec["pair_type"].shape)
    else:
        use_2d = bool(rng.random() < obj.use_2d_prob)
    clean = (rec["coord2d"] if use_2d else rec["coord3d"]).astype(np.float32)
    clean = clean - clean.mean(0)
    tokens = rec["src_tokens"].copy()
    token_mask = np.zeros(n, bool)
    token_mask[rng.choice(n, n_to_mask(n, obj.mask_token_prob, rng), replace=False)] = True
    tokens[token_mask] = MASK_TOKEN
    noised = np.zeros(n, bool)
    noised[rng.choice(n, n_to_mask(n, obj.coord_noise_prob, rng), replace=False)] = True
    coord = clean.copy()
    if noised.any():
        coord[noised] += rng.uniform(-obj.noise, obj.noise, size=(int(noised.sum()), 3)).astype(np.float32)
        if obj.kabsch:
            coord = kabsch_align(coord, clean)
    out.update(src_tokens=tokens, src_coord=coord, target_tokens=rec["src_tokens"], target_coord=clean,
               token_mask=token_mask, noised=noised, dropped=dropped, use_2d=use_2d, desc=rec["desc"])
    return out


def collate_pretrain(samples: list[dict]) -> dict:
    """features.collate for the model inputs, plus padded targets and masks."""
    batch = collate(samples)
    B, N = batch["src_tokens"].shape
    tt, tc, tm = np.zeros((B, N), np.int64), np.zeros((B, N, 3), np.float32), np.zeros((B, N), bool)
    for b, s in enumerate(samples):
        k = len(s["src_tokens"])
        tt[b, :k], tc[b, :k], tm[b, :k] = s["target_tokens"], s["target_coord"], s["token_mask"]
    batch.update(target_tokens=torch.from_numpy(tt), target_coord=torch.from_numpy(tc),
                 token_mask=torch.from_numpy(tm), desc=torch.from_numpy(np.stack([s["desc"] for s in samples])))
    return batch


def epoch_batches(sizes: np.ndarray, batch_size: int, max_pairs: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Size-bucketed batches for one epoch: shuffle, sort within pools of 50 batches by size, cut at
    batch_size molecules or about B·L² <= max_pairs pair entries, shuffle the batches."""
    perm = rng.permutation(len(sizes))
    out: list[np.ndarray] = []
    pool = batch_size * 50
    for p in range(0, len(perm), pool):
        idx = perm[p:p + pool]
        idx = idx[np.argsort(sizes[idx], kind="stable")]
        cur: list[int] = []
        for i in idx:
            L = int(sizes[i]) + 1
            if cur and (len(cur) >= batch_size or (len(cur) + 1) * L * L > max_pairs):
                out.append(np.array(cur))
                cur = []
            cur.append(int(i))
        if cur:
            out.append(np.array(cur))
    order = rng.permutation(len(out))
    return [out[i] for i in order]
