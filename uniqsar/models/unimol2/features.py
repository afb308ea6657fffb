"""Uni-Mol2 input features: SMILES / RDKit mol -> per-molecule integer arrays + heavy-atom coordinates.

Bit-for-bit the unimol_tools 0.1.6 featurizer (shared/reference/unimol2.md §1.2), with three deliberate
differences, none of which changes the output of a molecule the reference can handle:
  * Cropping above `max_atoms` uses a seeded `np.random.default_rng(crop_seed)`, never the global RNG.
  * Chirality / bond-stereo tags unknown to the OGB lists (newer RDKit: CHI_TETRAHEDRAL, CHI_ALLENE,
    STEREOATROPCW/CCW, ...) go to the last slot of their list (CHI_OTHER / STEREOANY, the "misc" slot)
    instead of raising like the reference's `.index`.
  * A failed 3D embedding falls back to 2D coordinates (as the reference) and is flagged `coords_2d=True`;
    an unparsable SMILES or any exception gives None plus a reason instead of crashing the batch.

Per-molecule dict (N heavy atoms after the crop):
  src_tokens [N] int64 atomic numbers      atom_feat [N, 8] int64 (v_k + 16k + 3)   degree [N] (+2)
  edge_feat [N, N, 3] (type+4, stereo+20, conj+36; 2 if not bonded)   shortest_path [N, N] hops+1, 511 unreachable
  pair_type [N, N, 2] (a_i+1, a_j+129), a = atom_feat[:, 0] (chirality+3, not the element: upstream quirk)
  atom_mask [N] ones    src_coord [N, 3] float32 (Angstrom, not centred)    coords_2d bool
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem
from scipy.sparse.csgraph import shortest_path as _csgraph_shortest_path

CHIRALITY = ["CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_TRIGONALBIPYRAMIDAL",
             "CHI_OCTAHEDRAL", "CHI_SQUAREPLANAR", "CHI_OTHER"]
HYBRIDIZATION = ["SP", "SP2", "SP3", "SP3D", "SP3D2"]  # anything else -> 5 (misc)
BOND_TYPE = ["SINGLE", "DOUBLE", "TRIPLE", "AROMATIC"]  # anything else -> 4 (misc)
BOND_STEREO = ["STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY"]
UNREACHABLE = 510  # Floyd-Warshall cap upstream; stored +1 -> 511
KEYS = ("src_tokens", "atom_feat", "degree", "edge_feat", "shortest_path", "pair_type", "atom_mask", "src_coord")


def _slot(values: list, v) -> int:
    """Index of v in values, or the last index (misc) when absent."""
    try:
        return values.index(v)
    except ValueError:
        return len(values) - 1


def _clip_slot(v: int, lo: int, hi: int) -> int:
    """OGB integer list lo..hi plus a trailing misc slot."""
    return v - lo if lo <= v <= hi else hi - lo + 1


def atom_fields(atom) -> list[int]:
    """The 8 non-element OGB atom fields, as list indices."""
    return [
        _slot(CHIRALITY, str(atom.GetChiralTag())),
        _clip_slot(atom.GetTotalDegree(), 0, 10),
        _clip_slot(atom.GetFormalCharge(), -5, 5),
        _clip_slot(atom.GetTotalNumHs(), 0, 8),
        _clip_slot(atom.GetNumRadicalElectrons(), 0, 4),
        _slot(HYBRIDIZATION + ["misc"], str(atom.GetHybridization())),
        int(atom.GetIsAromatic()),
        int(atom.IsInRing()),
    ]


def bond_fields(bond) -> list[int]:
    return [
        _slot(BOND_TYPE + ["misc"], str(bond.GetBondType())),
        _slot(BOND_STEREO, str(bond.GetStereo())),
        int(bond.GetIsConjugated()),
    ]


def graph_features(mol, keep: np.ndarray | None = None) -> dict:
    """Integer graph features of an H-free mol; `keep` (sorted atom indices) applies the crop afterwards,
    so degree / shortest paths / pair types are computed on the full molecule, as upstream."""
    n = mol.GetNumAtoms()
    fields = np.array([atom_fields(a) for a in mol.GetAtoms()], dtype=np.int64).reshape(n, 8)
    atom_feat = fields + 16 * np.arange(8) + 3  # (N, 8) values 3..130
    adj = np.zeros((n, n), dtype=np.int64)
    edge_feat = np.full((n, n, 3), 2, dtype=np.int64)
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        e = np.array(bond_fields(b)) + np.array([4, 20, 36])
        adj[i, j] = adj[j, i] = 1
        edge_feat[i, j] = edge_feat[j, i] = e
    hops = _csgraph_shortest_path(adj, method="D", unweighted=True, directed=False)  # inf if unreachable
    hops = np.minimum(np.nan_to_num(hops, posinf=UNREACHABLE), UNREACHABLE).astype(np.int64)
    a = atom_feat[:, 0]
    pair_type = np.stack(np.broadcast_arrays(a[:, None] + 1, a[None, :] + 129), axis=-1)  # (N, N, 2)
    feat = {
        "atom_feat": atom_feat,
        "degree": adj.sum(-1) + 2,
        "edge_feat": edge_feat,
        "shortest_path": hops + 1,
        "pair_type": pair_type,
    }
    if keep is not None:
        feat = {k: (v[keep][:, keep] if v.ndim >= 2 and k != "atom_feat" else v[keep]) for k, v in feat.items()}
    m = len(feat["degree"])
    feat["atom_mask"] = np.ones(m, dtype=np.int64)
    return feat


#: seconds one ETKDG embedding may run before the molecule takes the failure path (2D layout, flagged): a few
#: molecules (crowded, helicene-like polycycles) otherwise run ETKDG for minutes and then fail anyway. A molecule
#: near the limit can embed on a fast machine and not on a slow one; the conformer cache keeps what was computed.
EMBED_TIMEOUT_S = 10


def _etkdg(seed: int, timeout: int):
    """The parameters of ``EmbedMolecule(mol, randomSeed=seed)`` (the unimol_tools call: its keyword defaults,
    which differ from ``ETKDGv2()``'s object for macrocycles) as an object, plus an embedding timeout (whole
    seconds; 0 = none). Same coordinates as the keyword call (tests/unit/unimol2)."""
    p = AllChem.ETKDGv2()
    p.randomSeed = int(seed)
    p.maxIterations = 0  # maxAttempts=0
    p.clearConfs, p.useRandomCoords, p.boxSizeMult, p.randNegEig, p.numZeroFail = True, False, 2.0, True, 1
    p.optimizerForceTol, p.ignoreSmoothingFailures, p.enforceChirality = 1e-3, False, True
    p.useExpTorsionAnglePrefs, p.useBasicKnowledge, p.useSmallRingTorsions = True, True, False
    p.useMacrocycleTorsions, p.useMacrocycle14config = True, True
    p.timeout = max(0, int(timeout))
    return p


def embed_conformers(smiles_or_mol, seed: int = 42, n_conformers: int = 1, timeout: int | None = None):
    """Reference conformer protocol: AddHs, EmbedMolecule(randomSeed) (ETKDG), MMFF optimise; failure (or ETKDG
    still running after ``timeout`` s, default ``EMBED_TIMEOUT_S``) -> Compute2DCoords. Conformer k uses seed + k
    (k = 0 is exactly the reference). Returns [(mol_with_H, is_2d)]."""
    timeout = EMBED_TIMEOUT_S if timeout is None else timeout
    mol = Chem.MolFromSmiles(smiles_or_mol) if isinstance(smiles_or_mol, str) else Chem.Mol(smiles_or_mol)
    if mol is None:
        raise ValueError("RDKit could not parse the SMILES")
    mol = AllChem.AddHs(mol)
    if mol.GetNumAtoms() == 0:
        raise ValueError("molecule has no atoms")
    out = []
    for k in range(n_conformers):
        m = Chem.Mol(mol)
        m.RemoveAllConformers()
        try:
            ok = AllChem.EmbedMolecule(m, _etkdg(seed + k, timeout)) == 0
        except Exception:
            ok = False
        if ok:
            try:
                AllChem.MMFFOptimizeMolecule(m)
            except Exception:
                pass  # some molecules have no MMFF parameters; keep the ETKDG geometry, as upstream
        else:
            AllChem.Compute2DCoords(m)
        out.append((m, not ok))
    return out


def featurize_mol(mol, *, max_atoms: int = 128, crop_seed: int = 0, coords_2d: bool = False) -> dict:
    """Features of an RDKit mol that carries a conformer (hydrogens are removed here, as upstream)."""
    mol = AllChem.RemoveAllHs(mol)
    n = mol.GetNumAtoms()
    if n == 0:
        raise ValueError("no heavy atoms")
    coords = mol.GetConformer().GetPositions().astype(np.float32)  # (N, 3)
    keep = None
    if n > max_atoms:  # seeded crop, original order kept
        keep = np.sort(np.random.default_rng(crop_seed).choice(n, size=max_atoms, replace=False))
    feat = graph_features(mol, keep)
    tokens = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    feat["src_tokens"] = tokens if keep is None else tokens[keep]
    feat["src_coord"] = coords if keep is None else coords[keep]
    feat["coords_2d"] = bool(coords_2d)  # 3D embedding failed -> 2D layout (z = 0)
    return feat


def featurize_smiles(smiles, *, seed: int = 42, n_conformers: int = 1, max_atoms: int = 128, crop_seed: int = 0):
    """(list of n_conformers feature dicts, None) or (None, reason). Never raises."""
    RDLogger.DisableLog("rdApp.*")
    try:
        confs = embed_conformers(smiles, seed=seed, n_conformers=n_conformers)
        return [featurize_mol(m, max_atoms=max_atoms, crop_seed=crop_seed, coords_2d=is2d) for m, is2d in confs], None
    except Exception as e:  # one bad molecule must not sink the batch
        return None, f"{type(e).__name__}: {e}"


def featurize(smiles: list, *, n_jobs: int = 1, seed: int = 42, n_conformers: int = 1, max_atoms: int = 128,
              crop_seed: int = 0, verbose: bool = False):
    """Featurize many molecules (joblib over molecules). Returns (features, reasons), aligned with the input:
    features[i] is a list of conformer dicts or None; reasons[i] is None or why it failed."""
    kw = dict(seed=seed, n_conformers=n_conformers, max_atoms=max_atoms, crop_seed=crop_seed)
    if n_jobs == 1 or len(smiles) < 8:
        results = []
        for i, s in enumerate(smiles):
            results.append(featurize_smiles(s, **kw))
            if verbose and (i + 1) % 100 == 0:
                print(f"\rUni-Mol2 conformers: {i + 1}/{len(smiles)}", end="", file=sys.stderr, flush=True)
        if verbose and len(smiles) >= 100:
            print(file=sys.stderr)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, verbose=10 if verbose else 0)(
            delayed(featurize_smiles)(s, **kw) for s in smiles
        )
    return [r[0] for r in results], [r[1] for r in results]


def collate(feats: list[dict], pad_to_multiple: int = 1) -> dict:
    """Right-pad a list of feature dicts with 0 into batch tensors (B, N, ...). Accepts reference dicts too."""
    n = [len(f["src_tokens"]) for f in feats]
    N = max(n)
    if pad_to_multiple > 1:  # padded L = N + 1 rounded up, as the original Uni-Core collate
        N = -(-(N + 1) // pad_to_multiple) * pad_to_multiple - 1
    B = len(feats)
    out = {
        "src_tokens": np.zeros((B, N), np.int64),
        "atom_feat": np.zeros((B, N, 8), np.int64),
        "degree": np.zeros((B, N), np.int64),
        "edge_feat": np.zeros((B, N, N, 3), np.int64),
        "shortest_path": np.zeros((B, N, N), np.int64),
        "pair_type": np.zeros((B, N, N, 2), np.int64),
        "atom_mask": np.zeros((B, N), np.int64),
        "src_coord": np.zeros((B, N, 3), np.float32),
    }
    for b, f in enumerate(feats):
        k = n[b]
        for key, arr in out.items():
            v = np.asarray(f[key])
            if key in ("edge_feat", "shortest_path", "pair_type"):
                arr[b, :k, :k] = v
            else:
                arr[b, :k] = v
    return {k: torch.from_numpy(v) for k, v in out.items()}


def iter_batches(sizes, batch_size: int = 32, max_pairs: int = 32 * 64 * 64):
    """Yield index arrays of molecules sorted by size: at most batch_size molecules and about B·L² <= max_pairs
    pair entries per batch (the pair track dominates memory). Order inside is by size for little padding."""
    sizes = np.asarray(sizes)
    order = np.argsort(sizes, kind="stable")
    batch: list[int] = []
    for i in order:
        L = int(sizes[i]) + 1
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * L * L > max_pairs):
            yield np.array(batch)
            batch = []
        batch.append(int(i))
    if batch:
        yield np.array(batch)
