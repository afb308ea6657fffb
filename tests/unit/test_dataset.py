"""Unit tests for uniqsar.data.dataset: reading, column detection, task detection, merging."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uniqsar.data.dataset import (
    DataError,
    binary_labels,
    detect_task,
    find_smiles_column,
    prepare,
    read_table,
)
from uniqsar.data.targets import parse_cell

DATA = Path(__file__).resolve().parents[1] / "data"
UNIT_DATA = DATA / "unit"


# -- read_table -----------------------------------------------------------------------------------
def test_read_csv_and_tsv(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text("smiles,y\nCCO,1.0\nCCN,2.0\n")
    tsv = tmp_path / "a.tsv"
    tsv.write_text("smiles\ty\nCCO\t1.0\nCCN\t2.0\n")
    for path in (csv, tsv, str(csv)):
        df = read_table(path)
        assert list(df.columns) == ["smiles", "y"]
        assert df["y"].tolist() == [1.0, 2.0]


def test_read_dataframe_resets_index():
    df = pd.DataFrame({"smiles": ["CCO", "CCN"], "y": [1, 2]}, index=[10, 20])
    out = read_table(df)
    assert out.index.tolist() == [0, 1]


def test_read_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_table(tmp_path / "nope.csv")


def test_read_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(p)


def test_read_header_only_file():
    with pytest.raises(DataError, match="header but no rows"):
        read_table(UNIT_DATA / "header_only.csv")


def test_read_fixture_with_invalid_rows():
    df = read_table(UNIT_DATA / "mixed_rows.csv")
    assert len(df) == 8  # every row kept, invalid or not


# -- SMILES column --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["smiles", "SMILES", "Smiles", "Drug", "DRUG", "canonical_smiles", "Canonical_SMILES"])
def test_find_smiles_column_any_case(name):
    df = pd.DataFrame({"id": [1], name: ["CCO"], "y": [1.0]})
    assert find_smiles_column(df) == name


def test_find_smiles_column_prefers_smiles_over_drug():
    df = pd.DataFrame({"Drug": ["aspirin"], "SMILES": ["CCO"]})
    assert find_smiles_column(df) == "SMILES"


def test_find_smiles_column_error_lists_columns():
    df = pd.DataFrame({"molecule": ["CCO"], "logS": [1.0], "compound_id": ["a"]})
    with pytest.raises(DataError) as info:
        find_smiles_column(df)
    msg = str(info.value)
    for col in ("molecule", "logS", "compound_id"):
        assert col in msg
    assert "--smiles-col" in msg


def test_find_smiles_column_explicit():
    df = pd.DataFrame({"molecule": ["CCO"], "smiles": ["x"]})
    assert find_smiles_column(df, "molecule") == "molecule"
    with pytest.raises(DataError, match="'mol' not found.*molecule"):
        find_smiles_column(df, "mol")


# -- task detection -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [[0, 1, 1, 0], [0.0, 1.0, np.nan, 1.0], ["active", "inactive", "active"], [True, False, True], ["Y", "N", "N"], [-1, 1, 1]],
)
def test_detect_binary(values):
    assert detect_task(pd.Series(values)) == "binary"


@pytest.mark.parametrize("values", [[0.1, 0.5, 2.0], [1, 2, 3, 4], ["1.5", "2.5", "3"], [1.0, np.nan, 2.0, 3.0]])
def test_detect_regression(values):
    assert detect_task(pd.Series(values)) == "regression"


def test_detect_forced_task():
    assert detect_task(pd.Series([1.0, 2.0]), task="regression") == "regression"
    with pytest.raises(DataError, match="3 distinct values; binary needs exactly two"):
        detect_task(pd.Series([1, 2, 3]), task="binary")
    with pytest.raises(DataError, match="unknown task"):
        detect_task(pd.Series([1, 2, 3]), task="ranking")
    assert detect_task(pd.Series([1, 2, 3]), task="multiclass") == "multiclass"


def test_detect_single_class_errors():
    with pytest.raises(DataError, match="single class"):
        detect_task(pd.Series([1, 1, 1]), task="binary", name="act")
    with pytest.raises(DataError, match="single value"):
        detect_task(pd.Series([2.5, 2.5, np.nan]), name="logS")


def test_detect_non_numeric_regression():
    with pytest.raises(DataError, match="not numeric.*regression needs numbers"):
        detect_task(pd.Series(["1.0", "high", "low", "2"]))


def test_detect_all_missing():
    with pytest.raises(DataError, match="no values"):
        detect_task(pd.Series([np.nan, np.nan]))


def test_binary_labels_numeric_and_strings():
    y, classes = binary_labels(pd.Series([1, 0, np.nan, 1]))
    assert classes == [0, 1]
    np.testing.assert_array_equal(y, [1.0, 0.0, np.nan, 1.0])
    y, classes = binary_labels(pd.Series(["no", "yes", None, "no"]))
    assert classes == ["no", "yes"]
    np.testing.assert_array_equal(y, [0.0, 1.0, np.nan, 0.0])
    # object column of booleans with a gap (what read_csv gives for True/False/<empty>)
    y, classes = binary_labels(pd.Series([True, False, None], dtype=object))
    np.testing.assert_array_equal(y, [1.0, 0.0, np.nan])


def test_bool_dtype_target(tmp_path):
    y, classes = binary_labels(pd.Series([True, False, True]))
    np.testing.assert_array_equal(y, [1.0, 0.0, 1.0])
    p = tmp_path / "bool.csv"
    p.write_text("smiles,y\nCCO,True\nCCN,False\nCCC,True\nc1ccccc1,False\n")
    t = prepare(read_table(p), ["y"]).targets["y"]
    assert dict(zip(t.smiles, t.y)) == {"CCO": 1.0, "CCN": 0.0, "CCC": 1.0, "c1ccccc1": 0.0}


# -- prepare --------------------------------------------------------------------------------------
def _frame(smiles, **targets):
    return pd.DataFrame({"smiles": smiles, **targets})


def test_prepare_keeps_every_row_and_reports_invalid():
    df = read_table(UNIT_DATA / "mixed_rows.csv")
    ds = prepare(df, ["y"])
    assert len(ds.rows) == len(df)
    assert ds.rows.index.tolist() == df.index.tolist()
    bad = ds.rows["error"] != ""
    assert bad.sum() == 3
    assert ds.rows.loc[bad, "canonical"].isna().all()
    assert ds.report["n_rows"] == 8 and ds.report["n_valid"] == 5 and ds.report["n_invalid"] == 3
    reasons = {e["row"]: e["reason"] for e in ds.report["invalid_examples"]}
    assert set(reasons) == set(np.flatnonzero(bad.to_numpy()).tolist())
    assert all(reasons.values())
    t = ds.targets["y"]
    # invalid rows carry values in the file, but none of them reaches training
    assert set(t.smiles) == set(ds.rows.loc[~bad, "canonical"]) - {None}
    assert 999.0 not in t.y


def test_prepare_missing_target_values_not_used():
    df = _frame(["CCO", "CCN", "c1ccccc1", "CCC", "CCCl"], y=[1.0, np.nan, 2.0, np.nan, 4.0])
    ds = prepare(df, ["y"])
    t = ds.targets["y"]
    assert sorted(t.smiles.tolist()) == sorted(["CCO", "c1ccccc1", "CCCl"])
    assert not np.isnan(t.y).any()
    assert ds.report["targets"]["y"]["n_missing"] == 2
    assert ds.report["targets"]["y"]["n_train"] == 3


def test_prepare_merges_regression_duplicates_by_mean():
    df = _frame(["CCO", "OCC", "C(O)C", "CCN", "c1ccccc1"], y=[1.0, 2.0, 6.0, 5.0, 7.0])
    t = prepare(df, ["y"]).targets["y"]
    got = dict(zip(t.smiles, t.y))
    assert got == {"CCO": 3.0, "CCN": 5.0, "c1ccccc1": 7.0}
    assert t.n_duplicates_merged == 2
    assert len(set(t.smiles)) == len(t.smiles)


def test_prepare_default_keeps_salts_full_merges_them_with_the_parent():
    df = _frame(["CCN", "CCN.Cl", "CC[NH3+].[Cl-]", "CCO"], y=[1.0, 2.0, 3.0, 4.0])
    t = prepare(df, ["y"]).targets["y"]  # default canonical: each salt form is its own molecule
    assert len(t.smiles) == 4 and t.n_duplicates_merged == 0 and prepare(df, ["y"]).report["standardize"] == "canonical"
    full = prepare(df, ["y"], standardize="full").targets["y"]
    assert dict(zip(full.smiles, full.y)) == {"CCN": 2.0, "CCO": 4.0} and full.n_duplicates_merged == 2


def test_prepare_merges_binary_duplicates_by_majority_and_reports_conflicts():
    df = _frame(
        ["CCO", "OCC", "C(O)C", "CCN", "NCC", "c1ccccc1", "CC", "CCCC", "C(C)CC"],
        y=[0, 0, 1, 1, 1, 0, 1, 0, 0],
    )
    ds = prepare(df, ["y"])
    t = ds.targets["y"]
    got = dict(zip(t.smiles, t.y))
    assert got == {"CCO": 0.0, "CCN": 1.0, "c1ccccc1": 0.0, "CC": 1.0, "CCCC": 0.0}
    assert t.conflicts == ["CCO"]
    assert ds.report["targets"]["y"]["n_conflicting"] == 1
    assert [c["smiles"] for c in ds.report["targets"]["y"]["conflict_examples"]] == ["CCO"]
    assert t.n_duplicates_merged == 4


def test_prepare_string_binary_labels():
    df = _frame(["CCO", "CCN", "c1ccccc1", "CCCC"], act=["active", "inactive", "active", "inactive"])
    ds = prepare(df, ["act"])
    t = ds.targets["act"]
    assert t.task == "binary"
    assert sorted(t.classes) == ["active", "inactive"]
    got = dict(zip(t.smiles, t.y))
    assert got["CCO"] == got["c1ccccc1"] != got["CCN"] == got["CCCC"]
    assert ds.report["targets"]["act"]["positive_rate"] == 0.5


def test_prepare_label_on_invalid_row_does_not_shift_classes():
    df = _frame(["CCO", "CCN", "c1ccccc1", "CCCC", "not_a_smiles"],
                y=["active", "inactive", "active", "inactive", "Active"])
    t = prepare(df, ["y"]).targets["y"]
    assert sorted(t.classes) == ["active", "inactive"]
    got = dict(zip(t.smiles, t.y))
    assert got["CCO"] != got["CCN"]


def test_prepare_multiple_targets_independent():
    df = _frame(["CCO", "CCN", "c1ccccc1", "CCC"], a=[1.0, 2.0, np.nan, 3.0], b=[0, 1, 1, np.nan])
    ds = prepare(df, ["a", "b"])
    assert ds.targets["a"].task == "regression" and ds.targets["b"].task == "binary"
    assert "c1ccccc1" not in ds.targets["a"].smiles and "CCC" not in ds.targets["b"].smiles


def test_prepare_pinned_tasks():
    df = _frame(["CCO", "CCN", "c1ccccc1"], y=[0.0, 1.0, 1.0])
    ds = prepare(df, ["y"], tasks={"y": "regression"})
    assert ds.targets["y"].task == "regression"


def test_prepare_errors():
    df = _frame(["CCO", "CCN"], y=[1.0, 2.0])
    with pytest.raises(DataError, match="target column.*'nope'.*smiles, y"):
        prepare(df, ["nope"])
    with pytest.raises(DataError, match="no target"):
        prepare(df, [])
    with pytest.raises(DataError, match="no rows"):
        prepare(df.iloc[:0], ["y"])
    with pytest.raises(DataError, match="no valid molecule.*SMILES column"):
        prepare(_frame(["foo", "bar", None], y=[1.0, 2.0, 3.0]), ["y"])
    with pytest.raises(DataError, match="single class"):
        prepare(_frame(["CCO", "CCN"], y=[1, 1]), ["y"], task="binary")
    with pytest.raises(DataError, match="not numeric"):  # auto: text labels are classes (tests/unit/test_multiclass.py)
        prepare(_frame(["CCO", "CCN", "CCC"], y=["a", "b", "c"]), ["y"], task="regression")
    # values only on invalid rows: nothing to learn
    with pytest.raises(DataError):
        prepare(_frame(["CCO", "bad", "bad2"], y=[np.nan, 1.0, 2.0]), ["y"])


def test_prepare_on_tdc_file():
    df = read_table(DATA / "bbb_martins_200.csv")
    ds = prepare(df, ["Y"])
    assert ds.smiles_col == "Drug"
    t = ds.targets["Y"]
    assert t.task == "binary"
    assert set(np.unique(t.y)) == {0.0, 1.0}
    assert ds.report["n_valid"] + ds.report["n_invalid"] == 200
    assert len(t.y) + t.n_duplicates_merged + ds.report["n_invalid"] <= 200


# -- target cells: only finite numbers train; the rest is listed with its raw value -------------------
def test_unusable_target_cells_leave_only_that_target(tmp_path):
    p = tmp_path / "cells.csv"
    p.write_text("smiles,y,z\nCCO,1.0,1\nCCN,inf,2\nCCC,1e400,3\nCCCC,>10,4\nCCCCC,<0.1,5\nc1ccccc1,>=5,6\n"
                 "CCCl,ND,7\nCCBr,n/a,8\nCCF,2.5,9\nCCI,,10\nOCCO,3.0,11\n")
    ds = prepare(read_table(p), ["y", "z"])
    rep = ds.report["targets"]["y"]
    assert dict(zip(ds.targets["y"].smiles, ds.targets["y"].y)) == {"CCO": 1.0, "CCF": 2.5, "OCCO": 3.0}
    assert len(ds.targets["z"].y) == 11  # the molecules stay for the other target
    assert rep["n_missing"] == 1 and rep["n_excluded"] == 7
    assert rep["excluded_by_reason"] == {"not finite": 2, "censored value": 3, "not a number": 1,
                                         "missing-value marker": 1}
    got = {(e["row"], e["value"], e["reason"]) for e in rep["excluded_values"]}
    assert got == {(1, "inf", "not finite"), (2, "1e400", "not finite"), (3, ">10", "censored value"),
                   (4, "<0.1", "censored value"), (5, ">=5", "censored value"), (6, "ND", "not a number"),
                   (7, "n/a", "missing-value marker")}
    assert np.isfinite(ds.targets["y"].y).all()
    json.dumps(ds.report)  # data_report.json is plain JSON


@pytest.mark.parametrize("cell, reason", [("inf", "not finite"), ("-inf", "not finite"), ("1e400", "not finite"),
                                          (float("inf"), "not finite"), (">10", "censored value"),
                                          ("< 0.1", "censored value"), ("≥5", "censored value"),
                                          ("ND", "not a number"), ("10 nM", "not a number"),
                                          ("NA", "missing-value marker"), ("null", "missing-value marker")])
def test_parse_cell_reasons(cell, reason):
    assert parse_cell(cell)[1] == reason


def test_parse_cell_numbers_and_empty():
    assert parse_cell(" 2.5 ") == (2.5, None) and parse_cell(3) == (3.0, None) and parse_cell("-1e-3")[0] == -1e-3
    assert parse_cell("")[1] is None and np.isnan(parse_cell(None)[0])


# -- binary labels ----------------------------------------------------------------------------------------
def test_mixed_case_and_space_binary_labels():
    df = _frame(["CCO", "CCN", "CCC", "CCCC", "c1ccccc1", "CCCl"], y=["Yes", "yes ", "No", " no", "YES", "NO"])
    t = prepare(df, ["y"]).targets["y"]
    assert t.task == "binary" and t.classes == ["No", "Yes"]
    assert dict(zip(t.smiles, t.y)) == {"CCO": 1.0, "CCN": 1.0, "CCC": 0.0, "CCCC": 0.0, "c1ccccc1": 1.0, "CCCl": 0.0}


@pytest.mark.parametrize("pos, neg", [("True", "false"), ("Active", "inactive "), ("pos", "NEG"), ("Positive", "negative")])
def test_positive_words_are_class_one(pos, neg):
    y, classes = binary_labels(pd.Series([pos, neg, pos.upper(), neg.strip().lower()]))
    np.testing.assert_array_equal(y, [1.0, 0.0, 1.0, 0.0])
    assert classes == [neg.strip(), pos]


def test_single_class_message_is_one_plain_sentence():
    with pytest.raises(DataError) as err:
        detect_task(pd.Series(np.array([1, 1, 1], dtype=np.int64)), task="binary", name="act")
    assert str(err.value) == "target 'act' has a single class (1); binary needs two"
    with pytest.raises(DataError) as err:
        detect_task(pd.Series(np.array([2.5, 2.5])), name="logS")
    assert "np." not in str(err.value) and "(2.5)" in str(err.value)


# -- regression duplicates: conflicts -----------------------------------------------------------------------
def _dups():
    # 20 distinct molecules spread 0..19 (robust std ~7.4, threshold ~3.7); CCO measured 1 and 6 (conflict),
    # CCN measured 3 and 4 (replicates that agree)
    smiles = [f"C{'C' * i}O" for i in range(2, 22)] + ["CCO", "OCC", "CCN", "NCC"]
    y = list(range(20)) + [1.0, 6.0, 3.0, 4.0]
    return _frame(smiles, y=y)


def test_regression_duplicates_that_disagree_are_conflicts():
    ds = prepare(_dups(), ["y"])
    rep, t = ds.report["targets"]["y"], ds.targets["y"]
    assert rep["n_conflicting"] == 1 and t.conflicts == ["CCO"]
    assert rep["conflict_examples"] == [{"smiles": "CCO", "values": [1.0, 6.0], "spread": 5.0}]
    assert rep["conflict_threshold"] == pytest.approx(0.5 * (14.25 - 4.75) / 1.349, rel=0.05)
    assert dict(zip(t.smiles, t.y))["CCO"] == 3.5 and not rep["conflicts_dropped"]  # default: the mean, reported


def test_drop_conflicting_leaves_them_out():
    ds = prepare(_dups(), ["y"], drop_conflicting=True)
    t = ds.targets["y"]
    assert "CCO" not in t.smiles and dict(zip(t.smiles, t.y))["CCN"] == 3.5
    assert ds.report["targets"]["y"]["conflicts_dropped"] and ds.report["targets"]["y"]["n_conflicting"] == 1
