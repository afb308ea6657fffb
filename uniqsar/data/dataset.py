"""Read a labeled table, find the SMILES column, standardize, detect the task, merge duplicates.

Every input row is kept in the per-row frame (``rows``) with its canonical SMILES or a reason;
training uses the de-duplicated valid molecules of each target.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.data.standardize import DEFAULT_MODE, standardize_many

SMILES_CANDIDATES = ("smiles", "canonical_smiles", "drug")


class DataError(ValueError):
    """Input data that uniqsar cannot train or predict on; the message says why."""


def read_table(source) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True)
    path = Path(source)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    sep = "\t" if path.suffix.lower() in {".tsv", ".tab"} or path.name.endswith(".tsv.gz") else ","
    try:
        df = pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    if df.shape[0] == 0:
        raise DataError(f"{path} has a header but no rows")
    return df


def find_smiles_column(df: pd.DataFrame, smiles_col: str | None = None) -> str:
    if smiles_col is not None:
        if smiles_col not in df.columns:
            raise DataError(
                f"SMILES column {smiles_col!r} not found; columns are: {', '.join(map(str, df.columns))}"
            )
        return smiles_col
    lower = {str(c).lower(): c for c in df.columns}
    for cand in SMILES_CANDIDATES:
        if cand in lower:
            return lower[cand]
    raise DataError(
        "could not find the SMILES column (tried smiles, canonical_smiles, drug, any case); "
        f"pass --smiles-col. Columns are: {', '.join(map(str, df.columns))}"
    )


def detect_task(y: pd.Series, task: str = "auto", name: str = "target") -> str:
    values = y.dropna()
    if values.empty:
        raise DataError(f"target {name!r} has no values")
    if task not in {"auto", "regression", "binary"}:
        raise DataError(f"unknown task {task!r}; use auto, regression or binary")
    numeric = pd.to_numeric(values, errors="coerce")
    n_distinct = values.nunique()
    if task == "binary" or (task == "auto" and n_distinct == 2):
        if n_distinct < 2:
            raise DataError(f"target {name!r} has a single class ({values.iloc[0]!r}); binary needs two")
        if n_distinct > 2:
            raise DataError(f"target {name!r} has {n_distinct} distinct values; binary needs exactly two")
        return "binary"
    if n_distinct == 1:
        raise DataError(f"target {name!r} has a single value ({values.iloc[0]!r}); nothing to learn")
    if numeric.isna().any():
        bad = values[numeric.isna()].iloc[:3].tolist()
        raise DataError(f"target {name!r} is not numeric (e.g. {bad}); regression needs numbers")
    return "regression"


POSITIVE_WORDS = {"active", "yes", "true", "positive", "pos", "toxic", "inhibitor", "substrate", "permeable"}


def binary_labels(y: pd.Series) -> tuple[np.ndarray, list]:
    """Map a two-valued series to 0/1; returns (labels with NaN, [class0, class1]).

    0/1 and False/True keep their meaning; for text labels a positive-sounding one (active,
    yes, true, positive, ...) becomes class 1, otherwise the alphabetically later one."""
    present = y.dropna().unique().tolist()
    if set(present) <= {0, 1, True, False}:
        classes = [0, 1]
        mapping = {0: 0, 1: 1, False: 0, True: 1}
    else:
        classes = sorted(present, key=lambda v: (str(type(v)), v))
        positives = [c for c in classes if str(c).strip().lower() in POSITIVE_WORDS]
        if len(classes) == 2 and len(positives) == 1:
            classes = [c for c in classes if c != positives[0]] + positives
        mapping = {c: i for i, c in enumerate(classes)}
    labels = np.array([mapping.get(v, np.nan) if pd.notna(v) else np.nan for v in y], dtype=float)
    return labels, classes


@dataclass
class TargetData:
    """De-duplicated training data for one target."""

    name: str
    task: str
    smiles: np.ndarray  # canonical SMILES, unique
    y: np.ndarray  # float: value, or 0/1
    classes: list | None = None
    n_duplicates_merged: int = 0
    conflicts: list = field(default_factory=list)  # canonical SMILES with conflicting labels


@dataclass
class Dataset:
    rows: pd.DataFrame  # one row per input row: canonical, error
    smiles_col: str
    targets: dict[str, TargetData]
    report: dict


def standardize_column(df: pd.DataFrame, smiles_col: str, n_jobs: int = 1,
                       mode: str = DEFAULT_MODE) -> pd.DataFrame:
    canon, reasons = standardize_many(df[smiles_col].tolist(), n_jobs=n_jobs, mode=mode)
    return pd.DataFrame({"canonical": canon, "error": [r or "" for r in reasons]}, index=df.index)


def _merge(name, task, canon: pd.Series, y: np.ndarray, classes) -> TargetData:
    frame = pd.DataFrame({"smiles": canon.to_numpy(), "y": y}).dropna()
    if frame.empty:
        raise DataError(f"target {name!r}: no valid molecule with a value")
    n_dup = int(frame.duplicated("smiles").sum())
    conflicts: list = []
    if task == "regression":
        merged = frame.groupby("smiles", sort=False)["y"].mean()
    else:
        grouped = frame.groupby("smiles", sort=False)["y"]
        mean = grouped.mean()
        conflicts = mean[(mean > 0) & (mean < 1)].index.tolist()
        # majority vote; a tie goes to the positive class (rare; reported as a conflict)
        merged = (mean >= 0.5).astype(float)
    return TargetData(name, task, merged.index.to_numpy(dtype=object), merged.to_numpy(float), classes, n_dup, conflicts)


def prepare(df: pd.DataFrame, targets: list[str], smiles_col: str | None = None, task: str = "auto",
            n_jobs: int = 1, tasks: dict[str, str] | None = None, standardize: str = DEFAULT_MODE) -> Dataset:
    """Standardize ``df`` (``standardize``: full | canonical, see data/standardize.py) and build per-target
    training data. ``tasks`` pins known tasks."""
    if df.shape[0] == 0:
        raise DataError("the input table has no rows")
    if not targets:
        raise DataError("no target given (use --target COLUMN)")
    smiles_col = find_smiles_column(df, smiles_col)
    missing = [t for t in targets if t not in df.columns]
    if missing:
        raise DataError(f"target column(s) {missing} not found; columns are: {', '.join(map(str, df.columns))}")
    rows = standardize_column(df, smiles_col, n_jobs, standardize)
    valid = rows["error"] == ""
    if not valid.any():
        examples = df[smiles_col].head(3).tolist()
        raise DataError(f"no valid molecule in {len(df)} rows (e.g. {examples}); is {smiles_col!r} the SMILES column?")
    out: dict[str, TargetData] = {}
    for name in targets:
        col = df[name]
        t = (tasks or {}).get(name) or detect_task(col[valid], task, name)
        if t == "binary":
            y, classes = binary_labels(col.where(valid))  # classes from the rows that can train
        else:
            y, classes = pd.to_numeric(col, errors="coerce").to_numpy(float), None
        y = np.where(valid.to_numpy(), y, np.nan)
        out[name] = _merge(name, t, rows["canonical"], y, classes)
    invalid = rows[~valid]
    report = {
        "n_rows": int(len(df)),
        "standardize": standardize,
        "n_valid": int(valid.sum()),
        "n_invalid": int((~valid).sum()),
        "invalid_examples": [
            {"row": int(i), "smiles": str(df.at[i, smiles_col]), "reason": invalid.at[i, "error"]}
            for i in invalid.index[:10]
        ],
        "targets": {
            n: {
                "task": d.task,
                "n_train": int(len(d.y)),
                "n_missing": int(df[n].isna().sum()),
                "n_duplicates_merged": d.n_duplicates_merged,
                "n_conflicting": len(d.conflicts),
                "conflict_examples": d.conflicts[:10],
                **({"classes": [str(c) for c in d.classes], "positive_rate": float(d.y.mean())} if d.task == "binary" else
                   {"mean": float(d.y.mean()), "std": float(d.y.std())}),
            }
            for n, d in out.items()
        },
    }
    return Dataset(rows=rows, smiles_col=smiles_col, targets=out, report=report)
