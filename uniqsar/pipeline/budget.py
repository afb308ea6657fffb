"""A fit's time budget (``Budget``: one deadline and the rules that split what is left) and planning the fit
into it before anything expensive runs.

- ``Budget`` splits the time left: featurization may use ``FEATURIZE_SHARE`` of it, each target an equal share
  of what remains when it starts (joint studies: their share of all trials), and ``FINAL_SHARE`` of each share is
  kept for stacking, final refits and writing the run directory.

- A guaranteed fallback: LightGBM with its default settings (100 trees) on one ECFP count view is cross-validated
  first, always starts and is never aborted (boosting stops at the tuning deadline with the trees it has), so a
  budget ends with a usable model whenever one molecule is valid.
- Featurizers are planned, cheapest first, from the rate recorded in the feature cache when they last computed
  molecules, else the rate the class declares (``seconds_per_molecule``, e.g. Uni-Mol2 conformers), else a rate
  measured on a few uncached molecules (kept in the cache); those that would take featurization past
  ``FEATURIZE_SHARE`` of the time left are skipped, with the models that need them (logged, and recorded in
  the manifest's ``budget_plan``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

from uniqsar.config import FeaturizerSpec, ModelSpec, Recipe
from uniqsar.util import log

FALLBACK_PREFIX = "fallback_"
FALLBACK_PARAMS = {"n_estimators": 100}  # the learner's defaults otherwise
FALLBACK_VIEW = FeaturizerSpec("fallback_ecfp", "morgan_count", {"radius": 2, "n_bits": 1024})
#: featurization may use at most this share of the time left when it starts
FEATURIZE_SHARE = 0.5
#: share of each target's time kept for stacking, final refits and writing the run directory
FINAL_SHARE = 0.2
#: molecules timed per featurizer (after one warm-up molecule that pays for model loading)
PROBE = 8


@dataclass(frozen=True)
class Budget:
    """The time budget of one fit: ``seconds`` from ``start`` (``time.time()``); ``seconds=None`` is no budget,
    and then every deadline below is None (no limit)."""

    seconds: float | None
    start: float

    @classmethod
    def starting_now(cls, seconds: float | None) -> "Budget":
        return cls(float(seconds) if seconds else None, time.time())

    @property
    def limited(self) -> bool:
        return self.seconds is not None

    @property
    def deadline(self) -> float | None:
        return None if self.seconds is None else self.start + self.seconds

    def left(self) -> float:
        """Seconds left (infinite without a budget; 0 once past the deadline)."""
        return float("inf") if self.seconds is None else max(0.0, self.deadline - time.time())

    def exhausted(self, margin: float = 1.0) -> bool:
        return self.seconds is not None and time.time() > self.deadline - margin

    def target_deadlines(self, i: int, n: int) -> tuple[float | None, float | None]:
        """(tuning deadline, final deadline) of target ``i`` of ``n``, planned when it starts: an equal share of
        the time left, its last ``FINAL_SHARE`` kept for stacking and refits."""
        if self.seconds is None:
            return None, None
        now = time.time()
        share = (self.deadline - now) / (n - i)
        return now + share * (1 - FINAL_SHARE), now + share

    def joint_deadline(self, n_joint_trials: int, n_all_trials: int) -> float | None:
        """Deadline of the joint studies (run before the per-target ones): their trials' share of the tuning
        time left."""
        if self.seconds is None:
            return None
        now = time.time()
        return now + (self.deadline - now) * (1 - FINAL_SHARE) * n_joint_trials / max(1, n_all_trials)


def is_fallback(model: ModelSpec) -> bool:
    return model.name.startswith(FALLBACK_PREFIX)


def _fallback(recipe: Recipe, specs: dict) -> tuple[Recipe, dict, ModelSpec]:
    """The fallback model on the recipe's first ECFP-count view, or on an added one."""
    alias = next((a for a in sorted(specs) if specs[a]["key"] == "morgan_count"), None)
    if alias is None:
        f = FALLBACK_VIEW
        alias, specs = f.alias, {**specs, f.alias: {"key": f.key, "params": dict(f.params)}}
        recipe = replace(recipe, featurizers=recipe.featurizers + (f,))
    model = ModelSpec("lightgbm", (alias,), n_trials=1, params=dict(FALLBACK_PARAMS),
                      name=f"{FALLBACK_PREFIX}lightgbm__{alias}", search=False)
    return recipe, specs, model


def _estimate(store, alias: str, smiles: list[str], n_jobs: int) -> tuple[float, str]:
    """(seconds, how) the uncached part of ``smiles`` would take for ``alias``: from the rate recorded in the
    feature cache, else the featurizer's own ``seconds_per_molecule``, else timed on a few molecules (kept)."""
    feat = store.featurizer(alias)
    missing = store.cache.missing(feat, smiles)
    if not missing:
        return 0.0, "cached"
    rate = store.cache.rate(feat)
    if rate is not None:
        return rate * len(missing) / max(1, n_jobs), "recorded rate"
    if feat.seconds_per_molecule:
        return feat.seconds_per_molecule * len(missing) / max(1, n_jobs), "declared rate"
    if len(missing) <= PROBE + 1:
        store.cache.get(feat, missing)
        return 0.0, "computed"
    store.cache.get(feat, missing[:1])  # warm-up: model loading and the like are paid once, not per molecule
    t0 = time.time()
    store.cache.get(feat, missing[1:1 + PROBE])
    per_molecule = (time.time() - t0) / PROBE
    return per_molecule * (len(missing) - 1 - PROBE) / max(1, n_jobs), f"measured on {PROBE}"


def plan_budget(recipe: Recipe, specs: dict, store, targets: dict, budget: Budget, n_jobs: int):
    """(recipe, specs, plan): the fallback put first, the featurizers that do not fit the budget left out."""
    recipe, specs, fallback = _fallback(recipe, specs)
    store.specs = specs
    smiles = list(dict.fromkeys(s for d in targets.values() for s in d.smiles))
    t_plan = time.time()
    allowance = FEATURIZE_SHARE * budget.left()
    order = sorted(specs, key=lambda a: (store.featurizer(a).seconds_per_molecule, a))  # cheap ones first
    estimate, skipped, total = {}, [], 0.0
    for alias in order:
        estimate[alias], how = _estimate(store, alias, smiles, n_jobs)
        left = allowance - (time.time() - t_plan) - total  # measuring costs time too
        if alias not in fallback.features and estimate[alias] > left:
            skipped.append(alias)
            log(f"time budget: skipping featurizer {alias!r} ({specs[alias]['key']}): about {estimate[alias]:.0f} s "
                f"for {len(smiles)} molecules ({how}), more than the {max(0.0, left):.0f} s left for featurization "
                "(cached features cost nothing: a rerun with the same cache can afford it)")
        else:
            total += estimate[alias]
    dropped = [m for m in recipe.models if set(m.features) & set(skipped)]
    for m in dropped:
        log(f"time budget: model {m.id} left out (needs {', '.join(sorted(set(m.features) & set(skipped)))})")
    recipe = replace(recipe, models=(fallback,) + tuple(m for m in recipe.models if m not in dropped))
    specs = {a: s for a, s in specs.items() if a not in skipped}
    store.specs = specs
    plan = {"fallback": fallback.id, "featurize_estimate_s": {a: round(v, 2) for a, v in estimate.items()},
            "featurize_allowance_s": round(allowance, 1), "skipped_featurizers": skipped,
            "skipped_models": [m.id for m in dropped]}
    return recipe, specs, plan
