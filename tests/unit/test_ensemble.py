"""Unit tests for uniqsar.ensemble.greedy (Caruana selection + nested OOF score)."""
from __future__ import annotations

import numpy as np
import pytest

from uniqsar.ensemble.greedy import _loss, fit_weights, greedy_weights, nested_predictions
from uniqsar.metrics import score


def _regression_columns(seed, n=200, m=5):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    noise = rng.uniform(0.2, 1.5, size=m)
    P = y[:, None] + rng.normal(size=(n, m)) * noise + rng.normal(scale=0.3, size=m)
    return P, y


def _binary_columns(seed, n=200, m=4):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(float)
    logits = (2 * y - 1)[:, None] * rng.uniform(0.3, 2.0, size=m) + rng.normal(size=(n, m))
    return 1 / (1 + np.exp(-logits)), y


CASES = [("mae", _regression_columns), ("rmse", _regression_columns), ("spearman", _regression_columns),
         ("roc_auc", _binary_columns), ("logloss", _binary_columns)]


@pytest.mark.parametrize("metric, make", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_weights_valid_and_never_worse_than_best(metric, make, seed):
    P, y = make(seed)
    w = greedy_weights(P, y, metric, rounds=20)
    assert w.shape == (P.shape[1],)
    assert np.all(w >= 0)
    assert np.isclose(w.sum(), 1.0)
    # weights are multiples of 1/k (selection with replacement)
    assert any(np.allclose(w * k, np.round(w * k), atol=1e-9) for k in range(1, 21))
    best_single = min(_loss(metric, y, P[:, j]) for j in range(P.shape[1]))
    assert _loss(metric, y, P @ w) <= best_single + 1e-9


def test_greedy_improves_on_complementary_columns():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    e = rng.normal(size=300)
    P = np.column_stack([y + e, y - e, y + 3 * rng.normal(size=300)])  # errors cancel in the mean of 0 and 1
    w = greedy_weights(P, y, "rmse")
    assert w[0] > 0.3 and w[1] > 0.3 and w[2] < 0.1
    assert score("rmse", y, P @ w) < 0.5 * min(score("rmse", y, P[:, j]) for j in range(3))


def test_greedy_single_column():
    P, y = _regression_columns(0, m=1)
    np.testing.assert_array_equal(greedy_weights(P, y, "mae"), [1.0])


def test_greedy_rounds_one_is_best():
    P, y = _regression_columns(3)
    np.testing.assert_array_equal(greedy_weights(P, y, "mae", rounds=1), fit_weights("best", P, y, "mae"))


def test_greedy_handles_nan_metric_columns_with_error_metric():
    """A constant column under mae is simply bad; it gets no weight."""
    P, y = _regression_columns(0, m=3)
    P[:, 0] = 100.0
    w = greedy_weights(P, y, "mae")
    assert np.isclose(w.sum(), 1.0) and w[0] == 0


@pytest.mark.parametrize("metric, make, const", [("spearman", _regression_columns, 1.0),
                                                 ("roc_auc", _binary_columns, 0.5)])
@pytest.mark.parametrize("position", [0, -1])
def test_greedy_constant_column_gets_no_weight_under_rank_metric(metric, make, const, position):
    P, y = make(0)
    P[:, position] = const  # e.g. a learner that fitted no split and predicts the mean
    w = greedy_weights(P, y, metric)
    assert np.isclose(w.sum(), 1.0)
    assert w[position] <= 0.1, w


@pytest.mark.parametrize("metric, make", [("mae", _regression_columns), ("roc_auc", _binary_columns)])
def test_best_and_mean(metric, make):
    P, y = make(5)
    w = fit_weights("best", P, y, metric)
    losses = [_loss(metric, y, P[:, j]) for j in range(P.shape[1])]
    assert w.tolist() == [1.0 if j == int(np.argmin(losses)) else 0.0 for j in range(P.shape[1])]
    m = fit_weights("mean", P, y, metric)
    np.testing.assert_allclose(m, np.full(P.shape[1], 1 / P.shape[1]))
    with pytest.raises(ValueError, match="unknown ensemble method"):
        fit_weights("stack", P, y, metric)


def test_best_respects_direction():
    y = np.array([0, 0, 1, 1, 0, 1], float)
    good = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7])
    bad = 1 - good
    P = np.column_stack([bad, good])
    assert fit_weights("best", P, y, "roc_auc").tolist() == [0.0, 1.0]  # greater is better
    assert fit_weights("best", P, y, "logloss").tolist() == [0.0, 1.0]  # lower is better


@pytest.mark.parametrize("method", ["greedy", "best", "mean"])
def test_nested_predictions_shape_and_fold_isolation(method):
    P, y = _regression_columns(1, n=120)
    folds = np.repeat(np.arange(4), 30)
    out = nested_predictions(method, P, y, folds, "mae", rounds=10)
    assert out.shape == y.shape and np.isfinite(out).all()
    # each fold's rows use weights fitted without them
    for f in range(4):
        test = folds == f
        w = fit_weights(method, P[~test], y[~test], "mae", 10)
        np.testing.assert_allclose(out[test], P[test] @ w)


