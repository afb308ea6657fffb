"""--time-budget bounds the whole fit and still leaves a usable model."""
import json
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA, TINY_RECIPE
from uniqsar import AutoQSAR
from uniqsar.featurize.base import Featurizer

SLOW_RECIPE = """
name = "budget"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 512 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 500
params = { n_estimators = 60 }
[[models]]
learner = "linear"
features = ["ecfp"]
n_trials = 500
"""


def test_time_budget_is_honoured(tmp_path):
    recipe = tmp_path / "budget.toml"
    recipe.write_text(SLOW_RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    budget = 15.0
    t0 = time.time()
    model = AutoQSAR(preset=str(recipe), seed=1, time_budget=f"{budget}s").fit(df, target="Y", out=tmp_path / "run")
    elapsed = time.time() - t0
    assert elapsed <= budget * 1.1 + 3, f"fit took {elapsed:.1f} s for a {budget} s budget"
    board = model.leaderboard()
    n_trials = board[board["candidate"] != "ENSEMBLE"]["n_trials"].max()
    assert 1 <= n_trials < 500  # the budget, not the trial count, ended tuning
    pred = model.predict(df["Drug"].tolist()[:5])
    assert np.isfinite(pred).all()


TORCH_RECIPE = """
name = "budget-torch"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 512 }
[[models]]
learner = "dmpnn"
n_trials = 500
params = { hidden_size = 32, ffn_hidden_size = 32, depth = 2, epochs = 100000, patience = 100000 }
[[models]]
learner = "linear"
features = ["ecfp"]
n_trials = 500
"""


def test_slow_torch_trial_is_cut_at_its_time_share(tmp_path):
    """A D-MPNN trial would run for hours: its training stops at the trial's deadline, the trial
    is aborted (FAIL, no OOF file), the linear learner gets the rest and makes the model."""
    import optuna
    from optuna.trial import TrialState

    recipe = tmp_path / "budget.toml"
    recipe.write_text(TORCH_RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    budget = 20.0
    t0 = time.time()
    model = AutoQSAR(preset=str(recipe), seed=1, time_budget=f"{budget}s").fit(df, target="Y", out=tmp_path / "run")
    elapsed = time.time() - t0
    print(f"budget {budget} s, fit {elapsed:.1f} s")
    assert elapsed <= budget * 1.1 + 5, f"fit took {elapsed:.1f} s for a {budget} s budget"
    board = model.leaderboard()
    learners = set(board[board["candidate"] != "ENSEMBLE"]["learner"])
    assert learners and "dmpnn" not in learners  # linear, and/or lightgbm: the budget's fallback
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "run" / "optuna.journal")))
    dmpnn = optuna.load_study(study_name="Y/dmpnn__smiles", storage=storage).trials
    from uniqsar.tune.study import TRIAL_BATCH

    # the first batch was aborted in its first round of folds and no second batch started
    assert len(dmpnn) <= TRIAL_BATCH and all(t.state == TrialState.FAIL for t in dmpnn)
    assert not list((tmp_path / "run" / "trials").glob("Y/dmpnn*/*.npy"))
    assert np.isfinite(model.predict(df["Drug"].tolist()[:5])).all()


