"""Unit tests for uniqsar.data.transform (regression target transforms)."""
from __future__ import annotations

import numpy as np
import pytest

from uniqsar.data.transform import TRANSFORMS, choose, forward, inverse

RNG = np.random.default_rng(0)
SKEWED = RNG.lognormal(mean=0.0, sigma=1.5, size=300)  # clearance/half-life-like
SYMMETRIC = RNG.normal(loc=5.0, scale=1.0, size=300)  # logS/logD-like


@pytest.mark.parametrize("name", ["none", "log10p1"])
def test_roundtrip(name):
    y = np.concatenate([SKEWED, [0.0, 1e-9, 1e6]])
    z = forward(name, y)
    np.testing.assert_allclose(inverse(name, z), y, rtol=1e-10, atol=1e-12)


def test_log10p1_values():
    np.testing.assert_allclose(forward("log10p1", np.array([0.0, 9.0, 99.0])), [0.0, 1.0, 2.0])
    np.testing.assert_allclose(inverse("log10p1", np.array([0.0, 1.0, 2.0])), [0.0, 9.0, 99.0])
    assert np.isnan(forward("log10p1", np.array([np.nan]))).all()


def test_forward_none_is_identity():
    y = SYMMETRIC.copy()
    assert np.array_equal(forward("none", y), y) and np.array_equal(inverse("none", y), y)


def test_auto_picks_log_for_nonnegative_right_skewed():
    assert choose("auto", SKEWED, "regression") == "log10p1"
    with_nan = SKEWED.copy()
    with_nan[:5] = np.nan
    assert choose("auto", with_nan, "regression") == "log10p1"


@pytest.mark.parametrize(
    "y",
    [
        SYMMETRIC,  # not skewed
        -SKEWED,  # left-skewed
        np.concatenate([SKEWED, [-0.5]]),  # skewed but has a negative value
        RNG.uniform(0, 10, size=300),  # non-negative, not skewed
        np.array([1.0, 100.0]),  # too few values to judge
        np.full(50, 3.0),  # constant
    ],
    ids=["symmetric", "left_skewed", "has_negative", "uniform", "too_few", "constant"],
)
def test_auto_keeps_none(y):
    assert choose("auto", y, "regression") == "none"


def test_choose_explicit_and_binary():
    assert choose("none", SKEWED, "regression") == "none"
    assert choose("log10p1", SYMMETRIC, "regression") == "log10p1"
    assert choose("log10p1", SKEWED, "binary") == "none"
    assert choose("auto", SKEWED, "binary") == "none"


def test_choose_errors():
    with pytest.raises(ValueError, match="needs targets > -1"):
        choose("log10p1", np.array([0.0, -1.0, 2.0]), "regression")
    with pytest.raises(ValueError, match="unknown target transform"):
        choose("log", SKEWED, "regression")
    assert set(TRANSFORMS) == {"none", "log10p1", "auto"}


def test_choose_does_not_modify_input():
    y = SKEWED.copy()
    y[0] = np.nan
    before = y.copy()
    choose("auto", y, "regression")
    np.testing.assert_array_equal(y, before)
