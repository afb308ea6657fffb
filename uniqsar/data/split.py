"""Cross-validation folds: Murcko-scaffold grouped, size-balanced, stratified for binary, seeded."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def murcko_scaffold(smiles: str) -> str:
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return smiles
    try:
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)
    except Exception:
        return smiles


def scaffold_folds(smiles: Sequence[str], n_folds: int, seed: int, y: np.ndarray | None = None) -> np.ndarray:
    """Assign each molecule a fold in ``0..n_folds-1`` so that no scaffold spans two folds.

    Groups are placed largest first (ties in seeded random order) into the fold that is
    furthest below its share; for binary ``y`` the positives' share counts as well, so folds
    stay stratified. Acyclic molecules share the empty scaffold and form one group, as in
    TDC; if that group is too large for balance it still stays in one fold.
    """
    n = len(smiles)
    if n_folds < 2:
        raise ValueError("n_folds must be >= 2")
    scaffolds = [murcko_scaffold(s) for s in smiles]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(scaffolds):
        groups.setdefault(s, []).append(i)
    members = list(groups.values())
    if len(members) < n_folds:
        return random_folds(n, n_folds, seed, y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(members))
    order = sorted(order, key=lambda g: -len(members[g]))  # stable: random among equal sizes
    size = np.zeros(n_folds)
    pos = np.zeros(n_folds)
    total_pos = float(np.nansum(y)) if y is not None else 0.0
    folds = np.empty(n, dtype=np.int64)
    for g in order:
        idx = members[g]
        deficit = size / n
        if y is not None and total_pos > 0:
            deficit = deficit + pos / total_pos
        f = int(np.argmin(deficit + 1e-9 * np.arange(n_folds)))
        folds[idx] = f
        size[f] += len(idx)
        if y is not None:
            pos[f] += float(np.nansum(y[idx]))
    return folds


def random_folds(n: int, n_folds: int, seed: int, y: np.ndarray | None = None) -> np.ndarray:
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = np.empty(n, dtype=np.int64)
    if y is not None and len(np.unique(y)) == 2 and np.bincount(y.astype(int)).min() >= n_folds:
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(n), y)
    else:
        splitter = KFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(n))
    for f, (_, test) in enumerate(splitter):
        folds[test] = f
    return folds


def make_folds(smiles: Sequence[str], n_folds: int, seed: int, kind: str = "scaffold",
               y: np.ndarray | None = None) -> np.ndarray:
    n_folds = min(n_folds, len(smiles))
    if kind == "scaffold":
        return scaffold_folds(smiles, n_folds, seed, y)
    if kind == "random":
        return random_folds(len(smiles), n_folds, seed, y)
    raise ValueError(f"unknown split {kind!r}; use scaffold or random")
