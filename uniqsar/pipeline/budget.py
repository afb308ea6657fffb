"""Planning a fit into its time budget, before anything expensive runs.

- A guaranteed fallback: LightGBM with its default settings (fewer trees) on one ECFP count view is tuned first
  and never cut by the deadline, so a budget ends with a usable model whenever one molecule is valid.
- Featurizers are planned from measured rates: each one computes a few uncached molecules (kept in the cache),
  the rest is extrapolated, and the costliest ones that would take featurization past ``FEATURIZE_SHARE`` of the
  budget are skipped, with the models that need them (logged, and recorded in the manifest's ``budget_plan``).
"""
from __future__ import annotations

import time
from dataclasses import replace

from uniqsar.config import FeaturizerSpec, ModelSpec, Recipe
from uniqsar.util import log

FALLBACK_PREFIX = "fallback_"
FALLBACK_PARAMS = {"n_estimators": 200}  # the learner's defaults otherwise
FALLBACK_VIEW = FeaturizerSpec("fallback_ecfp", "morgan_count", {"radius": 2, "n_bits": 1024})
#: featurization may use at most this share of the time left when it starts
FEATURIZE_SHARE = 0.5
#: molecules timed per featurizer (after one warm-up molecule that pays for model loading)
PROBE = 8


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


def _estimate(store, alias: str, smiles: list[str], n_jobs: int) -> float:
    """Seconds the uncached part of ``smiles`` would take for ``alias`` (the timed molecules are cached)."""
    feat = store.featurizer(alias)
    missing = store.cache.missing(feat, smiles)
    if len(missing) <= PROBE + 1:
        store.cache.get(feat, missing)
        return 0.0
    store.cache.get(feat, missing[:1])  # warm-up: model loading and the like are paid once, not per molecule
    t0 = time.time()
    store.cache.get(feat, missing[1:1 + PROBE])
    per_molecule = (time.time() - t0) / PROBE
    return per_molecule * (len(missing) - 1 - PROBE) / max(1, n_jobs)


def plan_budget(recipe: Recipe, specs: dict, store, targets: dict, deadline: float, n_jobs: int):
    """(recipe, specs, plan): the fallback put first, the featurizers that do not fit the budget left out."""
    recipe, specs, fallback = _fallback(recipe, specs)
    store.specs = specs
    smiles = list(dict.fromkeys(s for d in targets.values() for s in d.smiles))
    allowance = FEATURIZE_SHARE * max(0.0, deadline - time.time())
    estimate = {a: _estimate(store, a, smiles, n_jobs) for a in sorted(specs)}
    skipped, total = [], 0.0
    for alias in sorted(estimate, key=lambda a: (estimate[a], a)):
        if alias not in fallback.features and total + estimate[alias] > allowance:
            skipped.append(alias)
            log(f"time budget: skipping featurizer {alias!r} ({specs[alias]['key']}): about {estimate[alias]:.0f} s "
                f"for {len(smiles)} molecules (measured on {PROBE}), more than the {allowance - total:.0f} s left for "
                "featurization (cached features cost nothing: a rerun with the same cache can afford it)")
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
