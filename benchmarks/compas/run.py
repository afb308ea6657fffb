"""COMPAS-1D aEA / aIP / dispersion / dipole: do uniqsar's 3D arms (Uni-Mol2) beat its 2D ones? (issue 20 item 4)

Data: COMPAS-1D (Wahab et al., J. Chem. Inf. Model. 2022, doi:10.1021/acs.jcim.2c00503), 8,678 cata-condensed
polybenzenoid hydrocarbons with GFN2-xTB properties, read from `../shared/data/compas1d/COMPAS-1D.csv`
(`--data` to point elsewhere). Licence CC BY-NC-SA 4.0: benchmark use only; the data is never copied into
this repository (see that folder's README). Targets aEA_eV, aIP_eV, dispersion_eV (eV) and Dipmom_Debye
(Debye), fitted jointly by the torch learners. No coordinates ship with it: Uni-Mol2 gets uniqsar's RDKit
conformers, with ETKDG abandoned after `--embed-timeout` seconds (default 3 s; see README.md).

Protocol and arms: `benchmarks/threed_common.py`. Run (resumable per arm and seed), then tabulate:

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/compas/run.py --seeds 1 2 3
    python benchmarks/compas/run.py --summarize
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from threed_common import Dataset, main  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "compas1d" / "COMPAS-1D.csv"
TARGETS = {"aEA": "aEA_eV", "aIP": "aIP_eV", "dispersion": "dispersion_eV", "Dipmom": "Dipmom_Debye"}
UNITS = {"aEA": "eV", "aIP": "eV", "dispersion": "eV", "Dipmom": "D"}
DEFAULTS = {"pool": 1000, "n_train": 200, "n_valid": 50, "n_test": 0, "epochs": 3, "embed_timeout": 3}
# Uni-Mol2 paper (Ji et al. 2024, arXiv 2406.14969), scaffold-similarity split 80/10/10, 3 seeds, full data;
# units not stated there (values from ../shared/data/compas1d/README.md)
PAPER = {"Uni-Mol": {"aEA": 0.0099, "aIP": 0.0083, "dispersion": 0.0092, "Dipmom": 0.0198},
         "Uni-Mol2 84M": {"aEA": 0.0104, "aIP": 0.0081, "dispersion": 0.0092, "Dipmom": 0.0196},
         "Uni-Mol2 1.1B": {"aEA": 0.0103, "aIP": 0.0080, "dispersion": 0.0081, "Dipmom": 0.0186}}


def load(path: Path) -> Dataset:
    import pandas as pd

    if not path.is_file():
        raise SystemExit(f"COMPAS-1D not found at {path}: it is not bundled (CC BY-NC-SA 4.0); place "
                         "COMPAS-1D.csv from the COMPAS project there (see ../shared/data/compas1d/README.md) or "
                         "pass --data PATH")
    df = pd.read_csv(path)
    missing = [c for c in ["smiles", *TARGETS.values()] if c not in df.columns]
    if missing:
        raise SystemExit(f"{path} lacks column(s) {missing}; this benchmark needs the layout with dispersion_eV")
    return Dataset(name="COMPAS-1D", smiles=df["smiles"].tolist(), Y=df[list(TARGETS.values())].to_numpy(np.float64),
                   targets=list(TARGETS), unit=UNITS, source=f"{path} ({len(df)} rows)", paper=PAPER,
                   paper_note="Paper rows: full data (~6,900 training molecules), their scaffold-similarity split, "
                              "GPU, 84M / 1.1B-parameter models; the paper does not state units, and its values "
                              "are far below the spread of these targets (sd: aEA 0.22 eV, aIP 0.19 eV, "
                              "dispersion 0.44 eV, Dipmom 0.093 D), so they are probably on a normalized scale and "
                              "not comparable with ours. Every COMPAS molecule is all rings, so its Murcko "
                              "scaffold is itself: our scaffold split is a random split here.")


if __name__ == "__main__":
    argv = sys.argv[1:]
    path = DATA
    if "--data" in argv:
        i = argv.index("--data")
        path = Path(argv[i + 1])
        del argv[i:i + 2]
    main(load(path), argv=argv, defaults=DEFAULTS)
