"""predict reads a TSV as fit does, keeps input cells as written, writes its output atomically (a failed
predict leaves nothing behind) and shows progress per chunk; the Uni-Mol2 featurizer reports progress from
the first molecules and records how many molecules it crops."""
import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from uniqsar.cli import main
from uniqsar.pipeline.fit import FitOptions, fit
from uniqsar.pipeline.predict import Run, predict_csv

RECIPE = """
name = "predict-io"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 128 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 1
params = { n_estimators = 20 }
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict_io")
    (root / "r.toml").write_text(RECIPE)
    df = pd.read_csv(DATA / "caco2_wang_200.csv").iloc[:60]
    return Run(fit(df, root / "run", FitOptions(targets=("Y",), preset=str(root / "r.toml"), seed=1)))


def _rows():
    return pd.DataFrame({"id": ["007", "NA", "x1", "", "12"],
                         "smiles": ["CCO", "c1ccccc1", "not a smiles", "CCN", "CC(=O)O"]})


def test_predict_reads_tsv_like_fit_and_keeps_cells_as_text(run, tmp_path, capsys):
    rows = _rows()
    rows.to_csv(tmp_path / "in.tsv", sep="\t", index=False)
    rows.to_csv(tmp_path / "in.csv", index=False)
    assert main(["-q", "predict", str(run.path), str(tmp_path / "in.tsv"), "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["-q", "predict", str(run.path), str(tmp_path / "in.csv"), "--out", str(tmp_path / "b.csv")]) == 0
    a = pd.read_csv(tmp_path / "a.csv", dtype=str, keep_default_na=False)
    b = pd.read_csv(tmp_path / "b.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(a, b)
    assert list(a["id"]) == ["007", "NA", "x1", "", "12"]  # as written: no 7, no NaN for "NA"
    assert a.loc[2, "error"].startswith("invalid SMILES") and a.loc[2, "Y_pred"] == ""
    assert all(a.loc[[0, 1, 3, 4], "error"] == "")


def test_chunks_give_the_same_rows_and_log_progress(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("uniqsar.util.QUIET", False)  # main(["-q", ...]) in other tests sets it
    rows = _rows()
    rows.to_csv(tmp_path / "in.csv", index=False)
    assert predict_csv(run, tmp_path / "in.csv", tmp_path / "one.csv") == 5
    capsys.readouterr()
    assert predict_csv(run, tmp_path / "in.csv", tmp_path / "two.csv", chunksize=2) == 5
    err = capsys.readouterr().err
    assert "predicted 2 rows" in err and "predicted 4 rows" in err and "predicted 5 rows" in err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv"))


def test_failed_predict_leaves_no_partial_output(run, tmp_path, monkeypatch):
    _rows().to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    out.write_text("an earlier result\n")
    real, calls = Run.predict_frame, []

    def failing(self, chunk, *args, **kwargs):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise RuntimeError("featurizer crashed")
        return real(self, chunk, *args, **kwargs)

    monkeypatch.setattr(Run, "predict_frame", failing)
    with pytest.raises(RuntimeError):
        predict_csv(run, tmp_path / "in.csv", out, chunksize=2)
    assert out.read_text() == "an earlier result\n"  # untouched, and no half-written file beside it
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.csv"]


def test_unreadable_input_is_one_line(run, tmp_path, capsys):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("smiles,name\nCCO,\xe9thanol\n".encode("latin-1"))
    rc = main(["-q", "predict", str(run.path), str(bad), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "not UTF-8" in err and len(err.strip().splitlines()) == 1
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("smiles,name\nCCO,a\nCCN,b,extra,cells\n")
    rc = main(["-q", "predict", str(run.path), str(ragged), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a well-formed CSV" in err and not (tmp_path / "p.csv").exists()


def test_conformer_progress_starts_with_the_first_block(monkeypatch, capsys):
    monkeypatch.setattr("uniqsar.util.QUIET", False)
    from uniqsar.models.unimol2 import conformer_cache

    monkeypatch.setattr(conformer_cache, "_chunk_coords", lambda jobs: [[(np.zeros((1, 3)), False)] for _ in jobs])
    jobs = [(f"C{i}", [42]) for i in range(100)]
    assert len(conformer_cache._coords_with_progress(jobs, 1, 1, verbose=True)) == 100
    err = capsys.readouterr().err
    assert "computing 100 molecule(s)" in err and "32/100 molecules" in err and "100/100 molecules" in err


def test_unimol2_records_molecules_cropped_at_max_atoms(tmp_path):
    from uniqsar.featurize.cache import FeatureCache
    from uniqsar.featurize.matrix import FeatureStore
    from uniqsar.models.unimol2.featurizer import UniMol2Embedding

    big = "C" * 130  # 130 heavy atoms
    feat = UniMol2Embedding(weights="random:tiny")
    assert feat.notes(["CCO", big, "c1ccccc1"]) == {"max_atoms": 128, "n_cropped": 1}

    class Stub(UniMol2Embedding):  # the store's wiring, without computing conformers
        def compute(self, smiles, n_jobs=1, return_reasons=False):
            return np.zeros((len(smiles), 2), np.float32)

    store = FeatureStore({"u": {"key": "unimol2", "params": {"weights": "random:tiny"}}}, FeatureCache(tmp_path),
                         verbose=False)
    store.featurizer = lambda alias: Stub(weights="random:tiny")
    store.get("u", ["CCO", big])
    assert store.notes["u"] == {"max_atoms": 128, "n_cropped": 1}
