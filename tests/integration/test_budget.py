"""--time-budget bounds the whole fit and still leaves a usable model."""
import time

import numpy as np
import pandas as pd

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
