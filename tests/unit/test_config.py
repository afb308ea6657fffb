"""Unit tests for uniqsar.config: presets, validation, TOML round trip, restrict()."""
from __future__ import annotations

import copy
import dataclasses
import tomllib

import pytest

from uniqsar.config import (
    ConfigError,
    Recipe,
    available_presets,
    dump_toml,
    load_recipe,
    recipe_from_dict,
)
from uniqsar.registry import FEATURIZERS, LEARNERS, load_all

load_all()

BASE = {
    "name": "t",
    "description": "unit test recipe",
    "cv": {"n_folds": 3, "split": "scaffold"},
    "featurizers": {"ecfp": {"key": "morgan_count", "radius": 2, "n_bits": 256}, "maccs": {"key": "maccs"}},
    "models": [
        {"learner": "lightgbm", "features": ["ecfp", "maccs"], "n_trials": 3, "params": {"n_estimators": 60}},
        {"learner": "linear", "features": ["ecfp"], "n_trials": 2},
    ],
    "ensemble": {"method": "greedy", "size": 10, "top_trials": 2},
}


def _base():
    return copy.deepcopy(BASE)


def _roundtrip(recipe: Recipe) -> Recipe:
    text = dump_toml(recipe.to_dict())
    return recipe_from_dict(tomllib.loads(text), name=recipe.name)


# -- presets --------------------------------------------------------------------------------------
def test_presets_found():
    presets = available_presets()
    assert {"fast", "default", "best"} <= set(presets)
    assert not any(p.startswith("pretrain") for p in presets)


@pytest.mark.parametrize("preset", available_presets())
def test_every_preset_loads_and_roundtrips(preset):
    r = load_recipe(preset)
    assert isinstance(r, Recipe) and r.name == preset
    assert r.models
    for m in r.models:
        assert m.learner in LEARNERS
        for f in m.features:
            assert r.featurizer(f).key in FEATURIZERS
    for f in r.featurizers:  # params accepted by the featurizer itself
        FEATURIZERS[f.key](**f.params)
    assert _roundtrip(r) == r


def test_unknown_preset_lists_available():
    with pytest.raises(ConfigError) as info:
        load_recipe("fastest")
    for p in available_presets():
        assert p in str(info.value)


