"""The registries: one line per built-in entry (key -> module), and that line agrees with the class."""
from __future__ import annotations

import importlib

import pytest

from uniqsar.featurize.base import Featurizer
from uniqsar.models.base import Learner
from uniqsar.registry import FEATURIZERS, LEARNERS, Registry

TABLES = [(FEATURIZERS, Featurizer), (LEARNERS, Learner)]


@pytest.mark.parametrize("table,base", TABLES, ids=["featurizers", "learners"])
def test_every_declared_key_resolves_to_its_class(table, base):
    assert table.modules, "no built-in entries"
    for key, module in table.modules.items():
        cls = table[key]
        assert cls.key == key and issubclass(cls, base), key
        assert cls.__module__ == module, f"{key}: declared in {module}, defined in {cls.__module__}"


def test_listing_costs_no_import():
    r = Registry("thing", {"a": "no.such.module"})
    assert "a" in r and r.names() == ["a"] and list(r) == ["a"]
    with pytest.raises(ModuleNotFoundError):
        r["a"]
    with pytest.raises(KeyError, match="unknown thing 'b'; known: a"):
        r["b"]


def test_decorator_refuses_a_key_declared_for_another_module():
    r = Registry("thing", {"a": "somewhere.else"})

    class A:
        key = "a"

    with pytest.raises(ValueError, match="declared in uniqsar/registry.py"):
        r.register(A)


def test_declared_module_must_register_its_key():
    r = Registry("thing", {"a": "json"})  # imports, registers nothing
    with pytest.raises(KeyError, match="does not register"):
        r["a"]


def test_plugins_register_undeclared_keys():
    r = Registry("thing", {})

    class P:
        key = "plugin"

    assert r.register(P) is P and r["plugin"] is P and "plugin" in r
    del r["plugin"]
    assert "plugin" not in r


def test_modules_import_cleanly():
    for table, _ in TABLES:
        for module in set(table.modules.values()):
            importlib.import_module(module)


def test_pretraining_kinds_and_every_packaged_recipe_loads():
    from uniqsar.models.pretraining import RECIPE_DIR, load_recipe, recipe_kind, resolve_recipe
    from uniqsar.registry import PRETRAINING

    for kind, module in PRETRAINING.items():
        m = importlib.import_module(module)
        assert callable(m.pretrain) and callable(m.recipe_from_dict), kind
    recipes = sorted(RECIPE_DIR.glob("*.toml"))
    assert {recipe_kind(resolve_recipe(p)[1]) for p in recipes} == set(PRETRAINING)
    for p in recipes:
        assert load_recipe(p.stem).name == p.stem
    # names and the old location keep resolving
    assert resolve_recipe("tiny")[0].name == "pretrain_unimol2_tiny.toml"
    assert resolve_recipe("smiles_tiny")[0].name == "pretrain_smiles_tiny.toml"
    assert resolve_recipe("uniqsar/recipes/pretrain_dmpnn_tiny.toml")[0] == RECIPE_DIR / "pretrain_dmpnn_tiny.toml"
