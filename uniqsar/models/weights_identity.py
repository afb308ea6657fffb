"""Helpers shared by the pretrained-weights modules (`unimol2.pretrained`, `smiles.pretrained`, `dmpnn.pretrained`):
file hashing for weights identities, and an identity that never raises (a saved learner's record of its start).
What a run's manifest records is `models/provenance.recipe_representations`."""
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
