"""`uniqsar fit --task multiclass` end to end (issue 20 item 2): fit -> predict -> info -> reload, with text labels
(through the CLI, in-process) and integer class codes (Python API, auto-detected), plus text binary labels."""
import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA, TINY_RECIPE
from uniqsar import AutoQSAR, load_run
from uniqsar.cli import main


def _data() -> pd.DataFrame:
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    code = np.digitize(df["Y"], np.quantile(df["Y"], [1 / 3, 2 / 3]))
    df["code"] = code + 1  # integer class codes 1, 2, 3
    df["colour"] = np.array(["Low", "mid", "high"])[code]
    df["active"] = np.where(df["Y"] > df["Y"].median(), "yes", "no")
    df.loc[::9, "colour"] = "NA"  # missing for that target only
    return df


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mc")
    src = tmp / "train.csv"
    _data().to_csv(src, index=False)
    out = tmp / "run"
    assert main(["-q", "fit", str(src), "--target", "colour", "--target", "active", "--task", "auto", "--preset",
                 TINY_RECIPE, "--seed", "2", "--out", str(out)]) == 0
    return out, tmp


def test_text_labels_cli(text_run, capsys):
    out, tmp = text_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["targets"]["colour"]["task"] == "multiclass"
    assert manifest["targets"]["colour"]["metric"] == "macro_roc_auc"
    assert manifest["targets"]["colour"]["classes"] == ["high", "Low", "mid"]
    assert manifest["targets"]["active"] == {**manifest["targets"]["active"], "task": "binary", "classes": ["no", "yes"]}
    new = tmp / "new.csv"
    pd.DataFrame({"id": [1, 2, 3], "smiles": ["CCO", "xx(", "c1ccccc1O"]}).to_csv(new, index=False)
    capsys.readouterr()
    assert main(["-q", "predict", str(out), str(new), "--out", str(tmp / "pred.csv")]) == 0
    pred = pd.read_csv(tmp / "pred.csv", keep_default_na=False)
    assert list(pred.columns) == [
        "id", "smiles", "colour_pred", "colour_prob_high", "colour_prob_Low", "colour_prob_mid", "colour_set",
        "colour_nn_similarity", "colour_in_domain", "active_pred", "active_prob", "active_set",
        "active_nn_similarity", "active_in_domain", "error"]
    ok = pred.loc[[0, 2]]
    assert set(ok["colour_pred"]) <= {"high", "Low", "mid"} and set(ok["active_pred"]) <= {"yes", "no"}
    P = ok[["colour_prob_high", "colour_prob_Low", "colour_prob_mid"]].astype(float).to_numpy()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    assert list(ok["colour_pred"]) == list(np.array(["high", "Low", "mid"])[P.argmax(axis=1)])
    assert all(set(s.split("|")) <= {"high", "Low", "mid"} and s for s in ok["colour_set"])
    assert all(set(s.split("|")) <= {"yes", "no"} and s for s in ok["active_set"])
    assert (ok["active_pred"] == np.where(ok["active_prob"].astype(float) >= 0.5, "yes", "no")).all()
    assert pred.loc[1, ["colour_pred", "colour_prob_mid", "colour_set", "active_pred"]].tolist() == ["", "", "", ""]
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "target colour: multiclass" in text and "classes: high (" in text and "macro_roc_auc" in text
    assert "classes: no, yes" in text
    assert (out / "report.html").is_file() and "confusion matrix" in (out / "report.html").read_text()
    oof = pd.read_csv(out / "targets" / "colour" / "oof.csv")
    assert {"ensemble_nested:p0", "ensemble_nested:p2"} <= set(oof.columns)


def test_integer_codes_api_and_reload(tmp_path):
    df = _data()
    model = AutoQSAR(preset=TINY_RECIPE, seed=1, metric="log_loss").fit(df, target="code", out=tmp_path / "run")
    run = model.run_
    assert run.task("code") == "multiclass" and run.classes("code") == [1, 2, 3]
    smiles = df["Drug"].tolist()[:30]
    P = model.predict(smiles)
    assert P.shape == (30, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    frame = model.predict(df[["Drug"]].iloc[:30])
    assert str(frame["code_pred"].dtype) == "Int64"
    assert list(frame["code_pred"]) == list(np.array([1, 2, 3])[P.argmax(axis=1)])
    assert {"code_prob_1", "code_prob_2", "code_prob_3", "code_set"} <= set(frame.columns)
    np.testing.assert_array_equal(load_run(tmp_path / "run").predict(smiles), P)  # save / load: same numbers
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["code"]
    assert metrics["metric"] == "logloss" and metrics["cv_score_ensemble"] < np.log(3)  # beats the prior
    expl = model.explain(smiles[:2])
    assert len(expl) and expl["weight"].notna().all()


def test_integer_codes_can_be_fitted_as_regression(tmp_path):
    df = _data()
    model = AutoQSAR(preset=TINY_RECIPE, task="regression", seed=1).fit(df, target="code", out=tmp_path / "reg")
    assert model.run_.task("code") == "regression"
