"""Regression target transforms. Learners fit the transformed target; every score and every
prediction leaving uniqsar is on the original scale.

``auto`` picks ``log10p1`` (log10(1 + y)) for non-negative targets with a long right tail
(skewness > 2), e.g. clearance, half-life or volume of distribution; otherwise ``none``.
"""
from __future__ import annotations

import numpy as np

TRANSFORMS = ("none", "log10p1", "auto")


def choose(name: str, y: np.ndarray, task: str) -> str:
    if name not in TRANSFORMS:
        raise ValueError(f"unknown target transform {name!r}; use one of {TRANSFORMS}")
    if task != "regression" or name == "none":
        return "none"
    if name == "log10p1":
        if np.nanmin(y) <= -1:
            raise ValueError("log10p1 needs targets > -1")
        return name
    y = y[np.isfinite(y)]
    if len(y) < 3 or y.min() < 0 or np.ptp(y) == 0:
        return "none"
    from scipy.stats import skew

    return "log10p1" if skew(y) > 2.0 else "none"


def forward(name: str, y: np.ndarray) -> np.ndarray:
    return np.log10(1.0 + y) if name == "log10p1" else y


def inverse(name: str, z: np.ndarray) -> np.ndarray:
    return np.power(10.0, z) - 1.0 if name == "log10p1" else z
