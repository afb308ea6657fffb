"""Explicit registries. Their keys are the recipe vocabulary and what the CLI lists.

The tables below name every built-in entry and the module that defines it, so that listing
choices costs no import and using one imports only its module (torch stays unloaded for a
GBDT-only run). Classes register themselves with the decorators when their module is imported;
plug-ins may register more keys the same way.
"""
from __future__ import annotations

import importlib

FEATURIZER_MODULES: dict[str, str] = {
    "morgan_count": "uniqsar.featurize.fingerprints",
    "avalon_count": "uniqsar.featurize.fingerprints",
    "erg": "uniqsar.featurize.fingerprints",
    "maccs": "uniqsar.featurize.fingerprints",
    "rdkit_desc": "uniqsar.featurize.descriptors",
    "unimol2": "uniqsar.models.unimol2.featurizer",
    "smiles_transformer": "uniqsar.models.smiles.featurizer",
    "dmpnn_emb": "uniqsar.models.dmpnn.featurizer",
    "minimol": "uniqsar.models.minimol",  # optional extra uniqsar[minimol]
}
LEARNER_MODULES: dict[str, str] = {
    "lightgbm": "uniqsar.models.gbdt",
    "catboost": "uniqsar.models.gbdt",
    "linear": "uniqsar.models.linear",
    "dmpnn": "uniqsar.models.dmpnn",
    "unimol2": "uniqsar.models.unimol2.learner",
    "smiles_transformer": "uniqsar.models.smiles.learner",
}

FEATURIZERS: dict[str, type] = {}
LEARNERS: dict[str, type] = {}


def _register(table: dict[str, type], kind: str):
    def decorator(cls):
        key = cls.key
        if key in table and table[key] is not cls:
            raise ValueError(f"{kind} {key!r} is registered twice ({table[key]} and {cls})")
        table[key] = cls
        return cls

    return decorator


register_featurizer = _register(FEATURIZERS, "featurizer")
register_learner = _register(LEARNERS, "learner")


def featurizer_names() -> list[str]:
    return sorted(set(FEATURIZER_MODULES) | set(FEATURIZERS))


def learner_names() -> list[str]:
    return sorted(set(LEARNER_MODULES) | set(LEARNERS))


def _lookup(key: str, table: dict, modules: dict, kind: str) -> type:
    if key not in table and key in modules:
        importlib.import_module(modules[key])
    if key not in table:
        names = featurizer_names() if kind == "featurizer" else learner_names()
        raise KeyError(f"unknown {kind} {key!r}; known: {', '.join(names)}")
    return table[key]


def get_featurizer_class(key: str) -> type:
    return _lookup(key, FEATURIZERS, FEATURIZER_MODULES, "featurizer")


def get_featurizer(key: str, **params):
    return get_featurizer_class(key)(**params)


def get_learner_class(key: str) -> type:
    return _lookup(key, LEARNERS, LEARNER_MODULES, "learner")


def load_all() -> None:
    """Import every built-in entry (for conformance tests and full listings)."""
    for module in sorted(set(FEATURIZER_MODULES.values()) | set(LEARNER_MODULES.values())):
        importlib.import_module(module)
