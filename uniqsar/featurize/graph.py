"""Molecular graphs for message passing (D-MPNN): RDKit atom/bond features + directed-bond indices.

A molecule becomes a :class:`MolGraph` of NumPy arrays, computed once per molecule and reused for
every epoch. Each chemical bond i gives two directed bonds ``2i`` (a -> b) and ``2i + 1``
(b -> a), so the reverse of directed bond ``e`` is ``e ^ 1``. :func:`collate_graphs` joins
several graphs into one disconnected graph (indices offset), so a batch is a few tensor ops.

Atom features (``ATOM_DIM``): one-hot element (common organic + inorganic elements, + other),
degree 0-5 (+ other), formal charge -2..2 (+ other), chirality tag (+ other), total H count 0-4
(+ other), hybridization (+ other), aromatic flag, mass / 100.
Bond features (``BOND_DIM``): type (single/double/triple/aromatic), conjugated, in ring, stereo
one-hot (+ other).

Not a vector featurizer (no registry entry): the output is a graph, not an ``(n, d)`` matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

ELEMENTS = ("H", "B", "C", "N", "O", "F", "Na", "Mg", "Si", "P", "S", "Cl", "K", "Ca", "Fe",
            "Cu", "Zn", "As", "Se", "Br", "Sn", "I", "Pt", "Hg")
DEGREES = (0, 1, 2, 3, 4, 5)
CHARGES = (-2, -1, 0, 1, 2)
CHIRAL_TAGS = ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER")
NUM_HS = (0, 1, 2, 3, 4)
HYBRIDIZATIONS = ("S", "SP", "SP2", "SP3", "SP3D", "SP3D2")
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
BOND_STEREO = ("STEREONONE", "STEREOANY", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS")

#: every one-hot block has a trailing "other" slot
ATOM_DIM = sum(len(v) + 1 for v in (ELEMENTS, DEGREES, CHARGES, CHIRAL_TAGS, NUM_HS, HYBRIDIZATIONS)) + 2
BOND_DIM = len(BOND_TYPES) + 2 + len(BOND_STEREO) + 1
#: bump when the features change (saved models record it and refuse a mismatch)
GRAPH_VERSION = "1"


def _onehot(value, choices) -> list[float]:
    out = [0.0] * (len(choices) + 1)
    try:
        out[choices.index(value)] = 1.0
    except ValueError:
        out[-1] = 1.0
    return out


def atom_features(atom) -> list[float]:
    return (_onehot(atom.GetSymbol(), ELEMENTS)
            + _onehot(atom.GetTotalDegree(), DEGREES)
            + _onehot(atom.GetFormalCharge(), CHARGES)
            + _onehot(str(atom.GetChiralTag()), CHIRAL_TAGS)
            + _onehot(atom.GetTotalNumHs(), NUM_HS)
            + _onehot(str(atom.GetHybridization()), HYBRIDIZATIONS)
            + [1.0 if atom.GetIsAromatic() else 0.0, 0.01 * atom.GetMass()])


def bond_features(bond) -> list[float]:
    bt = str(bond.GetBondType())
    types = [1.0 if bt == t else 0.0 for t in BOND_TYPES]
    return (types + [1.0 if bond.GetIsConjugated() else 0.0, 1.0 if bond.IsInRing() else 0.0]
            + _onehot(str(bond.GetStereo()), BOND_STEREO))


@dataclass(frozen=True)
class MolGraph:
    """One molecule. ``src``/``dst``: atom index at the tail/head of each directed bond."""

    V: np.ndarray    # (A, ATOM_DIM) float32
    E: np.ndarray    # (2B, BOND_DIM) float32, directed bond 2i / 2i+1 share chemical bond i
    src: np.ndarray  # (2B,) int64
    dst: np.ndarray  # (2B,) int64

    @property
    def n_atoms(self) -> int:
        return int(self.V.shape[0])


def mol_to_graph(mol) -> MolGraph:
    V = np.asarray([atom_features(a) for a in mol.GetAtoms()], dtype=np.float32).reshape(-1, ATOM_DIM)
    n_bonds = mol.GetNumBonds()
    E = np.empty((2 * n_bonds, BOND_DIM), dtype=np.float32)
    src = np.empty(2 * n_bonds, dtype=np.int64)
    dst = np.empty(2 * n_bonds, dtype=np.int64)
    for i, bond in enumerate(mol.GetBonds()):
        a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        f = bond_features(bond)
        E[2 * i] = f
        E[2 * i + 1] = f
        src[2 * i], dst[2 * i] = a, b
        src[2 * i + 1], dst[2 * i + 1] = b, a
    return MolGraph(V, E, src, dst)


def smiles_to_graphs(smiles: Sequence[str]) -> list[MolGraph | None]:
    """One graph per SMILES; ``None`` where RDKit cannot parse it or it has no atoms."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    out: list[MolGraph | None] = []
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) and smi else None
        if mol is None or mol.GetNumAtoms() == 0:
            out.append(None)
            continue
        try:
            out.append(mol_to_graph(mol))
        except Exception:  # one odd molecule must not kill a run
            out.append(None)
    return out


def collate_graphs(graphs: Sequence[MolGraph]) -> dict[str, np.ndarray]:
    """Join graphs into one disconnected graph. ``batch[a]`` = molecule of atom ``a``;
    ``rev[e]`` = the directed bond opposite to ``e``."""
    n_atoms = np.fromiter((g.n_atoms for g in graphs), dtype=np.int64, count=len(graphs))
    n_edges = np.fromiter((g.src.shape[0] for g in graphs), dtype=np.int64, count=len(graphs))
    atom_off = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    V = np.concatenate([g.V for g in graphs], axis=0)
    E = np.concatenate([g.E for g in graphs], axis=0) if n_edges.sum() else np.zeros((0, BOND_DIM), np.float32)
    src = np.concatenate([g.src + o for g, o in zip(graphs, atom_off)])
    dst = np.concatenate([g.dst + o for g, o in zip(graphs, atom_off)])
    rev = np.arange(int(n_edges.sum()), dtype=np.int64) ^ 1  # every graph has an even edge count
    batch = np.repeat(np.arange(len(graphs), dtype=np.int64), n_atoms)
    return {"V": V, "E": E, "src": src, "dst": dst, "rev": rev, "batch": batch, "n_atoms": n_atoms}
