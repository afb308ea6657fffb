"""Explicit registries. Their keys are the recipe vocabulary and what the CLI lists.

Entries register themselves with a decorator when their module is imported; ``load_all()``
imports every built-in module so that the registries are complete.
"""
from __future__ import annotations

import importlib

FEATURIZERS: dict[str, type] = {}
LEARNERS: dict[str, type] = {}

_BUILTIN_MODULES = (
    "uniqsar.featurize.fingerprints",
    "uniqsar.featurize.descriptors",
    "uniqsar.models.gbdt",
    "uniqsar.models.linear",
)
# Modules that need optional packages or heavy imports; absent ones are skipped quietly.
_OPTIONAL_MODULES = (
    "uniqsar.models.unimol2.featurizer",
    "uniqsar.models.unimol2.learner",
)


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

_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    for name in _BUILTIN_MODULES:
        importlib.import_module(name)
    for name in _OPTIONAL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an optional dependency (or the module itself) is absent
            if exc.name and (not exc.name.startswith("uniqsar") or name.startswith(exc.name)):
                continue
            raise
    _loaded = True


def get_featurizer(key: str, **params):
    load_all()
    if key not in FEATURIZERS:
        raise KeyError(f"unknown featurizer {key!r}; known: {', '.join(sorted(FEATURIZERS))}")
    return FEATURIZERS[key](**params)


def get_learner_class(key: str) -> type:
    load_all()
    if key not in LEARNERS:
        raise KeyError(f"unknown learner {key!r}; known: {', '.join(sorted(LEARNERS))}")
    return LEARNERS[key]
