import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from uniqsar.models.base import Learner

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"
TINY_RECIPE = str(DATA / "tiny_recipe.toml")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never touch the user's feature cache."""
    if "UNIQSAR_CACHE_DIR" not in os.environ or not os.environ.get("UNIQSAR_TEST_KEEP_CACHE"):
        os.environ["UNIQSAR_CACHE_DIR"] = str(tmp_path_factory.mktemp("feature-cache"))
    yield


class SlowLearner(Learner):
    """A learner that ignores time limits: each fit sleeps ``seconds``, then predicts the mean."""

    key = "slow_test"
    fixed_defaults = {"seconds": 0.4}

    def fit(self, X, y, X_valid=None, y_valid=None):
        time.sleep(self._param("seconds"))
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)

    def _save_state(self, path):
        (path / "mean.json").write_text(json.dumps(self.mean_))

    def _load_state(self, path):
        self.mean_ = json.loads((path / "mean.json").read_text())


@pytest.fixture
def slow_learner(monkeypatch):
    """Registers :class:`SlowLearner` for one test; yields its key."""
    from uniqsar.registry import LEARNERS

    monkeypatch.setitem(LEARNERS, SlowLearner.key, SlowLearner)
    return SlowLearner.key
