"""The command line, end to end, as a user runs it (subprocesses)."""
import json
import subprocess
import sys

import pandas as pd

from tests.conftest import DATA, TINY_RECIPE


def uq(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "uniqsar.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_fit_predict_info(tmp_path):
    run = tmp_path / "run"
    r = uq("fit", DATA / "bbb_martins_200.csv", "--target", "Y", "--preset", TINY_RECIPE, "--seed", "1",
           "--n-jobs", "2", "--standardize", "full", "--out", run)
    assert r.returncode == 0, r.stderr
    assert "featurized" in r.stderr and "best CV" in r.stderr  # progress output
    assert "ENSEMBLE" in r.stdout
    new = tmp_path / "new.csv"
    pd.DataFrame({"name": ["eth", "bad", "benz"], "SMILES": ["CCO", "xx(", "c1ccccc1"]}).to_csv(new, index=False)
    r = uq("predict", run, new, "--out", tmp_path / "pred.csv")
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(tmp_path / "pred.csv", keep_default_na=False)
    assert list(pred["name"]) == ["eth", "bad", "benz"]
    assert list(pred.columns) == ["name", "SMILES", "Y_pred", "Y_prob", "Y_set", "Y_nn_similarity", "Y_in_domain",
                                  "error"]
    assert pred.loc[1, "error"].startswith("invalid SMILES") and pred.loc[1, "Y_pred"] == ""
    assert pred.loc[1, ["Y_set", "Y_nn_similarity", "Y_in_domain"]].tolist() == ["", "", ""]
    assert set(pred.loc[[0, 2], "Y_set"]) <= {"0", "1", "0|1"} and set(pred.loc[[0, 2], "Y_in_domain"]) <= {"true", "false"}
    r = uq("info", run)
    assert r.returncode == 0 and "roc_auc" in r.stdout and "nested" in r.stdout and "standardize full" in r.stdout
    r = uq("info", run, "--json")
    manifest = json.loads(r.stdout)["manifest"]
    assert manifest["targets"]["Y"]["task"] == "binary" and manifest["standardize"] == "full"


def test_clear_errors(tmp_path):
    csv = tmp_path / "x.csv"
    pd.DataFrame({"mol": ["CCO", "CCN"], "Y": [1, 2]}).to_csv(csv, index=False)
    r = uq("fit", csv, "--target", "Y", "--out", tmp_path / "o")
    assert r.returncode == 2 and "SMILES column" in r.stderr and "mol" in r.stderr
    assert "Traceback" not in r.stderr
    r = uq("fit", csv, "--target", "Y", "--preset", "nope", "--out", tmp_path / "o2")
    assert r.returncode == 2 and "unknown preset" in r.stderr and "fast" in r.stderr
    r = uq("predict", tmp_path, csv, "--out", tmp_path / "p.csv")
    assert r.returncode == 2 and "not a uniqsar run directory" in r.stderr
    r = uq("fit", csv, "--target", "Y", "--learners", "nosuch", "--out", tmp_path / "o3")
    assert r.returncode == 2 and "lightgbm" in r.stderr


def test_help_lists_learners_and_presets():
    r = uq("fit", "--help")
    assert r.returncode == 0
    for word in ("lightgbm", "linear", "fast", "default", "best", "--time-budget", "--smiles-col", "--standardize"):
        assert word in r.stdout


def test_embed_models_come_from_the_registry(tmp_path, capsys):
    """`uniqsar embed --model` offers every featurizer with an embed_name; options it lacks are refused."""
    import numpy as np
    import pytest

    from uniqsar.cli import EMBED_MODELS, main

    assert {"unimol2", "dmpnn", "smiles_transformer"} <= set(EMBED_MODELS)
    csv = tmp_path / "in.csv"
    csv.write_text("smiles\nCCO\nnot_a_smiles\nc1ccccc1O\n")
    out = tmp_path / "st.npy"
    assert main(["embed", str(csv), "--model", "smiles_transformer", "--weights", "random", "--pooling", "cls",
                 "--out", str(out)]) == 0
    X = np.load(out, allow_pickle=False)
    assert X.shape == (3, 256) and np.isnan(X[1]).all() and np.isfinite(X[[0, 2]]).all()
    assert "RANDOM" in capsys.readouterr().out
    assert main(["embed", str(csv), "--model", "smiles_transformer", "--n-conformers", "2", "--out", str(out)]) == 2
    assert "--n-conformers does not apply to --model smiles_transformer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["embed", str(csv), "--model", "morgan_count", "--out", str(out)])
