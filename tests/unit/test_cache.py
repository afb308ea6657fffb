"""Unit tests for the on-disk feature cache (uniqsar.featurize.cache)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from uniqsar.featurize.base import Featurizer
from uniqsar.featurize.cache import FeatureCache, default_cache_dir
from uniqsar.registry import get_featurizer

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@H](N)C(=O)O", "CN1CCC[C@H]1c1cccnc1", "CCCl"]


class Counting(Featurizer):
    """Test featurizer that records which molecules it computed."""

    key = "counting_test_only"
    defaults = {"scale": 1.0}
    seen: list = []

    def compute(self, smiles, n_jobs=1):
        Counting.seen.extend(smiles)
        return super().compute(smiles, n_jobs)

    def featurize_mol(self, mol):
        return np.array([mol.GetNumAtoms(), mol.GetNumBonds(), -1.0]) * self.params["scale"]


@pytest.fixture
def counting():
    Counting.seen = []
    return Counting()


def _shards(root: Path):
    return sorted(root.rglob("*.npz"))


def test_second_get_computes_nothing(tmp_path):
    f = get_featurizer("morgan_count", n_bits=64)
    cache = FeatureCache(tmp_path)
    X1 = cache.get(f, SMILES)
    assert cache.last_misses == len(SMILES) and cache.last_hits == 0
    np.testing.assert_array_equal(X1, f.compute(SMILES))
    cache2 = FeatureCache(tmp_path)  # a fresh object: reads from disk
    X2 = cache2.get(f, SMILES)
    assert cache2.last_misses == 0 and cache2.last_hits == len(SMILES)
    assert X2.dtype == np.float32
    np.testing.assert_array_equal(X1, X2)
    assert len(_shards(tmp_path)) == 1
    assert _shards(tmp_path)[0].parent.name == f.cache_id


def test_partial_hit_computes_only_missing(tmp_path, counting):
    cache = FeatureCache(tmp_path)
    cache.get(counting, SMILES[:3])
    assert Counting.seen == SMILES[:3]
    Counting.seen = []
    query = [SMILES[4], SMILES[0], SMILES[5], SMILES[1], SMILES[4]]  # duplicates computed once
    X = cache.get(counting, query)
    assert Counting.seen == [SMILES[4], SMILES[5]]
    assert cache.last_misses == 2 and cache.last_hits == 2
    np.testing.assert_array_equal(X, counting.compute(query))
    assert len(_shards(tmp_path)) == 2


def test_params_and_version_separate_entries(tmp_path, counting):
    cache = FeatureCache(tmp_path)
    a = cache.get(counting, SMILES)
    Counting.seen = []
    b = cache.get(Counting(scale=2.0), SMILES)
    assert cache.last_misses == len(SMILES)
    np.testing.assert_array_equal(b, 2 * a)

    class CountingV2(Counting):
        version = "2"

    cache.get(CountingV2(), SMILES)
    assert cache.last_misses == len(SMILES)
    assert len({p.parent.name for p in _shards(tmp_path)}) == 3


def test_corrupt_shard_ignored(tmp_path, counting):
    cache = FeatureCache(tmp_path)
    X1 = cache.get(counting, SMILES)
    shard = _shards(tmp_path)[0]
    shard.write_bytes(b"this is not a zip file")
    (shard.parent / "truncated.npz").write_bytes(shard.read_bytes()[:5])
    Counting.seen = []
    X2 = cache.get(counting, SMILES)
    assert cache.last_misses == len(SMILES)
    assert Counting.seen == SMILES
    np.testing.assert_array_equal(X1, X2)
    # the recomputed rows were stored again and are now hits
    cache.get(counting, SMILES)
    assert cache.last_misses == 0


def test_disabled_bypasses(tmp_path, counting):
    cache = FeatureCache(tmp_path, enabled=False)
    X1 = cache.get(counting, SMILES)
    X2 = cache.get(counting, SMILES)
    assert cache.last_misses == len(SMILES) and cache.last_hits == 0
    assert Counting.seen == SMILES + SMILES
    np.testing.assert_array_equal(X1, X2)
    assert _shards(tmp_path) == []


def test_invalid_rows_nan_and_aligned(tmp_path):
    f = get_featurizer("maccs")
    cache = FeatureCache(tmp_path)
    query = ["CCO", "not_a_smiles", "c1ccccc1"]
    X = cache.get(f, query)
    assert X.shape == (3, 167)
    assert np.isnan(X[1]).all() and not np.isnan(X[0]).any()
    X2 = FeatureCache(tmp_path).get(f, query)
    np.testing.assert_array_equal(X, X2)


def test_empty_query(tmp_path, counting):
    cache = FeatureCache(tmp_path)
    cache.get(counting, SMILES[:2])
    X = cache.get(counting, [])
    assert X.shape[0] == 0
    assert cache.last_misses == 0


def test_no_temp_files_left(tmp_path, counting):
    cache = FeatureCache(tmp_path)
    cache.get(counting, SMILES[:2])
    cache.get(counting, SMILES)
    assert not list(tmp_path.rglob("*.tmp"))


def test_default_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIQSAR_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    assert FeatureCache().root == tmp_path / "x"
    monkeypatch.delenv("UNIQSAR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "uniqsar" / "features"
