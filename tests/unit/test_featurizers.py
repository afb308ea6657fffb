"""Conformance test over every registered featurizer, plus per-family checks and FeatureStore."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from uniqsar.featurize.base import Featurizer
from uniqsar.featurize.cache import FeatureCache
from uniqsar.featurize.matrix import FeatureStore
from uniqsar.registry import FEATURIZERS, get_featurizer, load_all

load_all()

SMILES = [
    "CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@H](N)C(=O)O", "CN1CCC[C@H]1c1cccnc1",
    "O=C(O)c1ccccc1OC(C)=O", "C[N+](C)(C)C", "[2H]C([2H])([2H])O", "Clc1ccc(cc1)C(c1ccccc1)N1CCNCC1",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "C1CCC2(CC1)OCCO2", "FC(F)(F)c1ccc(cc1)S(=O)(=O)N",
]
INVALID = "not_a_smiles"


def _keys():
    keys = sorted(FEATURIZERS)
    assert keys, "no featurizer registered"
    return keys


def _make(key):
    """The class in its tiny test configuration (``test_params``); skipped where its optional package is missing."""
    cls = FEATURIZERS[key]
    if cls.requires_package and importlib.util.find_spec(cls.requires_package) is None:
        pytest.skip(f"{key}: optional package {cls.requires_package} is not installed")
    return cls(**cls.test_params)


def _same(a, b):
    np.testing.assert_array_equal(a, b)  # NaN == NaN here, exact otherwise


def _same_rows(a, b):
    """The same molecules computed in other batches: equal up to float32 round-off (batched matrix products of
    neural featurizers change with the batch's padded length), NaN where NaN."""
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_registry_contains_builtins():
    assert {"morgan_count", "avalon_count", "erg", "maccs", "rdkit_desc"} <= set(FEATURIZERS)
    for key, cls in FEATURIZERS.items():
        assert cls.key == key
        assert issubclass(cls, Featurizer)


@pytest.mark.parametrize("key", _keys())
class TestConformance:
    def test_output_float32_n_by_d(self, key):
        f = _make(key)
        X = f.compute(SMILES)
        assert isinstance(X, np.ndarray)
        assert X.dtype == np.float32
        assert X.ndim == 2 and X.shape[0] == len(SMILES) and X.shape[1] > 0
        assert not np.isinf(X).any()
        # every valid molecule has at least some finite features and they are not all identical
        assert np.isfinite(X).any(axis=1).all()
        assert np.nanstd(X, axis=0).max() > 0

    def test_deterministic_and_independent_of_batch(self, key):
        f = _make(key)
        X1 = f.compute(SMILES)
        X2 = _make(key).compute(SMILES)
        _same(X1, X2)
        # a molecule's row does not depend on what it is batched with
        _same_rows(f.compute(SMILES[3:5]), X1[3:5])
        _same_rows(f.compute(list(reversed(SMILES))), X1[::-1])

    def test_invalid_row_is_nan_not_dropped(self, key):
        f = _make(key)
        smiles = SMILES[:3] + [INVALID] + SMILES[3:5]
        X = f.compute(smiles)
        ref = f.compute(SMILES[:5])
        assert X.shape == (6, ref.shape[1])
        assert np.isnan(X[3]).all()
        _same_rows(np.delete(X, 3, axis=0), ref)

    def test_parallel_equals_serial(self, key):
        f = _make(key)
        f.chunk_size = 5  # several chunks with few molecules; keeps the test fast
        smiles = SMILES + [INVALID] * 6 + SMILES[:4]  # one chunk is entirely invalid
        serial = f.compute(smiles, n_jobs=1)
        parallel = f.compute(smiles, n_jobs=2)
        _same_rows(serial, parallel)
        assert np.isnan(serial[len(SMILES):len(SMILES) + 6]).all()
        assert serial.shape[1] == f.compute(SMILES[:1]).shape[1]

    def test_cache_id_changes_with_params_and_version(self, key):
        f = _make(key)
        cls = type(f)
        base = dict(cls.test_params)
        assert f.cache_id == cls(**base).cache_id
        assert f.cache_id.startswith(f"{key}-v{cls.version}-")
        bumped = type(cls.__name__ + "Bumped", (cls,), {"version": str(cls.version) + ".1"})(**base)
        assert bumped.cache_id != f.cache_id
        for name, default in cls.defaults.items():
            if isinstance(default, bool):
                other = not default
            elif isinstance(default, (int, float)):
                other = default * 2 + 1
            else:
                continue
            if name in cls._not_identity:
                continue  # declared not to change the output (batch size, device)
            assert cls(**{**base, name: other}).cache_id != f.cache_id, name
        # passing the default explicitly is the same featurizer
        assert cls(**{**dict(cls.defaults), **base}).cache_id == f.cache_id

    def test_unknown_param_raises(self, key):
        cls = FEATURIZERS[key]
        with pytest.raises(ValueError, match="unknown parameter"):
            cls(definitely_not_a_param=1)
        with pytest.raises(ValueError, match="unknown parameter"):
            get_featurizer(key, definitely_not_a_param=1)

    def test_spec_is_json_able(self, key):
        import json

        f = _make(key)
        spec = json.loads(json.dumps(f.spec()))
        assert spec["key"] == key
        assert FEATURIZERS[spec["key"]](**spec["params"]).cache_id == f.cache_id

    def test_empty_input(self, key):
        f = _make(key)
        assert f.compute([]).shape[0] == 0


def test_all_invalid_batch_keeps_width():
    f = get_featurizer("maccs")
    X = f.compute([INVALID, INVALID])
    assert X.shape == (2, 167)
    assert np.isnan(X).all()


# -- family specifics ----------------------------------------------------------------------------
def test_morgan_params_change_output():
    a = get_featurizer("morgan_count", n_bits=64).compute(SMILES)
    assert a.shape == (len(SMILES), 64)
    b = get_featurizer("morgan_count", n_bits=64, radius=1).compute(SMILES)
    assert a.sum() > b.sum()  # radius 2 has more environments than radius 1
    # counts: benzene ring atoms all hash to the same bit -> a count > 1
    assert get_featurizer("morgan_count", n_bits=64).compute(["c1ccccc1"]).max() >= 6
    c = get_featurizer("morgan_count", n_bits=64, chirality=True).compute(["C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O"])
    assert not np.array_equal(c[0], c[1])
    d = get_featurizer("morgan_count", n_bits=64).compute(["C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O"])
    np.testing.assert_array_equal(d[0], d[1])


def test_fixed_widths():
    assert get_featurizer("maccs").compute(["CCO"]).shape == (1, 167)
    assert get_featurizer("erg").compute(["CCO"]).shape == (1, 315)
    assert get_featurizer("avalon_count", n_bits=128).compute(["CCO"]).shape == (1, 128)


def test_descriptors_known_values():
    from rdkit.Chem import Descriptors

    from uniqsar.featurize.descriptors import descriptor_names

    names = descriptor_names()
    X = get_featurizer("rdkit_desc").compute(["CCO", "c1ccccc1"])
    assert X.shape == (2, len(names)) == (2, len(Descriptors._descList))
    mw = names.index("MolWt")
    np.testing.assert_allclose(X[:, mw], [46.069, 78.114], atol=1e-2)
    assert X[1, names.index("NumAromaticRings")] == 1


def test_featurize_mol_failure_gives_nan_row():
    class Fragile(Featurizer):
        key = "fragile_test_only"

        def featurize_mol(self, mol):
            if mol.GetNumAtoms() > 3:
                raise RuntimeError("boom")
            return np.array([mol.GetNumAtoms(), np.inf, np.nan])

    X = Fragile().compute(["CCO", "c1ccccc1", "CC"])
    assert X.shape == (3, 3) and X.dtype == np.float32
    assert np.isnan(X[1]).all()
    assert X[0, 0] == 3 and X[2, 0] == 2
    assert np.isfinite(X[0, 1]) and X[0, 1] > 1e38  # inf clipped to a float32-safe value
    assert np.isnan(X[0, 2])


# -- FeatureStore --------------------------------------------------------------------------------
def test_feature_store_stacks_and_memoizes(tmp_path):
    specs = {"ecfp": {"key": "morgan_count", "params": {"n_bits": 32}}, "maccs": {"key": "maccs"}}
    cache = FeatureCache(tmp_path)
    store = FeatureStore(specs, cache, verbose=False)
    X = store.matrix(["ecfp", "maccs"], SMILES)
    assert X.shape == (len(SMILES), 32 + 167) and X.dtype == np.float32
    np.testing.assert_array_equal(X[:, :32], get_featurizer("morgan_count", n_bits=32).compute(SMILES))
    assert store.dims == {"ecfp": 32, "maccs": 167}
    assert store.get("ecfp", SMILES) is store.get("ecfp", SMILES)
    smi = store.matrix([], SMILES)
    assert smi.dtype == object and smi.tolist() == SMILES


def test_feature_store_reports_molecules_a_featurizer_failed_on(tmp_path, monkeypatch, capsys):
    """A molecule a featurizer fails on gets an all-NaN row; the store says so in the log and in its notes (which
    go to featurizers.json), from a fresh computation and from the cache alike."""
    from uniqsar.featurize.fingerprints import MACCS

    real = MACCS.featurize_mol

    def flaky(self, mol):
        if mol.GetNumAtoms() == 3 and mol.GetAtomWithIdx(2).GetSymbol() == "O":  # CCO
            raise RuntimeError("boom")
        return real(self, mol)

    monkeypatch.setattr(MACCS, "featurize_mol", flaky)
    for _ in range(2):  # computed, then from the cache
        store = FeatureStore({"maccs": {"key": "maccs"}}, FeatureCache(tmp_path))
        X = store.get("maccs", SMILES)
        assert np.isnan(X[0]).all() and not np.isnan(X[1:]).any()
        assert store.notes["maccs"] == {"n_failed": 1, "failed_examples": ["CCO"]}
        assert "1 molecule(s) could not be featurized" in capsys.readouterr().err