def test_nested_predictions_do_not_see_the_test_fold():
    """Changing y inside a fold must not change that fold's own ensemble predictions."""
    P, y = _regression_columns(2, n=120)
    folds = np.repeat(np.arange(3), 40)
    a = nested_predictions("greedy", P, y, folds, "rmse")
    y2 = y.copy()
    y2[folds == 0] = -y2[folds == 0]
    b = nested_predictions("greedy", P, y2, folds, "rmse")
    np.testing.assert_array_equal(a[folds == 0], b[folds == 0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nested_score_close_to_clearly_best_column(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.normal(size=n)
    best = y + 0.1 * rng.normal(size=n)
    P = np.column_stack([y + rng.normal(size=n), best, y + 1.5 * rng.normal(size=n), rng.normal(size=n)])
    folds = rng.integers(0, 5, size=n)
    for method in ("greedy", "best"):
        out = nested_predictions(method, P, y, folds, "mae")
        nested, single = score("mae", y, out), score("mae", y, best)
        assert abs(nested - single) <= 0.1 * single, (method, nested, single)
    mean_score = score("mae", y, nested_predictions("mean", P, y, folds, "mae"))
    assert mean_score > 2 * score("mae", y, best)  # averaging in junk columns hurts


def _stack_case(seed=0, n=300):
    """Two informative models (2 columns each) and one pure-noise model with a large spread."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    folds = np.arange(n) % 5
    cols = [y + rng.normal(scale=0.5, size=n) for _ in range(4)] + [rng.normal(scale=5, size=n) for _ in range(2)]
    groups = ["a", "a", "b", "b", "noise", "noise"]
    return np.column_stack(cols), groups, y, folds


def test_backward_elimination_drops_a_model_that_hurts_the_stack():
    from uniqsar.ensemble.backward import stack_models, without_each_model

    P, groups, y, folds = _stack_case()
    kept = stack_models(P, groups, y, folds, "mae", ("mean",), 10, drop=False)
    assert kept.dropped == [] and kept.columns == list(range(6))
    assert kept.without == without_each_model(P, groups, y, folds, "mae", ("mean",), 10)
    assert kept.without["noise"] < kept.cv  # the plain mean is much better without the noise model

    st = stack_models(P, groups, y, folds, "mae", ("mean",), 10, drop=True)
    assert [d["model"] for d in st.dropped] == ["noise"]
    assert st.columns == [0, 1, 2, 3]
    assert st.cv == pytest.approx(kept.without["noise"]) and st.cv < kept.cv
    assert st.dropped[0]["cv_with"] == pytest.approx(kept.cv)
    # no kept model's removal improves the final stack; a dropped model's entry is the final score
    assert all(st.without[g] >= st.cv - 1e-12 for g in ("a", "b")) and st.without["noise"] == st.cv


def test_backward_elimination_keeps_the_last_model_and_honours_higher_is_better():
    from uniqsar.ensemble.backward import stack_models

    P, groups, y, folds = _stack_case(seed=1)
    yb = (y > 0).astype(float)
    st = stack_models(P, groups, yb, folds, "roc_auc", ("greedy", "mean"), 10)
    assert "noise" in [d["model"] for d in st.dropped] or st.without["noise"] <= st.cv
    for d in st.dropped:  # each step improved a higher-is-better score
        assert d["cv_without"] > d["cv_with"]
    one = stack_models(P[:, :2], groups[:2], y, folds, "mae", ("mean",), 10)
    assert one.dropped == [] and one.without == {} and one.columns == [0, 1]


def test_shrink_pulls_the_stack_toward_the_mean_of_each_models_best_trial():
    """[ensemble] shrink (issue 17): weights = (1 - s) x stacker's + s x equal weights on each model's first (best)
    column; the nested CV score is that of the shrunk weights, fold by fold."""
    from uniqsar.ensemble.backward import model_mean_weights, shrunk, stack_models
    from uniqsar.ensemble.greedy import blend, nested_predictions

    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    folds = np.arange(200) % 5
    P = np.column_stack([y + rng.normal(scale=s, size=200) for s in (0.3, 0.35, 0.8, 1.5)])
    groups = ["a", "a", "b", "c"]
    np.testing.assert_allclose(model_mean_weights(groups), [1 / 3, 0, 1 / 3, 1 / 3])
    w = np.array([0.7, 0.3, 0.0, 0.0])
    np.testing.assert_allclose(shrunk(w, groups, 0.5), [0.35 + 1 / 6, 0.15, 1 / 6, 1 / 6])
    assert shrunk(w, groups, 0.0) is w
    plain = stack_models(P, groups, y, folds, "mae", ("greedy",), 20, drop=False)
    half = stack_models(P, groups, y, folds, "mae", ("greedy",), 20, drop=False, shrink=0.5)
    expected = 0.5 * nested_predictions("greedy", P, y, folds, "mae", 20) + 0.5 * blend(P, model_mean_weights(groups))
    np.testing.assert_allclose(half.nested, expected)
    assert half.cv == pytest.approx(np.mean(np.abs(y - expected)))
    assert half.cv != pytest.approx(plain.cv)
    assert set(half.without) == {"a", "b", "c"}


def test_shrink_is_validated_in_the_recipe(tmp_path):
    from uniqsar.config import ConfigError, load_recipe

    base = ('name = "s"\n[featurizers]\necfp = { key = "morgan_count" }\n[[models]]\nlearner = "linear"\n'
            'features = ["ecfp"]\n[ensemble]\n')
    ok = tmp_path / "ok.toml"
    ok.write_text(base + "shrink = 0.5\n")
    r = load_recipe(str(ok))
    assert r.shrink == 0.5 and r.to_dict()["ensemble"]["shrink"] == 0.5
    for bad in ("1.5", "-0.1", "true", '"half"'):
        path = tmp_path / "bad.toml"
        path.write_text(base + f"shrink = {bad}\n")
        with pytest.raises(ConfigError, match="shrink must be a number from 0 to 1"):
            load_recipe(str(path))
