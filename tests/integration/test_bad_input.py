"""Careless input end to end (issue 21): target cells that are not numbers, conflicting duplicates and partial
SMILES through `uniqsar fit` / `uniqsar predict` (in-process CLI)."""
import json

import numpy as np
import pandas as pd

from tests.conftest import DATA, TINY_RECIPE
from uniqsar.cli import main


def test_fit_with_bad_target_cells_and_conflicts_then_predict_partial_smiles(tmp_path, capsys):
    df = pd.read_csv(DATA / "caco2_wang_200.csv").head(70)
    df["Y"] = df["Y"].astype(object)
    df.loc[3, "Y"], df.loc[4, "Y"], df.loc[5, "Y"], df.loc[6, "Y"] = "inf", ">-4.5", "ND", "1e400"
    dup = df.iloc[[10, 10]].assign(Y=[-3.0, -7.5])  # the same molecule measured 4.5 log units apart
    data = tmp_path / "data.csv"
    pd.concat([df, dup]).to_csv(data, index=False)
    run = tmp_path / "run"
    rc = main(["fit", str(data), "--target", "Y", "--preset", TINY_RECIPE, "--metric", "Spearman",
               "--drop-conflicting", "--no-cache", "--out", str(run)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "4 cell(s) left out (2 not finite, 1 censored value, 1 not a number" in err and "Traceback" not in err
    rep = json.loads((run / "data_report.json").read_text())["targets"]["Y"]
    assert rep["n_excluded"] == 4 and {e["value"] for e in rep["excluded_values"]} == {"inf", ">-4.5", "ND", "1e400"}
    assert rep["n_conflicting"] == 1 and rep["conflicts_dropped"]
    conflict = rep["conflict_examples"][0]["smiles"]
    oof = pd.read_csv(run / "oof.csv")
    assert conflict not in set(oof["smiles"]) and len(oof) == rep["n_train"] == 70 - 4 - 1
    assert json.loads((run / "manifest.json").read_text())["targets"]["Y"]["metric"] == "spearman"

    new = tmp_path / "new.csv"
    pd.DataFrame({"smiles": ["CCO", "CC\tO", "CCO ethanol", "CCOé☃", "[*]CC"]}).to_csv(new, index=False)
    assert main(["predict", str(run), str(new), "--out", str(tmp_path / "pred.csv")]) == 0
    pred = pd.read_csv(tmp_path / "pred.csv", keep_default_na=False)
    assert pred["error"].iloc[0] == "" and all(e.startswith("invalid SMILES") for e in pred["error"].iloc[1:])
    assert np.isnan(pd.to_numeric(pred["Y_pred"].iloc[1:], errors="coerce")).all()
