"""Crash safety: SIGKILL during tuning, then --resume reuses every finished trial."""
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from tests.conftest import DATA

RECIPE = """
name = "resume"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 256 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 8
params = { n_estimators = 150 }
[tuning]
pruning = false
"""


def _trials(run):
    storage = JournalStorage(JournalFileBackend(str(run / "optuna.journal")))
    study = optuna.load_study(study_name="Y/lightgbm__ecfp", storage=storage)
    return study.trials


def _cmd(run, recipe, *extra):
    return [sys.executable, "-m", "uniqsar.cli", "-q", "fit", str(DATA / "caco2_wang_200.csv"), "--target", "Y",
            "--preset", str(recipe), "--seed", "1", "--out", str(run), *extra]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL semantics")
def test_sigkill_then_resume(tmp_path):
    recipe = tmp_path / "resume.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    proc = subprocess.Popen(_cmd(run, recipe), stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    deadline = time.time() + 120
    done_before = []
    while time.time() < deadline:
        time.sleep(0.3)
        if (run / "optuna.journal").exists():
            try:
                done_before = [t for t in _trials(run) if t.state == TrialState.COMPLETE]
            except KeyError:
                continue
            if len(done_before) >= 2:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(done_before) < 8, "the run finished before it could be killed; make the recipe slower"
    finished = {t.number: t.value for t in _trials(run) if t.state == TrialState.COMPLETE}

    # without --resume the directory is protected
    r = subprocess.run(_cmd(run, recipe), capture_output=True, text=True)
    assert r.returncode == 2 and "--resume" in r.stderr

    r = subprocess.run(_cmd(run, recipe, "--resume"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    trials = _trials(run)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8  # exactly the recipe's count: nothing redone, nothing lost
    for number, value in finished.items():  # finished work reused as it was
        assert trials[number].state == TrialState.COMPLETE and trials[number].value == value
    assert (run / "manifest.json").exists() and '"complete"' in (run / "manifest.json").read_text()


def test_resume_refuses_other_settings(tmp_path):
    recipe = tmp_path / "resume.toml"
    recipe.write_text(RECIPE.replace("n_trials = 8", "n_trials = 1"))
    run = tmp_path / "run"
    assert subprocess.run(_cmd(run, recipe), capture_output=True).returncode == 0
    cmd = _cmd(run, recipe, "--resume")
    cmd[cmd.index("--seed") + 1] = "2"
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "different data" in r.stderr


def _loud(cmd):
    return [c for c in cmd if c != "-q"]


def test_resume_reuses_fitted_final_models(tmp_path):
    recipe = tmp_path / "resume.toml"
    recipe.write_text(RECIPE.replace("n_trials = 8", "n_trials = 1"))
    run = tmp_path / "run"
    assert subprocess.run(_cmd(run, recipe), capture_output=True).returncode == 0
    records = sorted(run.glob("targets/*/learners/*/final.json"))
    assert records, "every ensemble member records its final fit"
    model_files = sorted(p for p in records[0].parent.rglob("*") if p.is_file() and p.name != "final.json")
    before = {p: p.stat().st_mtime_ns for p in model_files}
    # a killed run that had already fitted its final models: --resume reuses them
    r = subprocess.run(_loud(_cmd(run, recipe, "--resume")), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "final model reused" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in model_files} == before
    # a record that does not match (other params) is refitted, not trusted
    records[0].write_text(records[0].read_text().replace('"seed": 1', '"seed": 99'))
    r = subprocess.run(_loud(_cmd(run, recipe, "--resume")), capture_output=True, text=True)
    assert r.returncode == 0 and "final model reused" not in r.stderr
    assert '"seed": 1' in records[0].read_text()