def test_load_from_path_and_bad_toml(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(dump_toml(_base()))
    r = load_recipe(str(p))
    assert r.name == "t" and r.n_folds == 3
    bad = tmp_path / "bad.toml"
    bad.write_text("[cv\nn_folds = 3\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_recipe(str(bad))
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(str(tmp_path / "missing.toml"))


# -- parsing / validation -------------------------------------------------------------------------
def test_from_dict_values():
    r = recipe_from_dict(_base())
    assert r.n_folds == 3 and r.split == "scaffold" and r.ensemble == "greedy" and r.ensemble_size == 10
    assert r.top_trials == 2 and r.final == "refit" and r.pruning is True and r.drop_models is False
    d = _base()
    d["ensemble"]["drop_models"] = True
    assert recipe_from_dict(d).drop_models is True and _roundtrip(recipe_from_dict(d)).drop_models is True
    d["ensemble"]["drop_models"] = "no"
    with pytest.raises(ConfigError, match="drop_models must be true or false"):
        recipe_from_dict(d)
    ecfp = r.featurizer("ecfp")
    assert ecfp.key == "morgan_count" and ecfp.params == {"radius": 2, "n_bits": 256}
    assert r.models[0].params == {"n_estimators": 60} and r.models[0].search is True
    assert r.models[0].id == "lightgbm__ecfp+maccs"
    # a registry key used directly as a feature name
    assert r.featurizer("erg").key == "erg"


def test_data_standardize():
    assert recipe_from_dict(_base()).standardize == "canonical"  # the default (data/standardize.py DEFAULT_MODE)
    d = _base()
    d["data"] = {"standardize": "full"}
    assert recipe_from_dict(d).standardize == "full"
    assert _roundtrip(recipe_from_dict(d)).standardize == "full"
    d["data"] = {"standardize": "none"}
    with pytest.raises(ConfigError, match="data.standardize must be one of"):
        recipe_from_dict(d)
    d["data"] = {"standardise": "full"}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['standardise'\] in \[data\]"):
        recipe_from_dict(d)


def test_unknown_learner():
    d = _base()
    d["models"][1]["learner"] = "xgboostt"
    with pytest.raises(ConfigError) as info:
        recipe_from_dict(d)
    msg = str(info.value)
    assert "xgboostt" in msg and "lightgbm" in msg and "linear" in msg


def test_unknown_featurizer():
    d = _base()
    d["featurizers"]["ecfp"]["key"] = "morgan_cnt"
    with pytest.raises(ConfigError) as info:
        recipe_from_dict(d)
    assert "morgan_cnt" in str(info.value) and "morgan_count" in str(info.value)


def test_unknown_feature_alias_in_model():
    d = _base()
    d["models"][0]["features"] = ["ecfp", "fcfp"]
    with pytest.raises(ConfigError, match="'fcfp'"):
        recipe_from_dict(d)


def test_unknown_section():
    d = _base()
    d["model"] = {"learner": "linear"}
    with pytest.raises(ConfigError, match=r"unknown section.*'model'"):
        recipe_from_dict(d)


def test_other_validation_errors():
    d = _base()
    d["models"] = []
    with pytest.raises(ConfigError, match="no \\[\\[models\\]\\]"):
        recipe_from_dict(d)
    d = _base()
    d["models"][1]["features"] = []
    with pytest.raises(ConfigError, match="needs a features list"):
        recipe_from_dict(d)
    d = _base()
    d["models"].append(dict(d["models"][1]))
    with pytest.raises(ConfigError, match="duplicate model ids"):
        recipe_from_dict(d)
    d["models"][2]["name"] = "linear_again"
    assert len(recipe_from_dict(d).models) == 3
    d = _base()
    d["ensemble"]["method"] = "stacking_magic"
    with pytest.raises(ConfigError, match="ensemble method"):
        recipe_from_dict(d)
    d = _base()
    d["final"] = {"mode": "whatever"}
    with pytest.raises(ConfigError, match="final mode"):
        recipe_from_dict(d)
    d = _base()
    d["cv"]["n_folds"] = 1
    with pytest.raises(ConfigError, match="n_folds"):
        recipe_from_dict(d)


def test_recipe_is_frozen():
    r = recipe_from_dict(_base())
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n_folds = 10


# -- TOML round trip ------------------------------------------------------------------------------
def test_roundtrip_custom_recipe_with_all_fields():
    d = _base()
    d["description"] = 'quotes " and \\ backslash, newline\nand unicode: µ-opioid'
    d["models"][0]["name"] = "lgb_small"
    d["models"][1]["search"] = False
    d["models"][1]["params"] = {"alpha": 0.5}
    d["final"] = {"mode": "folds"}
    d["tuning"] = {"pruning": False}
    d["ensemble"]["method"] = "best"
    r = recipe_from_dict(d)
    text = dump_toml(r.to_dict())
    assert tomllib.loads(text)  # valid TOML
    r2 = _roundtrip(r)
    assert r2 == r
    assert r2.models[1].search is False and r2.models[1].params == {"alpha": 0.5}
    assert r2.final == "folds" and r2.pruning is False and r2.description == d["description"]


def test_roundtrip_float_and_bool_params():
    d = _base()
    d["featurizers"]["fcfp"] = {"key": "morgan_count", "features": True, "radius": 3}
    d["models"][0]["params"] = {"learning_rate": 0.05, "lambda_l2": 1e-8, "n_estimators": 10}
    r = recipe_from_dict(d)
    r2 = _roundtrip(r)
    assert r2 == r
    assert r2.featurizer("fcfp").params["features"] is True
    assert r2.models[0].params["lambda_l2"] == 1e-8


def test_roundtrip_non_bmp_description():
    d = _base()
    d["description"] = "smiley \U0001F600 and \U0001D6C2"
    r = recipe_from_dict(d)
    assert _roundtrip(r).description == d["description"]


# -- derived recipes ------------------------------------------------------------------------------
def test_scaled_trials():
    r = recipe_from_dict(_base())
    assert [m.n_trials for m in r.scaled_trials(2).models] == [6, 4]
    assert [m.n_trials for m in r.scaled_trials(0.01).models] == [1, 1]


# -- typos inside sections ------------------------------------------------------------------------
@pytest.mark.parametrize("edit", ["model_key", "cv_split", "ensemble_key"])
def test_typos_inside_sections_rejected(edit):
    d = _base()
    if edit == "model_key":
        d["models"][0]["n_trails"] = 50
    elif edit == "cv_split":
        d["cv"]["split"] = "scafold"
    else:
        d["ensemble"]["sise"] = 5
    with pytest.raises(ConfigError):
        recipe_from_dict(d)


def test_unknown_featurizer_param_rejected_at_parse_time():
    d = _base()
    d["featurizers"]["ecfp"]["n_bit"] = 512
    with pytest.raises(ConfigError, match="n_bit"):
        recipe_from_dict(d)


def test_max_molecules_leaves_a_capped_model_out_of_larger_targets():
    from uniqsar.config import ConfigError, recipe_from_dict

    d = {"featurizers": {"ecfp": {"key": "morgan_count"}},
         "models": [{"learner": "lightgbm", "features": ["ecfp"]},
                    {"learner": "linear", "features": ["ecfp"], "max_molecules": 100}]}
    r = recipe_from_dict(d)
    assert [m.learner for m in r.for_size(100).models] == ["lightgbm", "linear"]
    assert [m.learner for m in r.for_size(101).models] == ["lightgbm"]
    assert r.to_dict()["models"][1]["max_molecules"] == 100
    only = recipe_from_dict({**d, "models": d["models"][1:]})
    assert len(only.for_size(10_000).models) == 1  # never an empty recipe
    with pytest.raises(ConfigError, match="max_molecules"):
        recipe_from_dict({**d, "models": [{"learner": "linear", "features": ["ecfp"], "max_molecules": 0}]})


def test_misspelt_learner_param_is_an_error_naming_the_known_ones():
    d = {"featurizers": {"ecfp": {"key": "morgan_count"}},
         "models": [{"learner": "lightgbm", "features": ["ecfp"], "params": {"n_estimator": 10}}]}
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['n_estimator'\]; known: .*'n_estimators'"):
        recipe_from_dict(d)


def test_default_preset_has_the_members_the_selection_rule_chose():
    """benchmarks/selection/results/designs.md (S7_lean): MapLight's CatBoost as a fixed untuned member, few
    trials, one candidate per model, a shrunk stack, no Uni-Mol2 embeddings."""
    from uniqsar.config import load_recipe

    r = load_recipe("default")
    cat = [m for m in r.models if m.learner == "catboost"]
    assert len(cat) == 1 and not cat[0].search and cat[0].n_trials == 1
    assert cat[0].params == {"regression_loss": "MAE", "rsm": 0.1}  # the speed amendment (selection/plan.md)
    assert cat[0].max_molecules == 4000  # compute cap (LD50 bound)
    assert {f.key for f in r.featurizers if f.alias in cat[0].features} == {"morgan_count", "avalon_count", "erg",
                                                                           "rdkit_desc"}
    assert r.top_trials == 1 and r.shrink == 0.5 and not r.drop_models
    assert sum(m.n_trials for m in r.models) <= 25
    assert not any(f.key == "unimol2" for f in r.featurizers)


def test_tracks_recipe_default_dmpnn_restacks_exactly_the_default_preset():
    """benchmarks/tracks/default_dmpnn.toml's `default` subset must be the shipped preset (the joining rule
    compares against it), and its candidate subsets add only their own models."""
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("tracks_run", repo / "benchmarks" / "tracks" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    bench = tomllib.loads((repo / "benchmarks" / "tracks" / "default_dmpnn.toml").read_text())
    default = load_recipe("default")
    sub = recipe_from_dict(run.subset_recipe(bench, ["default"]))
    assert sub.models == default.models
    assert [f for f in sub.featurizers if f.key != "dmpnn_emb"] == list(default.featurizers)
    assert dataclasses.replace(sub, name="default", description=default.description, featurizers=()) \
        == dataclasses.replace(default, featurizers=())
    ft = recipe_from_dict(run.subset_recipe(bench, ["default", "dmpnn_ft"]))
    assert [m.id for m in ft.models if m not in default.models] == ["dmpnn_ft"]
    assert run.plan_subsets(bench, None) == [["default"], ["default", "dmpnn_emb"],
                                             ["default", "dmpnn_emb", "dmpnn_ft"]]
    with pytest.raises(SystemExit, match="every track"):
        run.plan_subsets(bench, ["default", "default+dmpnn_emb"])
