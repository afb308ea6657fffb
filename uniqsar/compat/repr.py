"""``UniMolRepr``: unimol_tools 0.1.6's representation API on uniqsar's Uni-Mol2.

Same arguments, same return shapes: ``get_repr(smiles)`` is a list of (D,) float32 arrays (``return_tensor=True``:
one (n, D) tensor); with ``return_atomic_reprs=True`` a dict of lists: ``cls_repr`` (D,), ``atomic_reprs`` (N, D),
``atomic_coords`` (N, 3) and ``atomic_symbol`` (N,) - for Uni-Mol2 unimol_tools gives atomic *numbers* there, and so
does this class. N counts heavy atoms in the RDKit order of the SMILES as written: Uni-Mol2 removes hydrogens
whatever ``remove_hs`` says, in unimol_tools and here.

What differs, on purpose: a molecule's vectors do not depend on the molecules it is batched with (unimol_tools pads
without masking, so its vectors change with ``batch_size`` and the batch; at batch size 1 the two agree to ~1e-6),
molecules above ``max_atoms`` are cropped with a seeded generator (unimol_tools: the global NumPy RNG), and a SMILES
RDKit cannot parse gives a NaN vector and no atoms, with a warning, instead of an exception for the whole call.
"""
from __future__ import annotations

import warnings

import numpy as np

from .common import (CompatError, CompatWarning, Unset, check_data_type, read_input, resolve_weights,
                     warn_speed_only)

OWNER = "UniMolRepr"


class UniMolRepr:
    def __init__(self, cfg=None, data_type="molecule", batch_size=32, remove_hs=False, model_name="unimolv1",
                 model_size="84m", smiles_col="SMILES", use_cuda=True, use_ddp=Unset(False), use_gpu=Unset("all"),
                 save_path=None, pretrained_model_path=None, pretrained_dict_path=None, max_atoms=256, **kwargs):
        if cfg is not None:  # an omegaconf DictConfig or any mapping with these keys
            values = dict(cfg)
            unknown = set(values) - set(_ARGS)
            if unknown:
                raise CompatError(f"{OWNER}: cfg has unknown key(s) {sorted(unknown)}")
            loc = locals()
            args = {k: values.get(k, loc[k]) for k in _ARGS}
            return self.__init__(**args, **kwargs)
        if kwargs:
            raise CompatError(f"{OWNER}: unknown argument(s) {sorted(kwargs)} (unimol_tools {OWNER} takes "
                              f"{', '.join(_ARGS)})")
        check_data_type(OWNER, data_type)
        warn_speed_only(OWNER, use_ddp=use_ddp, use_gpu=use_gpu)
        if save_path is not None:
            raise CompatError(f"{OWNER}: save_path (unimol_tools writes the conformers there as SDF) is not available "
                              "here; `uniqsar embed data.csv --atomic --out DIR` writes representations, atomic "
                              "numbers and coordinates to a file")
        if pretrained_dict_path is not None:
            warnings.warn(f"{OWNER}: pretrained_dict_path is a Uni-Mol v1 token dictionary; Uni-Mol2 does not use one "
                          "(neither does unimol_tools for model_name='unimolv2')", CompatWarning, stacklevel=2)
        if int(max_atoms) < 1 or int(batch_size) < 1:
            raise CompatError(f"{OWNER}: max_atoms and batch_size must be >= 1")
        self.weights = resolve_weights(OWNER, model_name, model_size, pretrained_model_path)
        from uniqsar.models.torch_trainer import resolve_device
        from uniqsar.models.unimol2.pretrained import identity, load_backbone

        self.device = resolve_device("auto" if use_cuda else "cpu")
        self.model = load_backbone(self.weights).eval()
        self.weights_identity = identity(self.weights)
        self.params = {"data_type": data_type, "batch_size": int(batch_size), "remove_hs": remove_hs,
                       "model_name": model_name, "model_size": model_size, "smiles_col": smiles_col,
                       "use_cuda": use_cuda, "pretrained_model_path": pretrained_model_path,
                       "max_atoms": int(max_atoms)}

    def get_repr(self, data=None, return_atomic_reprs=False, return_tensor=False):
        """Representations of ``data``: one SMILES, a list / array / Series of SMILES, a CSV path, a DataFrame or dict
        with a ``smiles_col`` column, or custom conformers (``atoms`` + ``coordinates``, as unimol_tools takes)."""
        from uniqsar.models.unimol2.atomic import atomic_forward, featurize_atoms_coords, featurize_smiles_list

        if data is None:
            raise CompatError(f"{OWNER}.get_repr: no data given")
        col = self.params["smiles_col"]
        df = read_input(OWNER, data, col, allow_single_smiles=True, allow_conformers=True)
        max_atoms = self.params["max_atoms"]
        if col in df.columns:
            smiles = ["" if s is None or (isinstance(s, float) and np.isnan(s)) else str(s) for s in df[col]]
            feats, reasons = featurize_smiles_list(smiles, max_atoms=max_atoms)
            labels = smiles
        else:  # custom conformers
            feats, reasons = [], []
            for atoms, coords in zip(df["atoms"], df["coordinates"]):
                try:
                    feats.append(featurize_atoms_coords(list(atoms), coords, max_atoms=max_atoms))
                    reasons.append(None)
                except Exception as e:  # noqa: BLE001 - one bad conformer must not sink the call
                    feats.append(None)
                    reasons.append(f"{type(e).__name__}: {e}")
            labels = [f"conformer {i}" for i in range(len(feats))]
        failed = [(i, labels[i], r) for i, r in enumerate(reasons) if r is not None]
        if failed:
            shown = "; ".join(f"row {i} {s!r}: {r}" for i, s, r in failed[:5])
            warnings.warn(f"{OWNER}: {len(failed)} molecule(s) could not be featurized (NaN vector, no atoms): {shown}"
                          + (" ..." if len(failed) > 5 else ""), CompatWarning, stacklevel=2)
        res = atomic_forward(self.model, feats, batch_size=self.params["batch_size"], device=self.device)
        D = self.model.cfg.embed_dim
        cls = [r["cls"] if r is not None else np.full(D, np.nan, np.float32) for r in res]
        if return_atomic_reprs:
            return {
                "cls_repr": cls,
                "atomic_symbol": [r["numbers"] if r is not None else np.zeros(0, np.int64) for r in res],
                "atomic_coords": [r["coords"] if r is not None else np.zeros((0, 3), np.float32) for r in res],
                "atomic_reprs": [r["atoms"] if r is not None else np.zeros((0, D), np.float32) for r in res],
            }
        if return_tensor:
            import torch

            return torch.from_numpy(np.stack(cls).astype(np.float32))
        return cls


_ARGS = ("data_type", "batch_size", "remove_hs", "model_name", "model_size", "smiles_col", "use_cuda", "use_ddp",
         "use_gpu", "save_path", "pretrained_model_path", "pretrained_dict_path", "max_atoms")
