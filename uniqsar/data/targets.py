"""Target cells -> training values: which cells count, the task, binary labels, duplicate merging.

Rules (README, "What happens inside" -> Data):

* A regression cell is used only when it is a finite number. Anything else leaves that row out of that target
  only (the molecule stays for the other targets) and is listed with its raw value and one of the reasons in
  ``REASONS``: ``inf``/``1e400`` are "not finite", ``>10``/``<0.1``/``>=5`` are "censored value", text such as
  ``ND`` is "not a number", and the usual missing-value words (``NA``, ``n/a``, ``null``...) are
  "missing-value marker". Empty cells are simply missing.
* Binary labels are compared case- and space-insensitively (``Yes``, ``yes `` and ``YES`` are one class).
* Regression duplicates (same canonical SMILES) are merged by their mean; they *conflict* when their range
  exceeds ``CONFLICT_SPREAD`` x the target's robust standard deviation (IQR / 1.349, the standard deviation when the
  IQR is 0), i.e. when two measurements of one molecule differ by more than half the spread of the whole data set.
  Binary duplicates conflict when their labels disagree (merged by majority). Conflicts are counted, listed and,
  with ``drop_conflicting``, left out.
* Multiclass (``classes.py``): 3-20 distinct labels, text or integer codes, are classes under ``auto`` (rule and
  labels: ``data/classes.py``); duplicates are merged by majority (ties: the earlier class) and conflict when
  their labels disagree.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class DataError(ValueError):
    """Input data that uniqsar cannot train or predict on; the message says why."""


NOT_FINITE, CENSORED, NOT_NUMBER, MARKER = "not finite", "censored value", "not a number", "missing-value marker"
REASONS = (NOT_FINITE, CENSORED, NOT_NUMBER, MARKER)
TASKS = ("auto", "regression", "binary", "multiclass")
# pandas' default missing-value words (read_table keeps them as text so that the report can list them)
NA_MARKERS = frozenset({"na", "n/a", "nan", "-nan", "null", "none", "#n/a", "#n/a n/a", "#na", "-1.#ind", "1.#ind",
                        "-1.#qnan", "1.#qnan", "<na>"})
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_CENSORED = re.compile(rf"^(?:<=|>=|=<|=>|<<|>>|<|>|≤|≥|~|≈)\s*{_NUMBER}$")
#: a regression duplicate conflicts when max - min > CONFLICT_SPREAD x robust std of the target
CONFLICT_SPREAD = 0.5
POSITIVE_WORDS = {"active", "yes", "y", "true", "t", "positive", "pos", "+", "toxic", "inhibitor", "substrate",
                  "permeable"}


def parse_cell(value) -> tuple[float, str | None]:
    """``(number, None)`` for a finite number, ``(nan, None)`` for an empty cell, ``(nan, reason)`` otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return math.nan, None
    if isinstance(value, (bool, np.bool_)):
        return float(value), None
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if math.isnan(v):
            return math.nan, None
        return (v, None) if math.isfinite(v) else (math.nan, NOT_FINITE)
    text = str(value).strip()
    if not text:
        return math.nan, None
    if text.lower() in NA_MARKERS:
        return math.nan, MARKER
    try:
        v = float(text)
    except ValueError:
        return math.nan, CENSORED if _CENSORED.match(text) else NOT_NUMBER
    return (v, None) if math.isfinite(v) else (math.nan, NOT_FINITE)


def label_key(value):
    """What binary labels are compared by: numbers as floats, text stripped and lower-cased; None when missing."""
    number, reason = parse_cell(value)
    if reason is None:
        return None if math.isnan(number) else number
    return None if reason == MARKER else str(value).strip().lower()


def label_name(v):
    """How a class is named in outputs: text stripped, numbers as Python numbers (an integral float as an int)."""
    if isinstance(v, str):
        return v.strip()
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _show(v) -> str:
    v = v.item() if isinstance(v, np.generic) else v
    return repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)


def detect_task(y: pd.Series, task: str = "auto", name: str = "target") -> str:
    from uniqsar.data.classes import MAX_AUTO_CLASSES, auto_multiclass, check_multiclass

    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; use {', '.join(TASKS)}")
    keys = [k for k in map(label_key, y) if k is not None]
    if not keys:
        raise DataError(f"target {name!r} has no values")
    distinct = list(dict.fromkeys(keys))
    if task == "multiclass":
        return check_multiclass(distinct, name)
    if task == "binary" or (task == "auto" and len(distinct) == 2):
        if len(distinct) < 2:
            raise DataError(f"target {name!r} has a single class ({_show(distinct[0])}); binary needs two")
        if len(distinct) > 2:
            shown = ", ".join(_show(v) for v in distinct[:5])
            raise DataError(f"target {name!r} has {len(distinct)} distinct values; binary needs exactly two "
                            f"(found {shown}{', ...' if len(distinct) > 5 else ''})"
                            + ("; use --task multiclass" if task == "binary" else ""))
        return "binary"
    parsed = [parse_cell(v) for v in y]
    text = [v for v, (_, r) in zip(y, parsed) if r == NOT_NUMBER]
    numbers = [x for x, r in parsed if r is None and not math.isnan(x)]
    if task == "auto" and auto_multiclass(keys, len(text), name):
        return "multiclass"
    if len(text) * 2 >= len(keys):
        many = (f"; auto picks multiclass only for 3-{MAX_AUTO_CLASSES} distinct labels (it has {len(distinct)}): "
                "pass --task multiclass to fit them as classes") if task == "auto" and len(distinct) > 2 else ""
        raise DataError(f"target {name!r} is not numeric: {len(text)} of {len(keys)} cells are text "
                        f"(e.g. {[str(v) for v in text[:3]]}); regression needs numbers{many}")
    if len(set(numbers)) < 2:
        what = f"a single value ({_show(numbers[0])})" if numbers else "no finite number"
        raise DataError(f"target {name!r} has {what}; nothing to learn")
    return "regression"


