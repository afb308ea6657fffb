"""Multiclass targets: when ``auto`` picks multiclass, the class labels, duplicate merging.

The rule (README, "Tasks"): with ``--task auto`` a target is **multiclass** when it has 3 to
``MAX_AUTO_CLASSES`` (20) distinct labels and either

* most of its cells (more than half) are text (``red`` / ``green`` / ``blue``; compared case- and space-insensitively), or
* every cell is a number with an integral value (``0``, ``1``, ``2``, ``3.0``), none is text, and every value
  occurs at least twice: integer class codes.

Integer-valued quantities (counts, ranks, ring numbers) can look exactly like class codes, so the decision is
logged with its reason either way: ``--task regression`` overrides a multiclass reading, and integer values
read as regression because one of them occurs only once (a count's long tail: 0-5 rings and a single 9)
say so and name ``--task multiclass``. A class with too few molecules for the folds fails with a message
that names ``--task regression``. ``--task multiclass`` takes any target with at least
two distinct labels (no upper limit). Missing-value words (``NA``, ``n/a``, ...) are missing, not a class.

Classes are numbered 0..K-1: numbers first, in numeric order, then text in alphabetical order (by the
compared form); each is named by its first spelling in the data (an integral float as an int).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MAX_AUTO_CLASSES = 20


def _err(msg: str):
    from uniqsar.data.targets import DataError

    return DataError(msg)


def auto_multiclass(keys: list, n_text: int, name: str) -> bool:
    """``auto``'s decision for a target with label keys ``keys`` (``targets.label_key`` of the non-missing
    cells) of which ``n_text`` are text; logged whenever integer values are involved."""
    from uniqsar.util import log

    counts = pd.Series(keys).value_counts()
    k = len(counts)
    if not 3 <= k <= MAX_AUTO_CLASSES:
        return False
    if n_text * 2 > len(keys):
        log(f"target {name!r}: {k} distinct text labels -> multiclass (auto)")
        return True
    if n_text or not all(float(v).is_integer() for v in counts.index):
        return False
    shown = ", ".join(f"{v:g}" for v in sorted(counts.index)[:8]) + (", ..." if k > 8 else "")
    once = sorted(counts.index[counts < 2])
    if once:
        log(f"target {name!r}: {k} distinct integer values ({shown}), but {once[0]:g} occurs only once -> regression "
            "(auto); pass --task multiclass if they are class codes")
        return False
    log(f"target {name!r}: {k} distinct integer values ({shown}) -> multiclass (auto: 3-{MAX_AUTO_CLASSES} integer "
        "codes, each at least twice, are classes); pass --task regression if it is a numeric quantity")
    return True


def check_multiclass(distinct: list, name: str) -> str:
    if len(distinct) < 2:
        raise _err(f"target {name!r} has a single class ({distinct[0]!r}); multiclass needs at least two")
    return "multiclass"


def _order_key(k):
    return (isinstance(k, str), k)


def class_labels(y: pd.Series) -> tuple[np.ndarray, list]:
    """Class indices (float, NaN where missing) and the label of each class (see the module docstring)."""
    from uniqsar.data.targets import label_key, label_name

    keys = [label_key(v) for v in y]
    names: dict = {}
    for k, v in zip(keys, y):
        if k is not None and k not in names:
            names[k] = label_name(v)
    order = sorted(names, key=_order_key)
    index = {k: i for i, k in enumerate(order)}
    labels = np.array([index[k] if k is not None else np.nan for k in keys], dtype=float)
    return labels, [names[k] for k in order]


def merge_class_duplicates(name: str, frame: pd.DataFrame, classes: list, n_dup: int, drop_conflicting: bool):
    """``frame`` (smiles, y = class index; no NaN) -> TargetData: majority label per molecule (a tie goes to the
    earlier class), conflicts where duplicate labels disagree."""
    from uniqsar.data.targets import DataError, TargetData

    grouped = frame.groupby("smiles", sort=False)["y"]
    n_labels = grouped.nunique()
    merged = grouped.agg(lambda v: float(pd.Series(v).value_counts().sort_index().idxmax()))
    conflicting = n_labels[n_labels > 1].index
    values = frame[frame["smiles"].isin(set(conflicting))].groupby("smiles", sort=False)["y"].apply(list)
    details = [{"smiles": s, "values": [classes[int(v)] for v in values[s]], "spread": float(n_labels[s] - 1)}
               for s in conflicting]
    if drop_conflicting and len(conflicting):
        merged = merged.drop(conflicting)
        if merged.empty:
            raise DataError(f"target {name!r}: every molecule has conflicting duplicate labels; nothing left to "
                            "train on")
    return TargetData(name, "multiclass", merged.index.to_numpy(dtype=object), merged.to_numpy(float), classes,
                      n_dup, list(conflicting), details, None, bool(drop_conflicting and len(conflicting)))


def class_counts(y: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y, float)
    return np.bincount(y[~np.isnan(y)].astype(int), minlength=n_classes)

