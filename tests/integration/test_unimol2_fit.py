"""`uniqsar fit` end to end with Uni-Mol2: the embedding featurizer feeding LightGBM and the fine-tuning learner
(random TINY init), on 45 molecules of Caco-2. Then predict from the run directory."""
import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA

RECIPE = """
name = "unimol2-test"
[cv]
n_folds = 3
split = "scaffold"

[featurizers]
um = { key = "unimol2", weights = "random", arch = { layers = 2, embed_dim = 32, heads = 2, pair_dim = 16, pair_hidden = 4 }, pooling = "cls+mean" }

[[models]]
learner = "lightgbm"
features = ["um"]
n_trials = 2
params = { n_estimators = 40 }

[[models]]
learner = "unimol2"
n_trials = 1
search = false
params = { weights = "random", arch = { layers = 2, embed_dim = 32, heads = 2, pair_dim = 16, pair_hidden = 4 }, epochs = 3, n_conformers = 2, lr = 1e-3, batch_size = 16 }

[ensemble]
method = "greedy"
size = 10
top_trials = 1
"""


@pytest.mark.slow
def test_fit_with_unimol2(tmp_path, monkeypatch):
    import uniqsar.pipeline.target
    from uniqsar.api import load_run
    from uniqsar.pipeline.fit import FitOptions, fit

    # one torch thread per learner: tiny models on a shared 2-core machine are much slower with more
    monkeypatch.setattr(uniqsar.pipeline.target, "threads_per_job", lambda n_jobs: 1)

    recipe = tmp_path / "um.toml"
    recipe.write_text(RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv").iloc[:45]
    out = fit(df, tmp_path / "run", FitOptions(targets=("Y",), preset=str(recipe), seed=1, n_jobs=1))
    board = pd.read_csv(out / "leaderboard.csv")
    assert {"lightgbm", "unimol2"} <= set(board["learner"])
    assert np.isfinite(board.loc[board["learner"] == "unimol2", "cv_score"]).all()
    manifest = json.loads((out / "manifest.json").read_text())
    reps = manifest["representations"]  # the weights of every representation; random inits: TDC-clean
    assert set(reps) == {"featurizer:um", "learner:unimol2__smiles"}
    assert reps["featurizer:um"]["kind"] == "random" and reps["learner:unimol2__smiles"]["config"]["layers"] == 2
    assert not [k for k in manifest if k.endswith("_weights")]  # one place, not one entry per model
    assert all(r["provenance"]["tdc_admet_test_excluded"] is True for r in reps.values())
    pred = load_run(out).predict(list(df["Drug"][:5]) + ["not_a_smiles"])
    assert np.isfinite(pred[:5]).all() and np.isnan(pred[5])
