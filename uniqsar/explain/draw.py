"""One SVG per explained row: the input molecule drawn by RDKit, atoms coloured by signed weight
(red pushes the prediction up, blue down; intensity relative to the molecule's largest |weight|)."""
from __future__ import annotations

import numpy as np


def _colour(w: float, scale: float) -> tuple[float, float, float]:
    t = min(1.0, abs(w) / scale) if scale > 0 else 0.0
    return (1.0, 1.0 - 0.75 * t, 1.0 - 0.75 * t) if w > 0 else (1.0 - 0.75 * t, 1.0 - 0.75 * t, 1.0)


def weights_svg(mol, weights: np.ndarray, legend: str = "", size: tuple[int, int] = (420, 340)) -> str:
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = Chem.Mol(mol)
    weights = np.asarray(weights, float)
    scale = float(np.nanmax(np.abs(weights))) if len(weights) and np.isfinite(weights).any() else 0.0
    top = set(np.argsort(-np.abs(np.nan_to_num(weights)))[:3].tolist()) if scale > 0 else set()
    for a in mol.GetAtoms():
        if a.GetIdx() in top:  # label the three strongest atoms with their weight
            a.SetProp("atomNote", f"{weights[a.GetIdx()]:+.2g}")
    colours = {i: _colour(w, scale) for i, w in enumerate(weights) if np.isfinite(w) and w != 0}
    d = rdMolDraw2D.MolDraw2DSVG(*size)
    opts = d.drawOptions()
    opts.annotationFontScale = 0.7
    opts.legendFontSize = 14
    rdMolDraw2D.PrepareAndDrawMolecule(d, mol, legend=legend, highlightAtoms=list(colours),
                                       highlightAtomColors=colours, highlightBonds=[])
    d.FinishDrawing()
    return d.GetDrawingText()
