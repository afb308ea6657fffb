"""Helpers shared by the pretrained-weights modules (`unimol2.pretrained`, `smiles.pretrained`): file
hashing for weights identities, and the per-recipe identity table written into every run manifest."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

_sha_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path) -> str:
    """sha256 of a file, cached per (resolved path, size, mtime)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


def safe_identity(identity: Callable[..., dict], weights, seed: int, arch: dict | None) -> dict:
    """`identity(weights, seed, arch)`, or a record of why it failed (a manifest entry never raises)."""
    try:
        return identity(weights, seed, arch)
    except Exception as e:
        return {"kind": "error", "weights": str(weights), "error": f"{type(e).__name__}: {e}"}


def recipe_identities(key: str, identity: Callable[..., dict], recipe, specs: dict, seed: int) -> dict:
    """Weights identity of every featurizer alias and learner named `key` in a recipe. Learners initialise
    random weights with the run seed; featurizers with their own `seed` param (default 0)."""
    out = {}
    for alias, spec in specs.items():
        if spec["key"] == key:
            p = spec.get("params", {})
            out[f"featurizer:{alias}"] = safe_identity(identity, p.get("weights", "default"), int(p.get("seed", 0)),
                                                       p.get("arch"))
    for m in recipe.models:
        if m.learner == key:
            p = m.params
            out[f"learner:{m.id}"] = safe_identity(identity, p.get("weights", "default"), int(seed), p.get("arch"))
    return out
