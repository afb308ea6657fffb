"""`uniqsar pretrain`: one entry point for every pretraining kind; the recipe's ``[model] kind`` decides.

The kinds are a registry (``uniqsar.registry.PRETRAINING``: kind -> module). A kind's module provides
``recipe_from_dict(d, name)`` (the recipe's dataclasses, unknown keys refused) and
``pretrain(recipe, corpus, out, **kwargs)``; adding a kind is that module and its registry line.

Recipes live in ``uniqsar/recipes/pretrain/`` (``recipes/pretrain/`` at the repository root). ``--recipe``: a
path, or a packaged name resolved there as ``<name>.toml``, ``pretrain_<name>.toml``, then
``pretrain_<DEFAULT_KIND>_<name>.toml`` (so ``tiny`` / ``small`` keep meaning the Uni-Mol2 recipes and
``pretrain_smiles_tiny`` or ``smiles_tiny`` the SMILES-transformer ones). A path that does not exist falls back
to its file name there (``uniqsar/recipes/pretrain_smiles_small.toml``, the old location, still resolves).
"""
from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from uniqsar.registry import PRETRAINING

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes" / "pretrain"
DEFAULT_KIND = "unimol2"  # a recipe without [model] kind
KINDS = tuple(PRETRAINING)


def resolve_recipe(name_or_path) -> tuple[Path, dict]:
    """(path, parsed TOML) of a pretraining recipe."""
    p = Path(str(name_or_path))
    for cand in (p, RECIPE_DIR / p.name, RECIPE_DIR / f"{p.name}.toml", RECIPE_DIR / f"pretrain_{p.name}.toml",
                 RECIPE_DIR / f"pretrain_{DEFAULT_KIND}_{p.name}.toml"):
        if cand.is_file():
            try:
                return cand, tomllib.loads(cand.read_text())
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{cand}: invalid TOML: {e}") from None
    avail = sorted(x.stem for x in RECIPE_DIR.glob("*.toml"))
    raise FileNotFoundError(f"pretraining recipe {name_or_path!r} not found; packaged: {avail}")


def recipe_kind(d: dict) -> str:
    kind = d.get("model", {}).get("kind", DEFAULT_KIND)
    if kind not in PRETRAINING:
        raise ValueError(f"unknown pretraining [model] kind {kind!r}; known: {', '.join(PRETRAINING)}")
    return kind


def kind_module(kind: str):
    """The module of a pretraining kind (``recipe_from_dict``, ``pretrain``)."""
    if kind not in PRETRAINING:
        raise ValueError(f"unknown pretraining [model] kind {kind!r}; known: {', '.join(PRETRAINING)}")
    return importlib.import_module(PRETRAINING[kind])


def load_recipe(name_or_path):
    """The typed recipe of any kind."""
    path, d = resolve_recipe(name_or_path)
    return kind_module(recipe_kind(d)).recipe_from_dict(d, name=path.stem)


def pretrain(recipe, corpus, out, **kwargs) -> dict:
    """Run the pretraining loop of the recipe's kind; returns its model card. ``kwargs``: resume, max_steps,
    n_jobs, exclude, threads, limit, verbose, device (the same for every kind)."""
    path, d = resolve_recipe(recipe)
    module = kind_module(recipe_kind(d))
    return module.pretrain(module.recipe_from_dict(d, name=path.stem), corpus, out, **kwargs)


__all__ = ["pretrain", "resolve_recipe", "recipe_kind", "kind_module", "load_recipe", "KINDS", "DEFAULT_KIND",
           "RECIPE_DIR"]
