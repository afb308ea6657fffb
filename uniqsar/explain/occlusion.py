"""Atom occlusion of the ensemble prediction.

An atom's weight is ``f(molecule) - f(molecule with that atom masked)``: positive when the atom pushes the
prediction up. ``f`` is the run's whole ensemble (value, or probability of class 1) on the molecule as
``predict`` sees it. Masking turns the atom into a dummy atom (``*``, atomic number 0, no charge, no
hydrogens) that keeps its bonds and ring membership: its element, charge and hydrogen count disappear from
every featurization at once (Morgan environments and the keys that contain it change, descriptors lose its
contributions, graph and SMILES models see a placeholder), so the same mask works for every member kind.

Indices: ``atom_index`` is the RDKit atom index of the input SMILES as parsed (``Chem.MolFromSmiles``),
before standardization. The run's standardization is applied to the parsed molecule with each atom tagged
by its input index; atoms that standardization removes (counter-ions, solvents under ``full``) cannot change
the prediction and get weight 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TAG = "uniqsar_input_index"


def _standardized_mol(smiles: str, mode: str):
    """(parsed mol, standardized mol whose atoms carry the input index in TAG)."""
    from rdkit import Chem

    from uniqsar.data.standardize import _full, _tools  # the exact steps standardize_one applies

    parsed = Chem.MolFromSmiles(smiles)
    mol = Chem.Mol(parsed)
    for a in mol.GetAtoms():
        a.SetIntProp(TAG, a.GetIdx())
    if mode == "full":
        mol = _full(mol, *_tools())
    return parsed, mol


def masked_variants(smiles: str, mode: str) -> tuple[object, list[str | None]]:
    """The parsed input molecule and, per input atom, the SMILES of the standardized molecule with that atom
    masked (None: the atom is not in the standardized molecule)."""
    from rdkit import Chem

    parsed, mol = _standardized_mol(smiles, mode)
    where = {a.GetIntProp(TAG): a.GetIdx() for a in mol.GetAtoms() if a.HasProp(TAG)}
    out = []
    for i in range(parsed.GetNumAtoms()):
        if i not in where:
            out.append(None)
            continue
        rw = Chem.RWMol(mol)
        a = rw.GetAtomWithIdx(where[i])
        a.SetAtomicNum(0)
        a.SetFormalCharge(0)
        a.SetIsotope(0)
        a.SetNoImplicit(True)
        a.SetNumExplicitHs(0)
        a.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
        rw.UpdatePropertyCache(strict=False)
        out.append(Chem.MolToSmiles(rw))
    return parsed, out


def explain_smiles(run, smiles: list, targets: list[str] | None = None, batch: int = 2000):
    """Weights for each input SMILES. Returns (rows DataFrame: row, target, atom_index, symbol, weight;
    per-row info dict: row -> {"mol": parsed mol, "pred": {target: value}} or {"error": reason})."""
    from uniqsar.data.standardize import standardize_one

    unknown = [t for t in targets or [] if t not in run.targets]
    if unknown:
        raise ValueError(f"unknown target(s) {unknown}; this run has {run.targets}")
    targets = targets or run.targets
    info, jobs = {}, []  # jobs: (row, reference SMILES, variants)
    for r, s in enumerate(smiles):
        canonical, reason = standardize_one(s, run.standardize)
        if canonical is None:
            info[r] = {"error": reason}
            continue
        parsed, variants = masked_variants(s.strip(), run.standardize)
        info[r] = {"mol": parsed}
        jobs.append((r, canonical, variants))
    records = []
    queue: list[str] = []
    pending: list[tuple] = []

    def flush():
        if not queue:
            return
        preds = run.predict_canonical(queue)
        for r, start, variants, mol in pending:
            for t in targets:
                p = preds[t][start: start + 1 + sum(v is not None for v in variants)]
                if p.ndim == 2:  # multiclass: the probability of the class predicted for the whole molecule
                    p = p[:, int(np.argmax(p[0]))]
                info[r].setdefault("pred", {})[t] = float(p[0])
                k = 1
                for i, v in enumerate(variants):
                    w = 0.0 if v is None else float(p[0] - p[k])
                    k += v is not None
                    records.append((r, t, i, mol.GetAtomWithIdx(i).GetSymbol(), w))
        queue.clear()
        pending.clear()

    for r, canonical, variants in jobs:
        if len(queue) + 1 + len(variants) > batch:
            flush()
        pending.append((r, len(queue), variants, info[r]["mol"]))
        queue.append(canonical)
        queue.extend(v for v in variants if v is not None)
    flush()
    rows = pd.DataFrame(records, columns=["row", "target", "atom_index", "symbol", "weight"])
    rows = rows.sort_values(["row", "target", "atom_index"], kind="stable").reset_index(drop=True)
    return rows, info
