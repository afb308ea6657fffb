"""A fit that fails marks its directory failed, and the same command then works: with the same data it
continues from the finished trials, with other data it starts over."""
import json

import optuna
import pandas as pd
import pytest

import uniqsar.pipeline.fit as fit_module
from tests.conftest import DATA
from uniqsar.cli import main
from uniqsar.pipeline.fit import FitOptions, fit
from uniqsar.pipeline.predict import Run

RECIPE = """
name = "rerun"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 128 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 2
params = { n_estimators = 20 }
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "rerun.toml"
    path.write_text(RECIPE)
    return str(path)


@pytest.fixture
def opts(recipe):
    return FitOptions(targets=("Y",), preset=recipe, seed=1)


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(DATA / "caco2_wang_200.csv").iloc[:90]


def _fail_after_tuning(monkeypatch, exc):
    real = fit_module.fit_target

    def failing(*args, **kwargs):
        real(*args, **kwargs)  # trials and final models are on disk, then the fit dies
        raise exc

    monkeypatch.setattr(fit_module, "fit_target", failing)


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def _n_trials(out, study="Y/lightgbm__ecfp"):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    return len(optuna.load_study(study_name=study, storage=storage).trials)


def test_failed_fit_is_marked_and_the_same_call_continues(tmp_path, data, opts, monkeypatch, capsys):
    out = tmp_path / "run"
    _fail_after_tuning(monkeypatch, RuntimeError("injected failure"))
    with pytest.raises(RuntimeError, match="injected"):
        fit(data, out, opts)
    m = _manifest(out)
    assert m["status"] == "failed" and "injected failure" in m["error"]
    n_before = _n_trials(out)
    monkeypatch.undo()
    fit(data, out, opts)  # the same call, without --resume
    assert _manifest(out)["status"] == "complete" and "error" not in _manifest(out)
    assert "continuing from its finished work" in capsys.readouterr().err
    assert _n_trials(out) == n_before == 2  # finished trials reused, none run twice
    assert len(Run(out).predict(["CCO"])) == 1


def test_failed_fit_with_other_data_starts_over(tmp_path, data, opts, monkeypatch, capsys):
    out = tmp_path / "run"
    _fail_after_tuning(monkeypatch, ValueError("bad target cells"))
    with pytest.raises(ValueError):
        fit(data, out, opts)
    (out / "notes.txt").write_text("the user's own file")
    monkeypatch.undo()
    fixed = data.iloc[:80]
    fit(fixed, out, opts)
    assert "starting over" in capsys.readouterr().err
    assert _manifest(out)["status"] == "complete"
    assert json.loads((out / "data_report.json").read_text())["n_rows"] == 80
    assert (out / "notes.txt").read_text() == "the user's own file"  # only the run's own files are cleared


def test_interrupt_is_marked_and_a_running_run_needs_resume(tmp_path, data, opts, monkeypatch, capsys):
    out = tmp_path / "run"
    _fail_after_tuning(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        fit(data, out, opts)
    assert _manifest(out)["status"] == "interrupted"
    m = _manifest(out)
    m["status"] = "running"  # as a kill -9 leaves it: maybe still alive, so only --resume takes it
    (out / "manifest.json").write_text(json.dumps(m))
    monkeypatch.undo()
    rc = main(["-q", "fit", str(DATA / "caco2_wang_200.csv"), "--target", "Y", "--preset", opts.preset,
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "status 'running'" in err and "--resume" in err and "Traceback" not in err
    assert _manifest(out)["status"] == "running"  # a refused start does not touch the directory


def test_failure_before_the_manifest_still_leaves_a_rerunnable_directory(tmp_path, data, opts, monkeypatch):
    out = tmp_path / "run"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fit_module, "dump_toml", broken)  # data_report.json is written, the manifest not yet
    with pytest.raises(RuntimeError):
        fit(data, out, opts)
    assert (out / "data_report.json").exists() and _manifest(out)["status"] == "failed"
    monkeypatch.undo()
    fit(data, out, opts)
    assert _manifest(out)["status"] == "complete"


def test_starting_over_clears_every_entry_the_layout_names(tmp_path):
    """A failed attempt that fitted something else loses all of its own files (joint studies and a report
    included), never the user's."""
    from uniqsar.io import layout
    from uniqsar.pipeline.rundir import continue_or_restart

    out = tmp_path / "run"
    (out / layout.JOINT / "m").mkdir(parents=True)
    (out / layout.JOINT / layout.JOINT_PLAN).write_text("{}")
    (out / layout.REPORT).write_text("<html></html>")
    (out / layout.JOURNAL).write_text("")
    (out / "notes.txt").write_text("mine")
    previous = {"status": "failed", "fingerprint": "old", "error": "x"}
    assert continue_or_restart(out, previous, "new") is False
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
