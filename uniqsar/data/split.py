"""Cross-validation folds: Murcko-scaffold grouped, size-balanced, stratified by class (binary, multiclass), seeded."""
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
    stay stratified; for class indices with more than two classes (multiclass) every class's share
    counts the same way. Acyclic molecules share the empty scaffold and form one group, as in
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
    multi = y is not None and len(np.unique(y[~np.isnan(y)])) > 2
    if multi:
        codes = np.nan_to_num(y, nan=-1).astype(int)
        onehot = np.stack([codes == k for k in range(codes.max() + 1)], axis=1).astype(float)  # (n, K)
        totals = np.maximum(onehot.sum(axis=0), 1.0)
        per_fold = np.zeros((n_folds, onehot.shape[1]))
    binary = not multi and y is not None and np.nansum(y) > 0 and np.nansum(1 - y) > 0
    if binary:
        pos_total, neg_total = float(np.nansum(y)), float(np.nansum(1 - y))
    size = np.zeros(n_folds)
    pos = np.zeros(n_folds)
    neg = np.zeros(n_folds)
    folds = np.empty(n, dtype=np.int64)
    tiebreak = 1e-9 * np.arange(n_folds)
    for g in order:
        idx = members[g]
        if binary:
            # put the group where its classes are most lacking: a group of positives goes to
            # the fold with the smallest share of positives, and so on
            p_g, n_g = float(np.nansum(y[idx])), float(np.nansum(1 - y[idx]))
            cost = p_g * pos / pos_total + n_g * neg / neg_total
        elif multi:
            counts = onehot[idx].sum(axis=0)  # the group's class counts: to the fold that lacks them most
            cost = per_fold @ (counts / totals)
        else:
            cost = size / n
        f = int(np.argmin(cost + tiebreak))
        folds[idx] = f
        size[f] += len(idx)
        if multi:
            per_fold[f] += onehot[idx].sum(axis=0)
        if binary:
            pos[f] += p_g
            neg[f] += n_g
    return folds


def random_folds(n: int, n_folds: int, seed: int, y: np.ndarray | None = None) -> np.ndarray:
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = np.empty(n, dtype=np.int64)
    if y is not None and len(np.unique(y)) >= 2 and np.bincount(y.astype(int)).min() >= n_folds:
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
