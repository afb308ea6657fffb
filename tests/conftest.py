import os
from pathlib import Path

import pytest

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