def test_budget_ends_with_the_fallback_when_no_recipe_learner_finishes(tmp_path, slow_learner):
    """A learner that ignores time limits is cut between folds; the fallback (LightGBM, default settings, one
    ECFP view, fitted first and never cut) still makes a usable model within the budget."""
    recipe = tmp_path / "slow.toml"
    recipe.write_text(SLOW_RECIPE.split("[[models]]")[0]
                      + f'[[models]]\nlearner = "{slow_learner}"\nfeatures = ["ecfp"]\nparams = {{ seconds = 4.0 }}\n')
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    budget = 8.0
    t0 = time.time()
    model = AutoQSAR(preset=str(recipe), seed=1, time_budget=f"{budget}s").fit(df, target="Y", out=tmp_path / "run")
    elapsed = time.time() - t0
    print(f"budget {budget} s, fit {elapsed:.1f} s")
    assert elapsed <= budget * 1.1 + 5
    ens = json.loads((tmp_path / "run" / "targets" / "Y" / "ensemble.json").read_text())
    assert [m["id"] for m in ens["members"]] == ["fallback_lightgbm__ecfp#t0"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["budget_plan"]["fallback"] == "fallback_lightgbm__ecfp"
    assert np.isfinite(model.predict(df["Drug"].tolist()[:5])).all()


class SlowFeaturizer(Featurizer):
    """Costs ``seconds`` per molecule (like Uni-Mol2 conformers on a cold cache)."""

    key = "slow_feat_test"
    defaults = {"seconds": 0.05}

    def featurize_mol(self, mol):
        time.sleep(self.params["seconds"])
        return np.array([mol.GetNumAtoms()], float)


COSTLY_RECIPE = """
name = "costly"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 512 }
slow = { key = "slow_feat_test" }
[[models]]
learner = "linear"
features = ["slow"]
n_trials = 2
[[models]]
learner = "linear"
features = ["ecfp"]
n_trials = 2
"""


def test_costly_featurizer_is_skipped_when_it_cannot_pay_off(tmp_path, monkeypatch, capsys):
    from uniqsar.registry import FEATURIZERS

    monkeypatch.setitem(FEATURIZERS, SlowFeaturizer.key, SlowFeaturizer)
    recipe = tmp_path / "costly.toml"
    recipe.write_text(COSTLY_RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv")  # 200 molecules x 0.05 s = 10 s of featurization
    budget = 10.0
    t0 = time.time()
    model = AutoQSAR(preset=str(recipe), seed=1, time_budget=f"{budget}s").fit(df, target="Y", out=tmp_path / "run")
    elapsed = time.time() - t0
    assert elapsed <= budget * 1.1 + 3, f"fit took {elapsed:.1f} s for a {budget} s budget"
    err = capsys.readouterr().err
    assert "skipping featurizer 'slow'" in err and "model linear__slow left out" in err
    plan = json.loads((tmp_path / "run" / "manifest.json").read_text())["budget_plan"]
    assert plan["skipped_featurizers"] == ["slow"] and plan["skipped_models"] == ["linear__slow"]
    assert plan["featurize_estimate_s"]["slow"] > plan["featurize_allowance_s"]
    board = model.leaderboard()
    assert not board["features"].fillna("").str.contains("slow").any()
    assert np.isfinite(model.predict(df["Drug"].tolist()[:5])).all()


def test_reported_ensemble_is_the_one_saved(tmp_path, monkeypatch):
    """When the budget drops ensemble members before the final fits, what is saved is stacked again from what is
    kept, and metrics.json / ensemble.json / the leaderboard report that ensemble's nested CV."""
    import uniqsar.pipeline.target as target

    def keep_heaviest(ctx, candidates, weights, n_folds):  # as _fit_within_budget does with little time left
        keep = np.zeros_like(weights)
        keep[np.argmax(weights)] = 1.0
        return keep

    monkeypatch.setattr(target, "_fit_within_budget", keep_heaviest)
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    model = AutoQSAR(preset=TINY_RECIPE, seed=1).fit(df, target="Y", out=tmp_path / "run")
    ens = json.loads((tmp_path / "run" / "targets" / "Y" / "ensemble.json").read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["Y"]
    assert len(ens["members"]) == 1
    member_cv = ens["members"][0]["cv_score"]
    # one member: the saved ensemble's nested CV is that member's own CV score
    assert ens["cv_score_nested"] == pytest.approx(member_cv)
    assert metrics["cv_score_ensemble"] == pytest.approx(member_cv)
    board = model.leaderboard()
    assert board.loc[board["candidate"] == "ENSEMBLE", "cv_score"].item() == pytest.approx(member_cv)


PARALLEL_RECIPE = """
name = "parallel"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 512 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 3
params = { n_estimators = 30 }
[tuning]
pruning = false
"""


def test_parallel_study_runs_no_more_trials_than_asked(tmp_path):
    import optuna
    from optuna.trial import TrialState

    recipe = tmp_path / "par.toml"
    recipe.write_text(PARALLEL_RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    AutoQSAR(preset=str(recipe), seed=1, n_jobs=2).fit(df, target="Y", out=tmp_path / "run")
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "run" / "optuna.journal")))
    trials = optuna.load_study(study_name="Y/lightgbm__ecfp", storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3, [t.state for t in trials]  # two workers, never a fourth trial run
    assert len(list((tmp_path / "run" / "trials" / "Y" / "lightgbm__ecfp").glob("*.npy"))) == 3
