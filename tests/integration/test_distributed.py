"""Several processes tune one run through a shared Optuna storage (journal file, SQLite, and
PostgreSQL on loopback when a server is available)."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import DATA

RECIPE = """
name = "dist"
[cv]
n_folds = 3
[featurizers]
ecfp = { key = "morgan_count", radius = 2, n_bits = 256 }
[[models]]
learner = "lightgbm"
features = ["ecfp"]
n_trials = 40
params = { n_estimators = 400 }  # trials slow enough (~0.3 s) that the worker joins before the study is full
[tuning]
pruning = false
"""


def _fit_cmd(run, recipe, url):
    return [sys.executable, "-m", "uniqsar.cli", "-q", "fit", str(DATA / "caco2_wang_200.csv"), "--target", "Y",
            "--preset", str(recipe), "--seed", "1", "--storage", url, "--out", str(run)]


def _coordinator_and_worker(tmp_path, url):
    recipe = tmp_path / "dist.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    coord = subprocess.Popen(_fit_cmd(run, recipe, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    spec = run / "run_spec.json"
    t0 = time.time()
    while not spec.exists() and time.time() - t0 < 60:
        time.sleep(0.2)
    assert spec.exists(), coord.stderr.read().decode() if coord.poll() is not None else "no run_spec.json"
    worker = subprocess.run([sys.executable, "-m", "uniqsar.cli", "worker", str(spec), "--storage", url],
                            capture_output=True, text=True, env=env, timeout=600)
    assert worker.returncode == 0, worker.stderr
    out, err = coord.communicate(timeout=600)
    assert coord.returncode == 0, err.decode()
    from uniqsar.tune.study import storage_for

    storage = storage_for(None, url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert len(names) == 1 and names[0].endswith("Y/lightgbm__ecfp") and ":" in names[0]
    trials = optuna.load_study(study_name=names[0], storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    numbers = [t.number for t in complete]
    assert len(set(numbers)) == len(numbers)  # no duplicate
    assert 40 <= len(complete) <= 41  # the recipe's count; at most one in flight when it was reached
    assert all(len(t.user_attrs["oof"]) == 200 for t in complete)  # OOF travels with the trial
    workers = {t.user_attrs["worker"].rsplit(":", 1)[0] for t in complete}
    assert len(workers) == 2, f"both processes should contribute trials, got {workers}"
    assert (run / "manifest.json").read_text().count('"complete"') == 1


def test_journal_file_storage(tmp_path):
    _coordinator_and_worker(tmp_path, f"journal://{tmp_path / 'shared.journal'}")


def _start_postgres(tmp_path):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        return None, "PostgreSQL is not installed (initdb not found); .ci/run installs it with apt-get"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return None, "no PostgreSQL driver (psycopg2/psycopg) installed"
    bindir = os.path.dirname(initdb)
    user = []
    if os.geteuid() == 0:  # postgres refuses to run as root: use the postgres system user
        if shutil.which("runuser") is None:
            return None, "running as root without runuser"
        tmp_path = Path(tempfile.mkdtemp(prefix="uniqsar-pg-"))  # pytest's tmp dirs are private to root
        os.chmod(tmp_path, 0o777)
        user = ["runuser", "-u", "postgres", "--"]
    data = tmp_path / "pgdata"
    r = subprocess.run(user + [initdb, "-D", str(data), "-A", "trust", "-U", "uq"], capture_output=True, text=True)
    if r.returncode:
        return None, f"initdb failed: {r.stderr.strip()[:200]}"
    port = 55432 + os.getpid() % 1000
    r = subprocess.run(user + [os.path.join(bindir, "pg_ctl"), "-D", str(data), "-o",
                               f"-p {port} -k {tmp_path} -c listen_addresses=127.0.0.1", "-w", "start",
                               "-l", str(tmp_path / "pg.log")], capture_output=True, text=True)
    if r.returncode:
        return None, f"pg_ctl start failed: {r.stderr.strip()[:200]}"
    stop = user + [os.path.join(bindir, "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
    return (f"postgresql://uq@127.0.0.1:{port}/postgres", stop, tmp_path), None


def test_postgresql_storage(tmp_path):
    started, why = _start_postgres(tmp_path)
    if started is None:
        pytest.skip(why)
    url, stop, pg_dir = started
    try:
        _coordinator_and_worker(tmp_path, url)
    finally:
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(pg_dir, ignore_errors=True)
