"""Regenerate the Uni-Mol2 parity fixtures from the reference implementation (unimol_tools==0.1.6 + numba).

    python tests/data/unimol2/make_fixtures.py

Writes, beside this file:
  ref_features.npz      reference featurizer output for reference.PARITY_SMILES (fed to both models)
  tiny_ref_random.pt    the tiny reference model with every parameter randomised (seed 0), {'model': sd}
  tiny_ref_outputs.npz  its batch-size-1 outputs (cls, atoms, coords) on those features, so the parity test
                        still checks something when unimol_tools is not installed
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "unit" / "unimol2"))

import reference as R  # noqa: E402


def main():
    os.environ["HF_HUB_OFFLINE"] = "1"
    import numba  # noqa: F401  (without numba, unimol_tools 0.1.6 silently skips Floyd-Warshall)

    smiles = R.PARITY_SMILES
    feats, _ = R.reference_featurize(smiles)
    R.save_features_npz(HERE / "ref_features.npz", feats, smiles)
    _, feats = R.load_features_npz(HERE / "ref_features.npz")
    with tempfile.TemporaryDirectory() as tmp:
        model = R.build_reference(tmp, "tiny", seed=0)
    torch.save({"model": model.state_dict()}, HERE / "tiny_ref_random.pt")
    arrays = {}
    for i, f in enumerate(feats):
        cls, atoms, coords = R.reference_forward(model, f)
        arrays[f"{i}/cls"], arrays[f"{i}/atoms"], arrays[f"{i}/coords"] = cls, atoms, coords
    np.savez_compressed(HERE / "tiny_ref_outputs.npz", **arrays)
    print("heavy atoms per molecule:", [len(f["src_tokens"]) for f in feats])


if __name__ == "__main__":
    main()
