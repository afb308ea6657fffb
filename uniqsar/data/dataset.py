"""Read a labeled table, find the SMILES column, standardize, detect the task, merge duplicates.

Every input row is kept in the per-row frame (``rows``) with its canonical SMILES or a reason;
training uses the de-duplicated valid molecules of each target.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.data.classes import class_counts, class_labels
from uniqsar.data.standardize import DEFAULT_MODE, standardize_many
from uniqsar.data.targets import (  # noqa: F401  (DataError, detect_task, binary_labels: this module's API too)
    REASONS,
    DataError,
    TargetData,
    binary_labels,
    detect_task,
    merge_duplicates,
    regression_values,
)

SMILES_CANDIDATES = ("smiles", "canonical_smiles", "drug")
MAX_LISTED = 50  # excluded cells / conflicts listed per target in data_report.json (all are counted)


def read_table(source) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True)
    return next(iter_table(source, None))


def iter_table(source, chunksize: int | None, as_text: bool = False):
    """The table of ``source`` (a CSV or TSV path, read the same way by fit and predict) in frames of
    ``chunksize`` rows (None: one frame); ``as_text``: every cell as its text (predict passes the input
    columns through unchanged). Raises :class:`DataError` with the reason for a file it cannot read."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV/TSV file")
    sep = "\t" if path.suffix.lower() in {".tsv", ".tab"} or path.name.endswith(".tsv.gz") else ","
    n = 0
    try:
        # only empty cells are missing: "NA", "n/a", "null" stay text, so a target's report can list them
        frames = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""], chunksize=chunksize,
                             dtype=str if as_text else None)
        for df in [frames] if chunksize is None else frames:
            n += len(df)
            if len(df):
                yield df
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path} is not a well-formed {'TSV' if sep != ',' else 'CSV'} file "
                        f"({str(e).strip().splitlines()[-1]})") from None
    if n == 0:
        raise DataError(f"{path} has a header but no rows")


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


def prepare(df: pd.DataFrame, targets: list[str], smiles_col: str | None = None, task: str = "auto",
            n_jobs: int = 1, tasks: dict[str, str] | None = None, standardize: str = DEFAULT_MODE,
            drop_conflicting: bool = False) -> Dataset:
    """Standardize ``df`` (``standardize``: full | canonical, see data/standardize.py) and build per-target
    training data (cell rules, duplicates and conflicts: data/targets.py). ``tasks`` pins known tasks;
    ``drop_conflicting`` leaves molecules with conflicting duplicate labels out instead of merging them."""
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
    excluded: dict[str, list] = {}
    for name in targets:
        col = df[name]
        t = (tasks or {}).get(name) or detect_task(col[valid], task, name)
        excluded[name] = []
        if t == "binary":
            y, classes = binary_labels(col.where(valid))  # classes from the rows that can train
        elif t == "multiclass":
            y, classes = class_labels(col.where(valid))
        else:
            y, excluded[name] = regression_values(col)
            classes = None
        y = np.where(valid.to_numpy(), y, np.nan)
        out[name] = merge_duplicates(name, t, rows["canonical"], y, classes, drop_conflicting)
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
                "n_excluded": len(excluded[n]),
                "excluded_by_reason": {r: k for r in REASONS if (k := sum(e["reason"] == r for e in excluded[n]))},
                "excluded_values": excluded[n][:MAX_LISTED],
                "n_duplicates_merged": d.n_duplicates_merged,
                "n_conflicting": len(d.conflicts),
                **({"conflict_threshold": d.conflict_threshold} if d.conflict_threshold is not None else {}),
                "conflicts_dropped": d.conflicts_dropped,
                "conflict_examples": d.conflict_details[:MAX_LISTED],
                **({"classes": [str(c) for c in d.classes], "positive_rate": float(d.y.mean())} if d.task == "binary" else
                   {"classes": [str(c) for c in d.classes],
                    "class_counts": class_counts(d.y, len(d.classes)).tolist()} if d.task == "multiclass" else
                   {"mean": float(d.y.mean()), "std": float(d.y.std())}),
            }
            for n, d in out.items()
        },
    }
    return Dataset(rows=rows, smiles_col=smiles_col, targets=out, report=report)
