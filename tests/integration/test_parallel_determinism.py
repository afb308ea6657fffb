"""--n-jobs changes the speed of a fit, never its result (up to float rounding: BLAS may use other thread counts
in worker processes): trials run in turn, their folds and the final fits side by side in processes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tests.conftest import DATA
from uniqsar import AutoQSAR

RECIPE = """
name = "par"
[cv]
n_folds = 5
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 256 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 4
params = { n_estimators = 40 }
[[models]]
learner = "linear"
features = ["ecfp"]
n_trials = 2
[ensemble]
top_trials = 2
"""


def test_n_jobs_does_not_change_the_fit(tmp_path):
    recipe = tmp_path / "par.toml"
    recipe.write_text(RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    runs, models = {}, {}
    for n_jobs in (1, 2):
        out = tmp_path / f"jobs{n_jobs}"
        models[n_jobs] = AutoQSAR(preset=str(recipe), seed=3, n_jobs=n_jobs).fit(df, target="Y", out=out)
        runs[n_jobs] = out
    oof1, oof2 = (pd.read_csv(runs[j] / "targets" / "Y" / "oof.csv") for j in (1, 2))
    pd.testing.assert_frame_equal(oof1, oof2, check_exact=False, rtol=1e-9)
    lb1, lb2 = (pd.read_csv(runs[j] / "leaderboard.csv") for j in (1, 2))
    pd.testing.assert_frame_equal(lb1, lb2, check_exact=False, rtol=1e-9)  # same trials, scores, weights
    p1, p2 = (models[j].predict(df["Drug"].tolist()[:20]) for j in (1, 2))
    np.testing.assert_allclose(p1, p2, rtol=1e-9)
