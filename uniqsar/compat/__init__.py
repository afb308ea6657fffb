"""unimol_tools 0.1.6's API on uniqsar: change ``from unimol_tools import ...`` to ``from uniqsar.compat import ...``.

- ``MolTrain(task=..., model_name='unimolv2', model_size=...).fit(data)`` fine-tunes uniqsar's Uni-Mol2 and writes a
  uniqsar run directory to ``save_path`` (plain files, no pickle);
- ``MolPredict(load_model=save_path).predict(data)`` returns the array unimol_tools returns;
- ``UniMolRepr(...).get_repr(data, return_atomic_reprs=...)`` gives molecule and per-atom representations.

Every unimol_tools argument and what it does here: README, "Coming from unimol_tools".
"""
from .common import CompatError, CompatWarning, UNIMOL_TOOLS_VERSION


def __getattr__(name):  # the classes import torch / RDKit: only when used
    if name == "MolTrain":
        from .train import MolTrain

        return MolTrain
    if name == "MolPredict":
        from .predict import MolPredict

        return MolPredict
    if name == "UniMolRepr":
        from .repr import UniMolRepr

        return UniMolRepr
    raise AttributeError(name)


__all__ = ["MolTrain", "MolPredict", "UniMolRepr", "CompatError", "CompatWarning", "UNIMOL_TOOLS_VERSION"]
