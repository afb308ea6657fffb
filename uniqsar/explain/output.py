"""``uniqsar explain``: ``DIR/atom_weights.csv`` and one ``DIR/<row>_<target>.svg`` per explained row."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from uniqsar.explain.draw import weights_svg
from uniqsar.explain.occlusion import explain_smiles
from uniqsar.io.layout import safe_name


def explain_to_dir(run, smiles: list, out, targets: list[str] | None = None) -> dict:
    """Explain ``smiles`` (rows in order) with ``run``; returns counts and the invalid rows' reasons."""
    rows, info = explain_smiles(run, smiles, targets)
    targets = targets or run.targets
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "atom_weights.csv.tmp"
    rows.to_csv(tmp, index=False)
    tmp.replace(out / "atom_weights.csv")
    n_svg = 0
    for r, rec in info.items():
        if "mol" not in rec:
            continue
        for t in targets:
            w = rows[(rows["row"] == r) & (rows["target"] == t)].sort_values("atom_index")["weight"].to_numpy()
            kind = {"binary": "P(1)", "multiclass": "P(predicted class)"}.get(run.task(t), "predicted")
            svg = weights_svg(rec["mol"], w, f"row {r}: {t} {kind} {rec['pred'][t]:.3g}")
            (out / f"{r}_{safe_name(t)}.svg").write_text(svg)
            n_svg += 1
    errors = {r: rec["error"] for r, rec in info.items() if "error" in rec}
    return {"n_rows": len(smiles), "n_explained": len(smiles) - len(errors), "n_svg": n_svg, "errors": errors,
            "max_abs_weight": float(np.abs(rows["weight"]).max()) if len(rows) else 0.0}
