"""predict refuses a run directory with a missing or changed file (member parts, weights files), before it
predicts anything, with one line naming the file; no command shows a traceback for a broken run directory."""
import hashlib
import json
import pickle
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from uniqsar.cli import main
from uniqsar.featurize.base import Featurizer
from uniqsar.io.artifacts import RunDirError
from uniqsar.models.base import Learner
from uniqsar.models.weights_identity import file_sha256
from uniqsar.pipeline.fit import FitOptions, fit
from uniqsar.pipeline.predict import Run


class WeightsStub(Featurizer):
    """A featurizer that (like Uni-Mol2) embeds with a weights file: its identity is the file's sha256."""

    key = "weights_stub_test"
    defaults = {"weights": ""}

    def weights_identity(self) -> dict:
        return {"kind": "file", "path": self.params["weights"], "sha256": file_sha256(self.params["weights"])}

    def featurize_mol(self, mol):
        return np.array([mol.GetNumAtoms(), mol.GetNumBonds(), mol.GetRingInfo().NumRings()], float)


class TorchStub(Learner):
    """A learner whose state is a torch file read with weights_only=True (as the torch learners do)."""

    key = "torch_stub_test"

    def fit(self, X, y, X_valid=None, y_valid=None):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)

    def _save_state(self, path):
        import torch

        torch.save({"mean": torch.tensor(self.mean_)}, path / "model.pt")

    def _load_state(self, path):
        import torch

        self.mean_ = float(torch.load(path / "model.pt", map_location="cpu", weights_only=True)["mean"])


