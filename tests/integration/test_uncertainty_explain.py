"""Issue 19 end to end on ~200-400 molecules: calibration written by fit, the new predict columns,
explanations of the ensemble (synthetic one-substructure target), and the HTML report."""
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA, TINY_RECIPE
from uniqsar import AutoQSAR
from uniqsar.cli import main
from uniqsar.io.artifacts import read_json

CISPLATIN = "[NH3][Pt]([NH3])(Cl)Cl"
ACID = "[CX3](=O)[OX2H1,OX1-]"


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    df = pd.read_csv(DATA / "caco2_wang_200.csv")
    out = tmp_path_factory.mktemp("runs") / "caco2"
    return AutoQSAR(preset=TINY_RECIPE, seed=2).fit(df, target="Y", out=out), df, out


@pytest.fixture(scope="module")
def acid_run(tmp_path_factory):
    """y = 2 x [molecule has a carboxylic acid] + noise, on 400 molecules; full standardization."""
    from rdkit import Chem

    smiles = pd.concat([pd.read_csv(DATA / "caco2_wang_200.csv")["Drug"],
                        pd.read_csv(DATA / "bbb_martins_200.csv")["Drug"]]).tolist()
    pattern = Chem.MolFromSmarts(ACID)
    hits = [Chem.MolFromSmiles(s).GetSubstructMatches(pattern) for s in smiles]
    y = 2.0 * np.array([len(h) > 0 for h in hits]) + np.random.default_rng(0).normal(0, 0.1, len(smiles))
    out = tmp_path_factory.mktemp("runs") / "acid"
    model = AutoQSAR(preset=TINY_RECIPE, seed=1, learners=["lightgbm"], standardize="full").fit(
        pd.DataFrame({"smiles": smiles, "Y": y}), target="Y", out=out)
    return model, smiles, hits


def test_fit_records_calibration_and_oof_coverage(reg):
    _, _, out = reg
    m = read_json(out / "metrics.json")["Y"]
    assert set(m["oof_coverage"]) == {"0.8", "0.9", "0.95"}
    assert 0.8 <= m["oof_coverage"]["0.9"] <= 1.0 and m["oof_coverage"]["0.8"] <= m["oof_coverage"]["0.95"]
    cal = read_json(out / "targets" / "Y" / "calibration.json")
    assert cal["available"] and len(cal["scores"]) == 200 and cal["domain"]["threshold"] == m["domain_threshold"]
    assert (out / "targets" / "Y" / "oof_uncertainty.csv").is_file()


def test_predict_intervals_and_domain(reg):
    model, df, out = reg
    smiles = df["Drug"].tolist()[:5] + [CISPLATIN, "not_a_smiles"]
    res = model.predict(smiles, intervals=True)
    assert list(res.columns) == ["smiles", "Y_pred", "Y_lower", "Y_upper", "Y_nn_similarity", "Y_in_domain", "error"]
    good = res.iloc[:6]
    assert (good["Y_lower"] < good["Y_pred"]).all() and (good["Y_pred"] < good["Y_upper"]).all()
    np.testing.assert_allclose(good["Y_nn_similarity"].iloc[:5], 1.0)  # training molecules
    assert list(good["Y_in_domain"]) == ["true"] * 5 + ["false"]  # cisplatin is like nothing in caco2
    bad = res.iloc[6]
    assert np.isnan(bad[["Y_pred", "Y_lower", "Y_upper", "Y_nn_similarity"]].astype(float)).all()
    assert bad["Y_in_domain"] == "" and bad["error"]
    wide = model.predict(smiles[:5], intervals=True, confidence=0.95)
    narrow = model.predict(smiles[:5], intervals=True, confidence=0.8)
    assert ((wide["Y_upper"] - wide["Y_lower"]) > (narrow["Y_upper"] - narrow["Y_lower"])).all()
    np.testing.assert_array_equal(model.predict(smiles[:5]), res["Y_pred"].iloc[:5])  # plain predict unchanged


