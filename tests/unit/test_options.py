"""Fit options resolved in one place (pipeline/options.py) for the CLI and the Python API."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA, TINY_RECIPE
from uniqsar.config import ConfigError, load_recipe
from uniqsar.data.targets import DataError, TargetData
from uniqsar.metrics import get_metric
from uniqsar.pipeline import options
from uniqsar.pipeline.fit import FitOptions, fit
from uniqsar.pipeline.options import check_class_counts, resolve_metrics, resolve_recipe, target_metrics

LGBM_ONLY = """name = "lgbm_only"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 256 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 1
"""


@pytest.fixture
def lgbm_only(tmp_path):
    path = tmp_path / "lgbm_only.toml"
    path.write_text(LGBM_ONLY)
    return path


# -- --learners ---------------------------------------------------------------------------------------
def test_learner_the_preset_lacks_comes_from_best(lgbm_only, capsys):
    recipe = resolve_recipe(str(lgbm_only), ("lightgbm", "linear"))
    best = [m for m in load_recipe("best").models if m.learner == "linear"]
    got = [m for m in recipe.models if m.learner == "linear"]
    assert len(got) == len(best) == 1 and got[0].n_trials == best[0].n_trials
    # best's ecfp (2048 bits) is not this recipe's ecfp (256 bits): renamed, both kept as they are
    assert got[0].features == ("ecfp_best", "avalon", "desc")
    assert recipe.featurizer("ecfp").params["n_bits"] == 256 and recipe.featurizer("ecfp_best").params["n_bits"] == 2048
    assert recipe.featurizer("avalon") == load_recipe("best").featurizer("avalon")
    assert [m.learner for m in recipe.models] == ["lightgbm", "linear"]
    assert "learner 'linear' is not in preset 'lgbm_only': using its configuration from preset 'best'" \
        in capsys.readouterr().err


def test_learners_restrict_without_borrowing(lgbm_only, capsys):
    assert [m.learner for m in resolve_recipe(str(TINY_RECIPE), ("linear",)).models] == ["linear"]
    assert "not in preset" not in capsys.readouterr().err


def test_learner_in_no_preset_is_a_clear_error(lgbm_only, monkeypatch):
    monkeypatch.setattr(options, "_donors", lambda skip: ["fast"])  # fast has no catboost
    with pytest.raises(ConfigError, match="learner 'catboost' is in recipe 'lgbm_only' and in no preset"):
        resolve_recipe(str(lgbm_only), ("catboost",))


def test_unknown_learner():
    with pytest.raises(ConfigError, match=r"unknown learner\(s\) \['nosuch'\].*lightgbm"):
        resolve_recipe("fast", ("nosuch",))


def test_fit_with_a_borrowed_learner(lgbm_only, tmp_path, monkeypatch):
    # linear from a tiny donor recipe (best's features would cost more than a unit test should)
    donor = tmp_path / "donor.toml"
    donor.write_text(LGBM_ONLY.replace('"lgbm_only"', '"donor"').replace('"lightgbm"', '"linear"'))
    monkeypatch.setattr(options, "_donors", lambda skip: [str(donor)])
    df = pd.read_csv(DATA / "caco2_wang_200.csv").head(60)
    out = fit(df, tmp_path / "run", FitOptions(targets=("Y",), smiles_col="Drug", preset=str(lgbm_only),
                                                learners=("linear",), use_cache=False))
    members = set(pd.read_csv(out / "leaderboard.csv")["candidate"]) - {"ENSEMBLE"}
    assert members and all(c.startswith("linear__ecfp#") for c in members)


# -- metrics ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alias, name", [("AUROC", "roc_auc"), ("auc", "roc_auc"), ("ROC-AUC", "roc_auc"),
                                         ("roc auc", "roc_auc"), ("AUPRC", "pr_auc"), ("MAE", "mae"),
                                         ("Spearman", "spearman"), ("R^2", "r2"), ("log-loss", "logloss"),
                                         ("RMSE", "rmse")])
def test_metric_aliases(alias, name):
    assert get_metric(alias).name == name


def test_unknown_metric_named():
    with pytest.raises(KeyError, match="unknown metric 'f1'.*roc_auc"):
        resolve_metrics("f1", ("Y",))
    with pytest.raises(ConfigError, match="not a target"):
        resolve_metrics({"Z": "mae"}, ("Y",))


def test_metric_must_fit_the_task():
    assert target_metrics({"a": "AUROC"}, {"a": "binary", "b": "regression"}) == {"a": "roc_auc", "b": "mae"}
    with pytest.raises(ValueError, match="metric 'MAE' \\(mae\\) is for regression targets, but target 'a' is "
                                         "binary; use one of: roc_auc"):
        target_metrics({"a": "MAE"}, {"a": "binary"})


def test_wrong_metric_fails_before_featurization(tmp_path, capsys):
    df = pd.read_csv(DATA / "bbb_martins_200.csv").head(40)
    with pytest.raises(ValueError, match="is for regression targets"):
        fit(df, tmp_path / "run", FitOptions(targets=("Y",), preset=str(TINY_RECIPE), metric="mae", use_cache=False))
    assert "featurized" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="is for binary targets"):  # task given: refused before reading the data
        fit(tmp_path / "does_not_exist.csv", tmp_path / "run2",
            FitOptions(targets=("Y",), task="regression", preset=str(TINY_RECIPE), metric="AUROC"))


# -- class counts -----------------------------------------------------------------------------------------
def _binary(n_pos, n):
    return {"Y": TargetData("Y", "binary", np.array([f"C{i}" for i in range(n)]),
                            np.r_[np.ones(n_pos), np.zeros(n - n_pos)], [0, 1])}


def test_too_few_of_a_class_for_cv_is_one_clear_message():
    with pytest.raises(DataError) as err:
        check_class_counts(_binary(1, 80), n_folds=5)
    assert str(err.value).startswith("target 'Y' has 1 example(s) of class 1 among 80 molecules; 5-fold "
                                     "cross-validation needs at least 5 of each class")
    check_class_counts(_binary(5, 80), n_folds=5)
    check_class_counts(_binary(2, 80), n_folds=0)
