"""Python API: ``AutoQSAR(...).fit(df).predict(smiles)`` and ``load_run(path)``."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from uniqsar.pipeline.fit import FitOptions, fit
from uniqsar.pipeline.predict import Run
from uniqsar.util import parse_duration


def load_run(path, **kwargs) -> Run:
    """Load a finished run directory (never executes code from it)."""
    return Run(path, **kwargs)


class AutoQSAR:
    """One-call AutoML for molecular properties.

    >>> model = AutoQSAR(preset="fast", seed=1).fit("data.csv", target="Y", out="runs/x")
    >>> model.predict(["CCO", "c1ccccc1"])
    """

    def __init__(self, task: str = "auto", preset: str = "default", seed: int = 1, n_jobs: int = 1,
                 time_budget=None, cache_dir=None, learners=(), storage: str | None = None,
                 standardize: str | None = None, metric: str | dict | None = None,
                 drop_conflicting: bool | None = None, joint_targets: bool | None = None):
        self.task = task
        self.preset = preset
        self.seed = seed
        self.n_jobs = n_jobs
        self.time_budget = time_budget
        self.cache_dir = cache_dir
        self.learners = tuple(learners)
        self.storage = storage
        self.standardize = standardize  # full | canonical; None: the preset's
        self.metric = metric  # name or alias for every target, or {target: name}; None: the task's default
        self.drop_conflicting = drop_conflicting  # None: the preset's ([data] drop_conflicting)
        self.joint_targets = joint_targets  # True: torch learners fit all targets jointly; None: the preset's
        self.run_: Run | None = None

    def fit(self, data, target, smiles_col: str | None = None, out=None, resume: bool = False) -> "AutoQSAR":
        targets = (target,) if isinstance(target, str) else tuple(target)
        if out is None:
            out = Path(tempfile.mkdtemp(prefix="uniqsar-run-"))
        opts = FitOptions(targets=targets, smiles_col=smiles_col, task=self.task, preset=self.preset, seed=self.seed,
                          n_jobs=self.n_jobs, time_budget=parse_duration(self.time_budget), cache_dir=self.cache_dir,
                          learners=self.learners, storage=self.storage, resume=resume, standardize=self.standardize,
                          metric=self.metric or {}, drop_conflicting=self.drop_conflicting,
                          joint_targets=self.joint_targets)
        self.run_ = Run(fit(data, out, opts), cache_dir=self.cache_dir)
        return self

    def _run(self) -> Run:
        if self.run_ is None:
            raise RuntimeError("call fit() first (or use load_run for a saved run)")
        return self.run_

    def predict(self, data, smiles_col: str | None = None, intervals: bool = False, confidence: float = 0.9):
        """Predictions; ``intervals=True``: a DataFrame with the conformal interval / set at ``confidence`` and the
        applicability-domain columns (as ``uniqsar predict`` writes them)."""
        return self._run().predict(data, smiles_col, intervals=intervals, confidence=confidence)

    def explain(self, smiles, target: str | None = None) -> pd.DataFrame:
        """Atom weights (signed contribution to the ensemble prediction) per molecule, target and input atom."""
        return self._run().explain(smiles, target)

    def leaderboard(self) -> pd.DataFrame:
        return self._run().leaderboard()

    @property
    def run_dir(self) -> Path:
        return self._run().path