def test_binary_sets_and_report_without_cv(tmp_path):
    """A binary run without CV: sets and domain are empty (nothing to calibrate on), the report says so."""
    recipe = tmp_path / "nocv.toml"
    recipe.write_text('name = "nocv"\n[cv]\nn_folds = 0\n[featurizers]\necfp = { key = "morgan_count", n_bits = 256 }\n'
                      '[[models]]\nlearner = "lightgbm"\nfeatures = ["ecfp"]\nparams = { n_estimators = 30 }\n')
    df = pd.read_csv(DATA / "bbb_martins_200.csv")
    model = AutoQSAR(preset=str(recipe), seed=1).fit(df, target="Y", out=tmp_path / "run")
    res = model.predict(["CCO", "x("], intervals=True)
    assert list(res.columns) == ["smiles", "Y_pred", "Y_prob", "Y_set", "Y_nn_similarity", "Y_in_domain", "error"]
    assert list(res["Y_set"]) == ["", ""] and list(res["Y_in_domain"]) == ["", ""]
    assert np.isfinite(res["Y_nn_similarity"].iloc[0])
    assert "no cross-validation" in (tmp_path / "run" / "report.html").read_text()


def test_substructure_atoms_get_the_largest_weight(acid_run):
    model, smiles, hits = acid_run
    idx = [i for i, h in enumerate(hits) if h]
    weights = model.explain([smiles[i] for i in idx])
    top_in = []
    for k, i in enumerate(idx):
        w = weights[weights["row"] == k].sort_values("atom_index")["weight"].to_numpy()
        top_in.append(int(np.argmax(w)) in {a for match in hits[i] for a in match})
    assert len(idx) >= 40 and np.mean(top_in) >= 0.9, np.mean(top_in)


def test_explain_indexes_input_atoms_before_standardization(acid_run):
    from rdkit import Chem

    model = acid_run[0]
    salt = "[Na+].O=C([O-])c1ccccc1"  # full standardization drops Na+ and neutralizes the acid
    w = model.explain(salt)
    parsed = Chem.MolFromSmiles(salt)
    assert list(w["atom_index"]) == list(range(parsed.GetNumAtoms()))
    assert list(w["symbol"]) == [a.GetSymbol() for a in parsed.GetAtoms()]
    assert w.loc[0, "symbol"] == "Na" and w.loc[0, "weight"] == 0.0  # removed by standardization
    acid_atoms = {a for m in parsed.GetSubstructMatches(Chem.MolFromSmarts(ACID)) for a in m}
    assert int(w["weight"].idxmax()) in acid_atoms


def test_cli_explain_and_report(reg, tmp_path):
    _, _, out = reg
    csv = tmp_path / "x.csv"
    pd.DataFrame({"SMILES": ["CCO", "bad(", "c1ccccc1C(=O)O"]}).to_csv(csv, index=False)
    assert main(["explain", str(out), str(csv), "--out", str(tmp_path / "e")]) == 0
    w = pd.read_csv(tmp_path / "e" / "atom_weights.csv")
    assert list(w.columns) == ["row", "target", "atom_index", "symbol", "weight"]
    assert sorted(set(w["row"])) == [0, 2] and len(w) == 3 + 9
    svgs = sorted(p.name for p in (tmp_path / "e").glob("*.svg"))
    assert svgs == ["0_Y.svg", "2_Y.svg"] and "<svg" in (tmp_path / "e" / "2_Y.svg").read_text()
    assert main(["explain", str(out), "CCN", "--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "0_Y.svg").is_file()
    assert main(["explain", str(out), "CCN", "--target", "nope", "--out", str(tmp_path / "no")]) == 2
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert "<h2>Target Y</h2>" in (tmp_path / "r.html").read_text()


def test_report_structure_is_self_contained(reg):
    html = (reg[2] / "report.html").read_text()
    for section in ("<h2>Data</h2>", "Leaderboard and ensemble weights", "Per-fold scores", "alt='parity plot'",
                    "nested-CV mae", "alt='coverage against nominal'", "alt='error against similarity'",
                    "Applicability domain"):
        assert section in html, section
    assert len(re.findall(r"<img alt='[^']+' src='data:image/png;base64,", html)) >= 4
    assert not re.search(r"(src|href)=['\"](https?:)?//", html)  # nothing loaded from elsewhere


def test_report_without_matplotlib_says_so(reg, monkeypatch):
    from uniqsar.report import figures
    from uniqsar.report.html import build_html

    monkeypatch.setattr(figures, "_plt", lambda: None)
    html = build_html(reg[2])
    assert "<img" not in html and "matplotlib is not installed" in html and "Per-fold scores" in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(reg, tmp_path):
    png = tmp_path / "r.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,2400",
                    (reg[2] / "report.html").resolve().as_uri()], capture_output=True, timeout=120, check=True)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page is a few kB
