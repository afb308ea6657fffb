"""--time-budget bounds the whole fit and still leaves a usable model."""
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from uniqsar import AutoQSAR

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
    assert learners == {"linear"}
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "run" / "optuna.journal")))
    dmpnn = optuna.load_study(study_name="Y/dmpnn__smiles", storage=storage).trials
    assert len(dmpnn) <= 1 and all(t.state == TrialState.FAIL for t in dmpnn)  # aborted: no second trial
    assert not list((tmp_path / "run" / "trials").glob("Y/dmpnn*/*.npy"))
    assert np.isfinite(model.predict(df["Drug"].tolist()[:5])).all()


def test_no_finished_learner_is_a_clear_error(tmp_path, slow_learner):
    """A learner that ignores time limits is cut between folds; with no other learner, the fit
    stops within the budget with the usual error."""
    recipe = tmp_path / "slow.toml"
    recipe.write_text(SLOW_RECIPE.split("[[models]]")[0]
                      + f'[[models]]\nlearner = "{slow_learner}"\nfeatures = ["ecfp"]\nparams = {{ seconds = 4.0 }}\n')
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    budget = 6.0
    t0 = time.time()
    with pytest.raises(RuntimeError, match="no learner finished a trial"):
        AutoQSAR(preset=str(recipe), seed=1, time_budget=f"{budget}s").fit(df, target="Y", out=tmp_path / "run")
    elapsed = time.time() - t0
    print(f"budget {budget} s, fit {elapsed:.1f} s")
    assert elapsed <= budget * 1.1 + 5
