"""Frozen configuration. A recipe (TOML in ``uniqsar/recipes/``) maps 1:1 onto ``Recipe``.

Recipes are data: they are parsed with ``tomllib`` and validated against the registries,
never executed.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from uniqsar.data.standardize import DEFAULT_MODE, MODES

RECIPE_DIR = Path(__file__).parent / "recipes"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FeaturizerSpec:
    alias: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    learner: str
    features: tuple[str, ...]
    n_trials: int = 10
    params: dict[str, Any] = field(default_factory=dict)  # fixed params, override the search space
    name: str = ""
    search: bool = True  # false: no search space, the learner's defaults + params only
    max_molecules: int | None = None  # a target with more training molecules fits without this model (cost cap)

    @property
    def id(self) -> str:
        return self.name or f"{self.learner}__{'+'.join(self.features) or 'smiles'}"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    standardize: str = DEFAULT_MODE  # canonical | full (data/standardize.py)
    drop_conflicting: bool = False  # leave out molecules whose duplicate labels conflict (data/targets.py)
    joint_targets: bool = False  # torch learners fit all regression / binary targets with one network (pipeline/joint.py)
    n_folds: int = 5
    split: str = "scaffold"
    cv_repeats: int = 1  # > 1: a trial's score is its mean over this many fold partitions (seeds seed, seed+1, ...)
    featurizers: tuple[FeaturizerSpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    ensemble: str = "auto"  # auto (best nested CV of greedy/best/mean) | greedy | best | mean
    ensemble_size: int = 50  # greedy selection rounds
    top_trials: int = 3  # best trials of each model kept as stacking candidates
    drop_models: bool = False  # backward elimination: drop models whose removal improves the nested CV score
    shrink: float = 0.0  # weights = (1 - shrink) x stacker's + shrink x equal weights on each model's best trial
    final: str = "refit"  # refit on all data | folds (average the CV fold models)
    pruning: bool = True

    def featurizer(self, alias: str) -> FeaturizerSpec:
        for f in self.featurizers:
            if f.alias == alias:
                return f
        return FeaturizerSpec(alias, alias, {})

    def for_size(self, n_molecules: int) -> "Recipe":
        """The recipe for a target of ``n_molecules``: models capped below that size (``max_molecules``) left out;
        if that would leave none, every model stays (a recipe always fits something)."""
        models = tuple(m for m in self.models if m.max_molecules is None or n_molecules <= m.max_molecules)
        return self if len(models) == len(self.models) else replace(self, models=models or self.models)

    def scaled_trials(self, factor: float) -> "Recipe":
        return replace(self, models=tuple(replace(m, n_trials=max(1, round(m.n_trials * factor))) for m in self.models))

    def to_dict(self) -> dict:
        return {
            "name": self.name, "description": self.description,
            # drop_conflicting only when set: the dict is part of a run's fingerprint, and older runs must resume
            "data": {"standardize": self.standardize, **({"drop_conflicting": True} if self.drop_conflicting else {}),
                     **({"joint_targets": True} if self.joint_targets else {})},
            "cv": {"n_folds": self.n_folds, "split": self.split,
                   **({"repeats": self.cv_repeats} if self.cv_repeats != 1 else {})},
            "featurizers": {f.alias: {"key": f.key, **f.params} for f in self.featurizers},
            "models": [
                {"learner": m.learner, "features": list(m.features), "n_trials": m.n_trials,
                 **({"params": m.params} if m.params else {}), **({"name": m.name} if m.name else {}),
                 **({} if m.search else {"search": False}),
                 **({"max_molecules": m.max_molecules} if m.max_molecules is not None else {})}
                for m in self.models
            ],
            "ensemble": {"method": self.ensemble, "size": self.ensemble_size, "top_trials": self.top_trials,
                         "drop_models": self.drop_models, **({"shrink": self.shrink} if self.shrink else {})},
            "final": {"mode": self.final},
            "tuning": {"pruning": self.pruning},
        }


SECTION_KEYS = {
    "data": {"standardize", "drop_conflicting", "joint_targets"},
    "cv": {"n_folds", "split", "repeats"},
    "models": {"learner", "features", "n_trials", "params", "name", "search", "max_molecules"},
    "ensemble": {"method", "size", "top_trials", "drop_models", "shrink"},
    "final": {"mode"},
    "tuning": {"pruning"},
}


def recipe_from_dict(d: dict, name: str = "custom") -> Recipe:
    from uniqsar.registry import featurizer_names, get_featurizer_class, get_learner_class, learner_names

    known = {"name", "description", "data", "cv", "featurizers", "models", "ensemble", "final", "tuning"}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"recipe {name!r}: unknown section(s) {sorted(unknown)}")
    for section, keys in SECTION_KEYS.items():
        items = d.get(section, [] if section == "models" else {})
        for item in (items if section == "models" else [items]):
            extra = set(item) - keys
            if extra:
                raise ConfigError(f"recipe {name!r}: unknown key(s) {sorted(extra)} in [{section}]; "
                                  f"allowed: {sorted(keys)}")
    standardize = d.get("data", {}).get("standardize", DEFAULT_MODE)
    if standardize not in MODES:
        raise ConfigError(f"recipe {name!r}: data.standardize must be one of {MODES}, not {standardize!r}")
    drop_conflicting = d.get("data", {}).get("drop_conflicting", Recipe.drop_conflicting)
    if not isinstance(drop_conflicting, bool):
        raise ConfigError(f"recipe {name!r}: data.drop_conflicting must be true or false")
    joint_targets = d.get("data", {}).get("joint_targets", Recipe.joint_targets)
    if not isinstance(joint_targets, bool):
        raise ConfigError(f"recipe {name!r}: data.joint_targets must be true or false")
    cv = d.get("cv", {})
    if cv.get("split", "scaffold") not in {"scaffold", "random"}:
        raise ConfigError(f"recipe {name!r}: cv.split must be scaffold or random, not {cv.get('split')!r}")
    feats = []
    for alias, spec in d.get("featurizers", {}).items():
        spec = dict(spec)
        key = spec.pop("key", alias)
        if key not in featurizer_names():
            raise ConfigError(f"recipe {name!r}: unknown featurizer {key!r}; known: {featurizer_names()}")
        try:
            get_featurizer_class(key)(**spec)  # validates the params now, not mid-run
        except ValueError as exc:
            raise ConfigError(f"recipe {name!r}, featurizer {alias!r}: {exc}") from None
        feats.append(FeaturizerSpec(alias, key, spec))
    aliases = {f.alias for f in feats}
    models = []
    for m in d.get("models", []):
        if m.get("learner") not in learner_names():
            raise ConfigError(f"recipe {name!r}: unknown learner {m.get('learner')!r}; known: {learner_names()}")
        features = tuple(m.get("features", ()))
        for f in features:
            if f not in aliases and f not in featurizer_names():
                raise ConfigError(f"recipe {name!r}: model {m['learner']} uses unknown features {f!r}")
        cls = get_learner_class(m["learner"])
        if cls.input == "features" and not features:
            raise ConfigError(f"recipe {name!r}: learner {m['learner']!r} needs a features list")
        try:
            cls(cls.tasks[0], **dict(m.get("params", {})))  # validates the params now, not mid-run
        except ValueError as exc:
            raise ConfigError(f"recipe {name!r}, model {m.get('name') or m['learner']!r}: {exc}") from None
        cap = m.get("max_molecules")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ConfigError(f"recipe {name!r}: model {m['learner']}: max_molecules must be a positive integer")
        models.append(ModelSpec(m["learner"], features, int(m.get("n_trials", 10)), dict(m.get("params", {})),
                                m.get("name", ""), bool(m.get("search", True)), cap))
    if not models:
        raise ConfigError(f"recipe {name!r} has no [[models]]")
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"recipe {name!r}: duplicate model ids {ids}; give them distinct `name`s")
    ens = d.get("ensemble", {})
    drop_models = ens.get("drop_models", Recipe.drop_models)
    if not isinstance(drop_models, bool):
        raise ConfigError(f"recipe {name!r}: ensemble.drop_models must be true or false")
    shrink = ens.get("shrink", 0.0)
    if isinstance(shrink, bool) or not isinstance(shrink, (int, float)) or not 0.0 <= shrink <= 1.0:
        raise ConfigError(f"recipe {name!r}: ensemble.shrink must be a number from 0 to 1, got {shrink!r}")
    recipe = Recipe(
        name=d.get("name", name), description=d.get("description", ""), standardize=standardize,
        drop_conflicting=drop_conflicting, joint_targets=joint_targets, n_folds=int(cv.get("n_folds", 5)), split=cv.get("split", "scaffold"),
        cv_repeats=_repeats(cv.get("repeats", 1), name),
        featurizers=tuple(feats), models=tuple(models),
        ensemble=ens.get("method", "auto"), ensemble_size=int(ens.get("size", 50)),
        top_trials=int(ens.get("top_trials", 3)), drop_models=drop_models, shrink=float(shrink),
        final=d.get("final", {}).get("mode", "refit"), pruning=bool(d.get("tuning", {}).get("pruning", True)),
    )
    if recipe.ensemble not in {"auto", "greedy", "best", "mean"}:
        raise ConfigError(f"recipe {name!r}: ensemble method must be auto, greedy, best or mean")
    if recipe.final not in {"refit", "folds"}:
        raise ConfigError(f"recipe {name!r}: final mode must be refit or folds")
    if recipe.n_folds == 1 or recipe.n_folds < 0:
        raise ConfigError(f"recipe {name!r}: cv.n_folds must be >= 2, or 0 for no cross-validation")
    return recipe


def _repeats(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"recipe {name!r}: cv.repeats must be a whole number >= 1, got {value!r}")
    return value


def available_presets() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml") if not p.stem.startswith("pretrain"))


def load_recipe(name_or_path: str) -> Recipe:
    """A preset name (``fast``, ``default``, ``best``, ...) or a path to a TOML recipe."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPE_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise ConfigError(f"unknown preset {name_or_path!r}; available: {', '.join(available_presets())}")
    if not path.exists():
        raise ConfigError(f"recipe file not found: {path}")
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return recipe_from_dict(data, name=path.stem)


def dump_toml(d: dict, prefix: str = "") -> str:
    """Minimal TOML writer for recipe dicts (tables, arrays of tables, scalars, lists)."""
    import json

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()) and v:
            tables.append((k, v, "table"))
        elif isinstance(v, dict):
            tables.append((k, v, "flat"))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v, "array"))
        else:
            lines.append(f"{k} = {val(v)}")
    for k, v, kind in tables:
        name = f"{prefix}{k}"
        if kind == "array":
            for item in v:
                lines += ["", f"[[{name}]]"] + [f"{a} = {val(b)}" for a, b in item.items()]
        elif kind == "table":
            lines += ["", f"[{name}]"] + [f"{a} = {val(b)}" for a, b in v.items()]
        else:
            lines += ["", f"[{name}]"] + [f"{a} = {val(b)}" for a, b in v.items()]
    return "\n".join(lines) + "\n"
