"""Fuzz (issue 21 item 2): several hundred malformed or unusual inputs - SMILES strings, target cells, file shapes
and encodings, tampered run directories - generated from fixed seeds. Checked: no traceback (nothing but the
documented error types escapes), rows in = rows out in order, every rejected row has a reason, every run
directory with a damaged file that predict needs is refused. One tiny run is fitted once for the module."""
import json
import random
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from uniqsar.cli import main
from uniqsar.data.dataset import DataError, prepare
from uniqsar.io.artifacts import RunDirError
from uniqsar.pipeline.fit import FitOptions, fit
from uniqsar.pipeline.predict import Run

RECIPE = """
name = "fuzz"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 128 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 1
params = { n_estimators = 10 }
"""
SEEDS = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@H](N)C(=O)O", "[Na+].[Cl-]", "O=C(O)c1ccccc1",
         "C1CC1", "N#N", "[2H]C", "c1ccc2ccccc2c1"]
JUNK = list("()[]=#@+-\\/%0123456789.:*$~ \t\n\"',;") + ["é", "☃", "\x00", "\u200b", "Cl", "Br", "[nH]", "[*]", "R1"]


def fuzz_smiles(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    out = ["", " ", None, float("nan"), "C" * 300, "c" * 50, "CCO ethanol", "CC\tO", "1234", "[Xx]", "[U+6]",
           "C1CC", "((C))", "C..C", "[Pt](N)(N)(Cl)Cl", "[Fe].[cH-]1cccc1", "*C", "[C@@H](F)(Cl)Br", " CCO "]
    while len(out) < n:
        s = list(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 4)):
            op, i = rng.random(), rng.randrange(len(s) + 1)
            if op < 0.4:
                s.insert(i, rng.choice(JUNK))
            elif op < 0.7 and s:
                del s[min(i, len(s) - 1)]
            elif s:
                s[min(i, len(s) - 1)] = rng.choice(JUNK)
        out.append("".join(s))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "r.toml").write_text(RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv").iloc[:60]
    return fit(df, root / "run", FitOptions(targets=("Y",), preset=str(root / "r.toml"), seed=1))


def test_fuzzed_smiles_keep_rows_and_reasons(run):
    smiles = fuzz_smiles(320)
    df = pd.DataFrame({"id": range(len(smiles)), "smiles": smiles})
    out = Run(run).predict_frame(df, confidence=None)
    assert list(out["id"]) == list(range(len(smiles)))  # rows in = rows out, in order
    bad = out["Y_pred"].isna().to_numpy()
    reasons = out["error"].fillna("").to_numpy()
    assert all(reasons[bad] != ""), out[bad & (reasons == "")]  # every rejected row has a reason
    assert np.isfinite(out.loc[~bad, "Y_pred"]).all() and all(reasons[~bad] == "")
    assert 0 < bad.sum() < len(smiles)


def _files(tmp):
    """(name, bytes) of unusual input files for predict."""
    ok = "smiles,name\nCCO,a\nc1ccccc1,b\n"
    cases = {
        "empty.csv": b"", "header_only.csv": b"smiles,name\n", "no_smiles_col.csv": b"mol,name\nCCO,a\n",
        "bom.csv": ("\ufeff" + ok).encode("utf-8"), "latin1.csv": "smiles,name\nCCO,\xe9\n".encode("latin-1"),
        "utf16.csv": ok.encode("utf-16"), "crlf.csv": ok.replace("\n", "\r\n").encode(), "plain.csv": ok.encode(),
        "ragged.csv": b"smiles,name\nCCO,a,b,c\nCCN\n", "tabs_in_csv.csv": b"smiles\tname\nCCO\ta\n",
        "tsv.tsv": b"smiles\tname\nCCO\ta\nCCN\tb\n", "quoted_newline.csv": b'smiles,name\nCCO,"a\nb"\nCCN,c\n',
        "dup_cols.csv": b"smiles,smiles\nCCO,CCN\n", "one_col.csv": b"smiles\nCCO\n\nCCN\n",
        "garbage.csv": bytes(range(256)) * 4, "only_newlines.csv": b"\n\n\n", "nul.csv": b"smiles\nC\x00CO\n",
        "unicode_header.csv": "SMILES,näme☃\nCCO,x\n".encode(), "numbers.csv": b"smiles\n1\n2.5\n-3\n",
        "spaces.csv": b" smiles , name \n CCO , a \n", "no_trailing_newline.csv": b"smiles\nCCO",
        "many_cols.csv": ("smiles," + ",".join(f"c{i}" for i in range(300)) + "\nCCO" + ",1" * 300 + "\n").encode(),
        "long.csv": ("smiles\n" + "C" * 5000 + "\n").encode(), "semicolon.csv": b"smiles;name\nCCO;a\n",
        "quotes.csv": b'"smiles","name"\n"CCO","a"\n"CC""O","b"\n', "na_cells.csv": b"smiles,name\nNA,a\nnull,b\n,c\n",
    }
    paths = {}
    for name, data in cases.items():
        (tmp / name).write_bytes(data)
        paths[name] = tmp / name
    paths["missing.csv"] = tmp / "does_not_exist.csv"
    paths["a_folder.csv"] = tmp / "folder.csv"
    (tmp / "folder.csv").mkdir()
    return paths


def test_fuzzed_files_never_traceback_and_keep_rows(run, tmp_path, capsys):
    n = 0
    for name, path in _files(tmp_path).items():
        out = tmp_path / f"out_{name}"
        rc = main(["-q", "predict", str(run), str(path), "--out", str(out)])  # an exception here fails the test
        err = capsys.readouterr().err
        n += 1
        assert rc in (0, 2), name
        if rc == 2:
            assert err.startswith("uniqsar predict: error: ") and len(err.strip().splitlines()) == 1, (name, err)
            assert not out.exists(), name
            continue
        res = pd.read_csv(out, dtype=str, keep_default_na=False)
        src = pd.read_csv(path, sep="\t" if name.endswith(".tsv") else ",", dtype=str, keep_default_na=False,
                          encoding_errors="strict")
        assert len(res) == len(src), name  # rows in = rows out
        assert all((res["Y_pred"] != "") | (res["error"] != "")), name  # no prediction -> a reason
    assert n == 28


def test_fuzzed_target_cells_are_counted_or_refused_clearly():
    rng = random.Random(1)
    cells = ["1.5", "-2", "inf", "-inf", "1e400", "nan", "NaN", ">10", "<0.1", "~3", "n/a", "ND", "", " ", "1,5",
             "3.2 ", "yes", "No", "0", "1", "1e-3", "☃", "10-20", "++1", "0x1A", "1_000", "∞", "None"]
    smiles = pd.read_csv(DATA / "caco2_wang_200.csv")["Drug"].tolist()[:40]
    n = 0
    for _ in range(100):
        y = [rng.choice(cells) if rng.random() < 0.3 else f"{rng.gauss(0, 1):.3f}" for _ in smiles]
        df = pd.DataFrame({"smiles": smiles, "Y": y})
        n += 1
        try:
            ds = prepare(df, ["Y"], None, "auto")
        except DataError as e:  # a clear refusal: one line
            assert str(e) and "\n" not in str(e)
            continue
        rep = ds.report
        assert rep["n_rows"] == len(df) and rep["n_valid"] + rep["n_invalid"] == len(df)
        t = rep["targets"]["Y"]
        assert np.isfinite(ds.targets["Y"].y).all()  # nothing that is not a finite number is trained on
        assert t["n_excluded"] == sum(t["excluded_by_reason"].values())
    assert n == 100


def _needed_files(run_dir):
    ens = json.loads((run_dir / "targets" / "Y" / "ensemble.json").read_text())
    member = [run_dir / m["path"] / f for m in ens["members"] for f in m["files"]]
    return [run_dir / "manifest.json", run_dir / "targets" / "Y" / "ensemble.json"] + member


def test_fuzzed_tampered_runs_are_refused(run, tmp_path):
    rng = random.Random(2)
    n_files = len(_needed_files(run))
    n = 0
    for i in range(48):
        dst = tmp_path / f"run{i}"
        shutil.copytree(run, dst)
        target = _needed_files(dst)[i % n_files]
        data = target.read_bytes()
        how = ["delete", "truncate", "flip", "empty", "folder"][i % 5]
        if target.suffix == ".json" and how == "flip":
            how = "truncate"  # a flipped digit can leave valid JSON (not a file predict can verify)
        if how == "delete":
            target.unlink()
        elif how == "truncate":
            target.write_bytes(data[: rng.randrange(max(1, len(data) // 2))])
        elif how == "flip":
            b = bytearray(data)
            j = rng.randrange(len(b))
            b[j] ^= 0xFF
            target.write_bytes(bytes(b))
        elif how == "empty":
            target.write_bytes(b"")
        else:
            target.unlink()
            target.mkdir()
        n += 1
        with pytest.raises(RunDirError):
            Run(dst)
        shutil.rmtree(dst)
    assert n == 48