RECIPE = """
name = "integrity"
[cv]
n_folds = 3
[featurizers]
ecfp = {{ key = "morgan_count", radius = 2, n_bits = 128 }}
w = {{ key = "weights_stub_test", weights = "{weights}" }}
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 1
params = {{ n_estimators = 20 }}
[[models]]
learner = "linear"
features = ["w"]
n_trials = 1
[[models]]
learner = "torch_stub_test"
features = ["ecfp"]
n_trials = 1
[ensemble]
method = "mean"
"""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One tiny run with a LightGBM, a linear (on a weights-file featurizer) and a torch-file member."""
    from uniqsar.registry import FEATURIZERS, LEARNERS

    FEATURIZERS[WeightsStub.key], LEARNERS[TorchStub.key] = WeightsStub, TorchStub
    root = tmp_path_factory.mktemp("integrity")
    weights = root / "weights.bin"
    weights.write_bytes(b"pretrained weights v1")
    recipe = root / "recipe.toml"
    recipe.write_text(RECIPE.format(weights=weights))
    df = pd.read_csv(DATA / "caco2_wang_200.csv").iloc[:90]
    fit(df, root / "run", FitOptions(targets=("Y",), preset=str(recipe), seed=1))
    new = root / "new.csv"
    pd.DataFrame({"smiles": ["CCO", "c1ccccc1O"]}).to_csv(new, index=False)
    yield root / "run", weights, new
    FEATURIZERS.pop(WeightsStub.key), LEARNERS.pop(TorchStub.key)


def _copy(fitted, tmp_path):
    run, _, _ = fitted
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def _member(run, learner):
    ens = json.loads((run / "targets" / "Y" / "ensemble.json").read_text())
    return next(m for m in ens["members"] if m["learner"] == learner)


def _predict_cli(run, new, out, capsys):
    rc = main(["-q", "predict", str(run), str(new), "--out", str(out)])
    err = capsys.readouterr().err
    return rc, err


def test_fit_records_every_member_file_and_weights_file(fitted):
    run, weights, _ = fitted
    for learner, names in [("lightgbm", {"full/learner.json", "full/model.txt"}),
                           ("torch_stub_test", {"full/learner.json", "full/model.pt"})]:
        m = _member(run, learner)
        assert set(m["files"]) == names
        for rel, sha in m["files"].items():
            assert sha == hashlib.sha256((run / m["path"] / rel).read_bytes()).hexdigest()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["weights_sha256"] == {"w": hashlib.sha256(weights.read_bytes()).hexdigest()}


def _delete_member(run):
    shutil.rmtree(run / _member(run, "linear")["path"])
    return "model folder of ensemble member"


def _delete_part(run):
    shutil.rmtree(run / _member(run, "lightgbm")["path"] / "full")
    return "learner.json is missing"


def _delete_model_txt(run):
    (run / _member(run, "lightgbm")["path"] / "full" / "model.txt").unlink()
    return "model.txt is missing"


def _foreign_model_txt(run):
    (run / _member(run, "lightgbm")["path"] / "full" / "model.txt").write_text("tree\nversion=v4\n")
    return "model.txt is not the file this run saved"


def _replaced_checkpoint(run):
    import torch

    torch.save({"mean": torch.tensor(123.0)}, run / _member(run, "torch_stub_test")["path"] / "full" / "model.pt")
    return "model.pt is not the file this run saved"


def _truncated_ensemble(run):
    p = run / "targets" / "Y" / "ensemble.json"
    p.write_text(p.read_text()[:200])
    return "ensemble.json is damaged: not valid JSON"


def _no_manifest(run):
    (run / "manifest.json").unlink()
    return "not a uniqsar run directory"


def _manifest_not_object(run):
    (run / "manifest.json").write_text("[1, 2]")
    return "manifest.json is damaged"


def _member_outside(run):
    p = run / "targets" / "Y" / "ensemble.json"
    ens = json.loads(p.read_text())
    ens["members"][0]["path"] = "../../elsewhere"
    p.write_text(json.dumps(ens))
    return "points outside the run directory"


def _no_members(run):
    p = run / "targets" / "Y" / "ensemble.json"
    ens = json.loads(p.read_text())
    ens["members"] = []
    p.write_text(json.dumps(ens))
    return "lists no usable members"


TAMPER = [_delete_member, _delete_part, _delete_model_txt, _foreign_model_txt, _replaced_checkpoint,
          _truncated_ensemble, _no_manifest, _manifest_not_object, _member_outside, _no_members]


@pytest.mark.parametrize("tamper", TAMPER, ids=[t.__name__.strip("_") for t in TAMPER])
def test_tampered_run_is_refused_with_one_line(fitted, tmp_path, tamper, capsys):
    _, _, new = fitted
    run = _copy(fitted, tmp_path)
    assert np.isfinite(Run(run).predict(["CCO"])).all()  # the copy is fine before the damage
    expected = tamper(run)
    with pytest.raises(RunDirError, match=expected):
        Run(run)
    out = tmp_path / "pred.csv"
    rc, err = _predict_cli(run, new, out, capsys)
    assert rc == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not out.exists()
    rc, err = main(["-q", "info", str(run)]), capsys.readouterr().err
    assert rc in (0, 2) and "Traceback" not in err


def test_changed_weights_file_is_refused(fitted, capsys, tmp_path):
    run, weights, new = fitted
    original = weights.read_bytes()
    try:
        weights.write_bytes(b"pretrained weights v2 (a package upgrade)")
        with pytest.raises(RunDirError, match=r"featurizer 'w' weights .*weights.bin changed since the fit"):
            Run(run)
        rc, err = _predict_cli(run, new, tmp_path / "p.csv", capsys)
        assert rc == 2 and "changed since the fit" in err and not (tmp_path / "p.csv").exists()
        weights.unlink()
        with pytest.raises(RunDirError, match="weights of featurizer 'w' cannot be read"):
            Run(run)
    finally:
        weights.write_bytes(original)
    assert np.isfinite(Run(run).predict(["CCO"])).all()


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):  # unpickling this would create the marker file
        return (open, (self.marker, "w"))


def test_malicious_torch_file_is_refused_without_torch_hint(fitted, tmp_path, capsys):
    """An attacker replaces model.pt by a code-running pickle and updates the recorded sha256 too."""
    _, _, new = fitted
    run = _copy(fitted, tmp_path)
    marker = tmp_path / "PWNED"
    m = _member(run, "torch_stub_test")
    (run / m["path"] / "full" / "model.pt").write_bytes(pickle.dumps(_Payload(marker)))
    p = run / "targets" / "Y" / "ensemble.json"
    ens = json.loads(p.read_text())
    for mem in ens["members"]:
        if mem["learner"] == "torch_stub_test":
            mem["files"]["full/model.pt"] = file_sha256(run / m["path"] / "full" / "model.pt")
    p.write_text(json.dumps(ens))
    with warnings.catch_warnings(record=True) as caught:  # torch's unpickler notes would reach the user
        warnings.simplefilter("always")
        with pytest.raises(RunDirError, match="pickled Python objects, which uniqsar never loads"):
            Run(run)
    assert not caught, [str(w.message) for w in caught]
    rc, err = _predict_cli(run, new, tmp_path / "p.csv", capsys)
    assert rc == 2 and "never loads" in err and "weights_only" not in err and "Traceback" not in err
    assert not marker.exists()


def test_run_without_recorded_digests_still_predicts_and_checks_parts(fitted, tmp_path):
    """Runs fitted before digests were recorded load as before, but a member without parts is refused."""
    run = _copy(fitted, tmp_path)
    p = run / "targets" / "Y" / "ensemble.json"
    ens = json.loads(p.read_text())
    for mem in ens["members"]:
        del mem["files"]
    p.write_text(json.dumps(ens))
    assert np.isfinite(Run(run).predict(["CCO"])).all()
    shutil.rmtree(run / _member(run, "lightgbm")["path"] / "full")
    with pytest.raises(RunDirError, match="has no fitted model"):
        Run(run)
