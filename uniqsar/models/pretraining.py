"""`uniqsar pretrain`: one entry point for every pretraining kind; the recipe's ``[model] kind`` decides.

  kind = "unimol2" (the default when absent)   -> uniqsar.models.unimol2.pretrain.pretrain
  kind = "smiles_transformer"                   -> uniqsar.models.smiles.pretrain.pretrain
  kind = "dmpnn"                                -> uniqsar.models.dmpnn.pretrain.pretrain

Recipe lookup (``--recipe``): a path, or a packaged name resolved in uniqsar/recipes/ as ``<name>.toml``,
``pretrain_<name>.toml``, then ``pretrain_unimol2_<name>.toml`` (so ``tiny`` / ``small`` keep meaning the
Uni-Mol2 recipes and ``pretrain_smiles_tiny`` or ``smiles_tiny`` the SMILES-transformer ones).
"""
from __future__ import annotations

import tomllib
from pathlib import Path

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes"
KINDS = ("unimol2", "smiles_transformer", "dmpnn")


def resolve_recipe(name_or_path) -> tuple[Path, dict]:
    """(path, parsed TOML) of a pretraining recipe."""
    p = Path(str(name_or_path))
    for cand in (p, RECIPE_DIR / p.name, RECIPE_DIR / f"{p.name}.toml", RECIPE_DIR / f"pretrain_{p.name}.toml",
                 RECIPE_DIR / f"pretrain_unimol2_{p.name}.toml"):
        if cand.is_file():
            try:
                return cand, tomllib.loads(cand.read_text())
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{cand}: invalid TOML: {e}") from None
    avail = sorted(x.stem for x in RECIPE_DIR.glob("pretrain_*.toml"))
    raise FileNotFoundError(f"pretraining recipe {name_or_path!r} not found; packaged: {avail}")


def recipe_kind(d: dict) -> str:
    kind = d.get("model", {}).get("kind", "unimol2")
    if kind not in KINDS:
        raise ValueError(f"unknown pretraining [model] kind {kind!r}; known: {', '.join(KINDS)}")
    return kind


def pretrain(recipe, corpus, out, **kwargs) -> dict:
    """Dispatch to the pretraining loop of the recipe's kind; returns its model card. ``kwargs``: resume,
    max_steps, n_jobs, exclude, threads, limit, verbose, device (the same for every kind)."""
    path, d = resolve_recipe(recipe)
    kind = recipe_kind(d)
    if kind == "dmpnn":
        from uniqsar.models.dmpnn.pretrain import pretrain as run
        from uniqsar.models.dmpnn.pretrain_recipe import recipe_from_dict
    elif kind == "smiles_transformer":
        from uniqsar.models.smiles.pretrain import pretrain as run
        from uniqsar.models.smiles.pretrain_recipe import recipe_from_dict
    else:
        from uniqsar.models.unimol2.pretrain import pretrain as run
        from uniqsar.models.unimol2.pretrain_recipe import recipe_from_dict

        d = {**d, "model": {k: v for k, v in d.get("model", {}).items() if k != "kind"}}
    return run(recipe_from_dict(d, name=path.stem), corpus, out, **kwargs)


__all__ = ["pretrain", "resolve_recipe", "recipe_kind", "KINDS"]
