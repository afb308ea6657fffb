"""The run directory's layout: every file and folder name in one place.

Writers and readers (fit, predict, report, verify, compat, the CLI) name run-directory entries only through
these constants and helpers, so that a name changes in one line and a reader cannot drift from its writer.

    RUN/manifest.json            what the run is (recipe, seed, targets, status, weights digests, timings)
    RUN/data_report.json         rows read, invalid molecules and target cells left out, duplicates
    RUN/recipe.toml              the resolved recipe
    RUN/run_spec.json            what a distributed tuning worker needs (pipeline/worker.py)
    RUN/leaderboard.csv          every trial of every model
    RUN/oof.csv                  out-of-fold predictions of every target's ensemble
    RUN/metrics.json             the nested-CV scores (and OOF coverage) per target
    RUN/featurizers.json         the featurizers used and their dimensions
    RUN/report.html              the self-contained report
    RUN/optuna.journal           the Optuna studies (default storage; kept for resume)
    RUN/trials/<study>/          each trial's OOF predictions (tuning scratch, kept for resume)
    RUN/joint/plan.json, joint/<member>/   joint targets fitted by one network (pipeline/joint.py)
    RUN/targets/<name>/ensemble.json, oof.csv, calibration.json, oof_uncertainty.csv
    RUN/targets/<name>/learners/<member>/final.json and the member's parts (each a learner folder)
"""
from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
DATA_REPORT = "data_report.json"
RECIPE = "recipe.toml"
RUN_SPEC = "run_spec.json"
LEADERBOARD = "leaderboard.csv"
OOF = "oof.csv"
METRICS = "metrics.json"
FEATURIZERS = "featurizers.json"
REPORT = "report.html"
TARGETS = "targets"
TRIALS = "trials"
JOURNAL = "optuna.journal"
JOINT = "joint"
JOINT_PLAN = "plan.json"  # inside joint/

# inside targets/<name>/
ENSEMBLE = "ensemble.json"
CALIBRATION = "calibration.json"
OOF_UNCERTAINTY = "oof_uncertainty.csv"
LEARNERS = "learners"

# inside targets/<name>/learners/<member>/
FINAL = "final.json"  # how the member was refitted (its parts are the learner folders beside it)
LEARNER = "learner.json"  # inside each part: the learner's key, task, seed and parameters

#: what a fit writes at the top level of its directory (a failed attempt that is started over loses all of it;
#: the journal's lock files too, ``JOURNAL*``)
RUN_ENTRIES = (MANIFEST, DATA_REPORT, RECIPE, RUN_SPEC, LEADERBOARD, OOF, METRICS, FEATURIZERS, REPORT, TARGETS,
               TRIALS, JOINT)


def safe_name(name: str) -> str:
    """A file-system-safe folder name (letters, digits, ``-_.``; anything else becomes ``_``)."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
    return keep or "target"


def target_dir_name(target: str) -> str:
    """The manifest's ``dir`` of a target, relative to the run directory."""
    return f"{TARGETS}/{safe_name(target)}"


def target_dir(run: Path, target: str) -> Path:
    return Path(run) / target_dir_name(target)


def member_dir(tdir: Path, member_id: str) -> Path:
    """The folder of one ensemble member (or one tuned model's refit) inside a target's folder."""
    return Path(tdir) / LEARNERS / safe_name(member_id.replace("#", "_"))


def joint_member_dir(run: Path, member_id: str) -> Path:
    return Path(run) / JOINT / safe_name(member_id.replace("#", "_"))


def trials_dir(run: Path, study: str) -> Path:
    return Path(run) / TRIALS / study.replace(":", "_")
