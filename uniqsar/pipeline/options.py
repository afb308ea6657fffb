"""Fit options resolved once, for the CLI and the Python API alike (both go through ``pipeline.fit``).

- the recipe: preset or TOML, ``--learners`` (a learner the preset lacks is taken, with its configuration, from the
  first preset that has one: ``best`` first), ``--standardize``, ``--drop-conflicting``, ``--joint``;
- metrics: names and aliases (``AUROC``, ``auc``, ``ROC-AUC``, ``MAE``...) to their canonical names, checked against
  each target's task before any feature is computed;
- data the recipe cannot cross-validate (too few examples of a class for its folds).
"""
from __future__ import annotations

from dataclasses import replace

from uniqsar.config import ConfigError, FeaturizerSpec, Recipe, available_presets, load_recipe
from uniqsar.data.standardize import check_mode
from uniqsar.data.targets import DataError
from uniqsar.metrics import default_metric, get_metric, metric_for_task
from uniqsar.util import log

#: where a learner that the chosen preset lacks is looked up first
DONOR_PRESET = "best"


def _donors(skip: str) -> list[str]:
    return [DONOR_PRESET] + [p for p in available_presets() if p not in (DONOR_PRESET, skip)]


def _borrow(recipe: Recipe, learner: str) -> Recipe:
    """``recipe`` plus the models of ``learner`` from the first preset that has one (their featurizers come along;
    an alias that means something else here is renamed)."""
    for preset in _donors(recipe.name):
        donor = load_recipe(preset)
        models = [m for m in donor.models if m.learner == learner]
        if models:
            break
    else:
        raise ConfigError(f"learner {learner!r} is in recipe {recipe.name!r} and in no preset "
                          f"({', '.join(available_presets())}); add a [[models]] entry for it to a recipe TOML "
                          "and pass that file as --preset")
    featurizers = list(recipe.featurizers)
    have = {f.alias: f for f in featurizers}
    borrowed = []
    for m in models:
        features = []
        for alias in m.features:
            spec = donor.featurizer(alias)
            new = alias
            while new in have and (have[new].key, have[new].params) != (spec.key, spec.params):
                new = f"{new}_{preset}"
            if new not in have:
                have[new] = FeaturizerSpec(new, spec.key, dict(spec.params))
                featurizers.append(have[new])
            features.append(new)
        borrowed.append(replace(m, features=tuple(features),
                                name=m.name or (f"{m.learner}__{'+'.join(features)}" if features != list(m.features)
                                                else "")))
    log(f"learner {learner!r} is not in preset {recipe.name!r}: using its configuration from preset {preset!r} "
        f"({', '.join(m.id for m in borrowed)})")
    return replace(recipe, models=recipe.models + tuple(borrowed), featurizers=tuple(featurizers))


def resolve_recipe(preset: str, learners=(), standardize: str | None = None,
                   drop_conflicting: bool | None = None, joint_targets: bool | None = None) -> Recipe:
    """The recipe a fit runs: ``preset`` with ``learners`` (none: all of the recipe's) and the data overrides."""
    from uniqsar.registry import learner_names

    recipe = load_recipe(preset)
    if learners:
        learners = list(dict.fromkeys(learners))
        unknown = [x for x in learners if x not in learner_names()]
        if unknown:
            raise ConfigError(f"unknown learner(s) {unknown}; available: {', '.join(learner_names())}")
        present = {m.learner for m in recipe.models}
        kept = replace(recipe, models=tuple(m for m in recipe.models if m.learner in learners))
        for learner in learners:
            if learner not in present:
                kept = _borrow(kept, learner)
        recipe = kept
    if standardize is not None:
        recipe = replace(recipe, standardize=check_mode(standardize))
    if drop_conflicting is not None:
        recipe = replace(recipe, drop_conflicting=bool(drop_conflicting))
    if joint_targets is not None:
        recipe = replace(recipe, joint_targets=bool(joint_targets))
    return recipe


def resolve_metrics(metric, targets) -> dict[str, str]:
    """``metric``: None, one name for every target, or ``{target: name}`` -> ``{target: name as given}``, every
    name checked to be a known metric or alias."""
    if not metric:
        return {}
    if isinstance(metric, str):
        metric = {t: metric for t in targets}
    unknown = [t for t in metric if t not in targets]
    if unknown:
        raise ConfigError(f"metric given for {unknown}, which is not a target ({', '.join(targets)})")
    for name in metric.values():
        get_metric(name)
    return dict(metric)


def target_metrics(given: dict[str, str], tasks: dict[str, str]) -> dict[str, str]:
    """Each target's canonical metric name (its task's default where none is given), checked against its task."""
    return {t: metric_for_task(given[t], task, t) if t in given else default_metric(task) for t, task in tasks.items()}


def check_class_counts(targets: dict, n_folds: int) -> None:
    """Binary and multiclass targets need ``n_folds`` examples of each class (one per CV fold; 2 without CV)."""
    need = max(2, n_folds)
    for name, data in targets.items():
        if data.task == "multiclass":
            _check_multiclass_counts(name, data, n_folds, need)
        if data.task != "binary":
            continue
        n_pos = int(data.y.sum())
        n_min, label = min((n_pos, data.classes[1]), (len(data.y) - n_pos, data.classes[0]), key=lambda x: x[0])
        if n_min < need:
            raise DataError(
                f"target {name!r} has {n_min} example(s) of class {label!r} among {len(data.y)} molecules; "
                + (f"{n_folds}-fold cross-validation needs at least {need} of each class (one per fold): "
                   "add examples of the rarer class or use a recipe with fewer folds ([cv] n_folds)"
                   if n_folds else f"training needs at least {need} of each class"))


def _check_multiclass_counts(name: str, data, n_folds: int, need: int) -> None:
    from uniqsar.data.classes import class_counts

    counts = class_counts(data.y, len(data.classes))
    few = [(label, int(c)) for label, c in zip(data.classes, counts) if c < need]
    if few:
        shown = ", ".join(f"{label!r} ({c})" for label, c in few[:5]) + (", ..." if len(few) > 5 else "")
        numeric = all(not isinstance(c, str) for c in data.classes)
        raise DataError(
            f"target {name!r} (multiclass, {len(data.classes)} classes) has too few examples of class(es) {shown} "
            f"among {len(data.y)} molecules; "
            + (f"{n_folds}-fold cross-validation needs at least {need} of each class (one per fold): merge or drop "
               "rare classes, or use a recipe with fewer folds ([cv] n_folds)" if n_folds else
               f"training needs at least {need} of each class")
            + ("; if the target is a numeric quantity, not class codes, pass --task regression" if numeric else ""))