def binary_labels(y: pd.Series) -> tuple[np.ndarray, list]:
    """Map a two-valued series to 0/1; returns (labels with NaN, [class0, class1]).

    Labels are compared by ``label_key`` (case/space-insensitive). 0/1 and False/True keep their meaning; for
    text labels a positive-sounding one (active, yes, true, positive, ...) becomes class 1, otherwise the
    alphabetically later one. A class is named by its first spelling in the data."""
    keys = [label_key(v) for v in y]
    names: dict = {}
    for k, v in zip(keys, y):
        if k is not None and k not in names:
            names[k] = label_name(v)
    present = list(names)
    if set(present) <= {0.0, 1.0}:
        order = [0.0, 1.0]
        classes = [0, 1]
    else:
        order = sorted(present, key=lambda k: (isinstance(k, str), k))
        positives = [k for k in order if isinstance(k, str) and k in POSITIVE_WORDS]
        if len(order) == 2 and len(positives) == 1:
            order = [k for k in order if k != positives[0]] + positives
        classes = [names[k] for k in order]
    index = {k: i for i, k in enumerate(order)}
    labels = np.array([index.get(k, np.nan) if k is not None else np.nan for k in keys], dtype=float)
    return labels, classes


def regression_values(col: pd.Series) -> tuple[np.ndarray, list[dict]]:
    """Finite numbers (NaN elsewhere) and the excluded cells: ``[{"row", "value", "reason"}]``."""
    values, excluded = np.full(len(col), np.nan), []
    for i, (row, v) in enumerate(col.items()):
        x, reason = parse_cell(v)
        values[i] = x
        if reason is not None:
            excluded.append({"row": int(row), "value": str(v), "reason": reason})
    return values, excluded


def robust_std(y: np.ndarray) -> float:
    q1, q3 = np.percentile(y, [25, 75])
    return float((q3 - q1) / 1.349) if q3 > q1 else float(np.std(y))


@dataclass
class TargetData:
    """De-duplicated training data for one target."""

    name: str
    task: str
    smiles: np.ndarray  # canonical SMILES, unique
    y: np.ndarray  # float: value, 0/1, or the class index 0..K-1 (multiclass)
    classes: list | None = None  # binary / multiclass: the label of each class index, as written in the input
    n_duplicates_merged: int = 0
    conflicts: list = field(default_factory=list)  # canonical SMILES with conflicting labels
    conflict_details: list = field(default_factory=list)  # [{"smiles", "values", "spread"}] (all conflicts)
    conflict_threshold: float | None = None  # regression: the spread above which duplicates conflict
    conflicts_dropped: bool = False


def merge_duplicates(name, task, canon: pd.Series, y: np.ndarray, classes, drop_conflicting: bool = False) -> TargetData:
    frame = pd.DataFrame({"smiles": canon.to_numpy(), "y": y}).dropna()
    if frame.empty:
        raise DataError(f"target {name!r}: no valid molecule with a value")
    n_dup = int(frame.duplicated("smiles").sum())
    grouped = frame.groupby("smiles", sort=False)["y"]
    mean = grouped.mean()
    threshold = None
    if task == "multiclass":
        from uniqsar.data.classes import merge_class_duplicates

        return merge_class_duplicates(name, frame, classes, n_dup, drop_conflicting)
    if task == "regression":
        threshold = CONFLICT_SPREAD * robust_std(frame["y"].to_numpy())
        spread = grouped.max() - grouped.min()
        conflicting = spread[spread > threshold].index
        merged = mean
    else:
        spread = grouped.max() - grouped.min()  # 1 where the labels disagree
        conflicting = mean[(mean > 0) & (mean < 1)].index
        # majority vote; a tie goes to the positive class (rare; reported as a conflict)
        merged = (mean >= 0.5).astype(float)
    values = frame[frame["smiles"].isin(set(conflicting))].groupby("smiles", sort=False)["y"].apply(list)
    details = [{"smiles": s, "values": [float(v) for v in values[s]], "spread": float(spread[s])} for s in conflicting]
    if drop_conflicting and len(conflicting):
        merged = merged.drop(conflicting)
        if merged.empty:
            raise DataError(f"target {name!r}: every molecule has conflicting duplicate labels; nothing left to train on")
    return TargetData(name, task, merged.index.to_numpy(dtype=object), merged.to_numpy(float), classes, n_dup,
                      list(conflicting), details, threshold, bool(drop_conflicting and len(conflicting)))
