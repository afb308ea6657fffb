"""Joint targets (issue 20 item 2, `[data] joint_targets = true` / `--joint`): one D-MPNN for a regression and a
binary target with missing labels, shared folds, one saved network serving both targets' ensembles."""
import json

import numpy as np
import pandas as pd

from tests.conftest import DATA
from uniqsar import AutoQSAR, load_run

RECIPE = """
name = "tiny_joint"
[data]
joint_targets = true
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 256 }
[[models]]
learner = "linear"
features = ["ecfp"]
n_trials = 1
search = false
[[models]]
learner = "dmpnn"
n_trials = 1
search = false
params = { hidden_size = 32, ffn_hidden_size = 32, depth = 2, epochs = 2, batch_size = 64 }
[ensemble]
method = "mean"
top_trials = 1
"""


def test_joint_dmpnn_fit_predict_reload(tmp_path):
    recipe = tmp_path / "joint.toml"
    recipe.write_text(RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv").iloc[:120].copy()
    df["B"] = np.where(df["Y"] > df["Y"].median(), "yes", "no")
    df.loc[::4, "Y"] = np.nan  # each target has molecules the other lacks
    df.loc[1::4, "B"] = None
    out = tmp_path / "run"
    model = AutoQSAR(preset=str(recipe), seed=1).fit(df, target=["Y", "B"], out=out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["joint_targets"] == {"targets": ["Y", "B"], "models": ["dmpnn__smiles"]}
    plan = json.loads((out / "joint" / "plan.json").read_text())
    assert plan["n_molecules"] == 120 and plan["n_labels"] == 180
    members = {t: json.loads((out / "targets" / t / "ensemble.json").read_text())["members"] for t in ("Y", "B")}
    joint = {t: [m for m in ms if "output" in m] for t, ms in members.items()}
    assert [m["output"] for m in joint["Y"]] == [0] and [m["output"] for m in joint["B"]] == [1]
    assert joint["Y"][0]["path"] == joint["B"][0]["path"] == "joint/dmpnn__smiles_t0"  # one network for both
    learner = json.loads((out / "joint" / "dmpnn__smiles_t0" / "full" / "learner.json").read_text())
    assert learner["task"] == "multitask" and learner["target_tasks"] == ["regression", "binary"]
    # both targets' folds are the pooled molecules' folds
    oof = {t: pd.read_csv(out / "targets" / t / "oof.csv") for t in ("Y", "B")}
    both = oof["Y"].merge(oof["B"], on="smiles")
    assert len(both) and (both["fold_x"] == both["fold_y"]).all()
    res = model.predict(df[["Drug"]].iloc[:6])
    assert res["Y_pred"].notna().all() and set(res["B_pred"]) <= {"yes", "no"}
    again = load_run(out).predict(df[["Drug"]].iloc[:6])
    pd.testing.assert_frame_equal(res, again)
    run = load_run(out)
    assert len({id(m) for _, ms in run._members("Y") + run._members("B") for m in ms}) == 3  # joint loaded once
