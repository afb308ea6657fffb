"""Explicit registries. Their keys are the recipe vocabulary and what the CLI lists.

One table per plug-in kind. A built-in entry is one line below: its key and the module that defines it, so
listing choices costs no import and using one imports only its module (torch stays unloaded for a GBDT-only
run). The module's class registers itself with the decorator when imported; the decorator refuses a built-in
key registered from any other module, so the line and the class cannot drift apart
(``tests/unit/test_registry.py`` resolves every line). Plug-ins may register keys that are not listed here the
same way; processes that start fresh (``uniqsar predict``, workers) know those only once their module is imported.
"""
from __future__ import annotations

import importlib
from collections.abc import MutableMapping


class Registry(MutableMapping):
    """key -> class. Built-in keys are declared with their module and imported on first use."""

    def __init__(self, kind: str, modules: dict[str, str]) -> None:
        self.kind = kind
        self.modules = dict(modules)  # built-in key -> the module that registers it
        self._classes: dict[str, type] = {}

    # -- registration ----------------------------------------------------------------------------
    def register(self, cls):
        """Class decorator: ``@register_featurizer`` / ``@register_learner``."""
        key = cls.key
        declared = self.modules.get(key)
        if declared is not None and declared != cls.__module__:
            raise ValueError(f"{self.kind} {key!r} is declared in uniqsar/registry.py as defined by {declared}, "
                             f"but {cls.__module__}.{cls.__name__} registers it")
        if key in self._classes and self._classes[key] is not cls:
            raise ValueError(f"{self.kind} {key!r} is registered twice ({self._classes[key]} and {cls})")
        self._classes[key] = cls
        return cls

    # -- mapping -----------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> type:
        if key not in self._classes and key in self.modules:
            importlib.import_module(self.modules[key])
            if key not in self._classes:
                raise KeyError(f"{self.kind} {key!r}: module {self.modules[key]} does not register it")
        if key not in self._classes:
            raise KeyError(f"unknown {self.kind} {key!r}; known: {', '.join(self.names())}")
        return self._classes[key]

    def __setitem__(self, key: str, cls: type) -> None:  # plug-ins and tests
        self._classes[key] = cls

    def __delitem__(self, key: str) -> None:
        del self._classes[key]

    def __contains__(self, key) -> bool:  # no import
        return key in self.modules or key in self._classes

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def names(self) -> list[str]:
        return sorted(set(self.modules) | set(self._classes))

    def load_all(self) -> None:
        for module in sorted(set(self.modules.values())):
            importlib.import_module(module)


FEATURIZERS = Registry("featurizer", {
    "morgan_count": "uniqsar.featurize.fingerprints",
    "avalon_count": "uniqsar.featurize.fingerprints",
    "erg": "uniqsar.featurize.fingerprints",
    "maccs": "uniqsar.featurize.fingerprints",
    "rdkit_desc": "uniqsar.featurize.descriptors",
    "unimol2": "uniqsar.models.unimol2.featurizer",
    "smiles_transformer": "uniqsar.models.smiles.featurizer",
    "dmpnn_emb": "uniqsar.models.dmpnn.featurizer",
    "minimol": "uniqsar.models.minimol",  # optional extra uniqsar[minimol]
})
LEARNERS = Registry("learner", {
    "lightgbm": "uniqsar.models.gbdt",
    "catboost": "uniqsar.models.gbdt",
    "linear": "uniqsar.models.linear",
    "dmpnn": "uniqsar.models.dmpnn.learner",
    "unimol2": "uniqsar.models.unimol2.learner",
    "smiles_transformer": "uniqsar.models.smiles.learner",
})

#: pretraining kind (a pretraining recipe's ``[model] kind``) -> the module with its ``recipe_from_dict(d, name)``
#: and ``pretrain(recipe, corpus, out, **kwargs)`` (``uniqsar/models/pretraining.py``)
PRETRAINING: dict[str, str] = {
    "unimol2": "uniqsar.models.unimol2.pretrain",
    "smiles_transformer": "uniqsar.models.smiles.pretrain",
    "dmpnn": "uniqsar.models.dmpnn.pretrain",
}

register_featurizer = FEATURIZERS.register
register_learner = LEARNERS.register


def featurizer_names() -> list[str]:
    return FEATURIZERS.names()


def learner_names() -> list[str]:
    return LEARNERS.names()


def get_featurizer_class(key: str) -> type:
    return FEATURIZERS[key]


def get_featurizer(key: str, **params):
    return get_featurizer_class(key)(**params)


def get_learner_class(key: str) -> type:
    return LEARNERS[key]


def load_all() -> None:
    """Import every built-in entry (for conformance tests and full listings)."""
    FEATURIZERS.load_all()
    LEARNERS.load_all()
