"""Helpers shared by the pretrained-weights modules (`unimol2.pretrained`, `smiles.pretrained`, `dmpnn.pretrained`):
file hashing for weights identities, the identity digest, finding a pretraining export's checkpoint, a warning
said once, and an identity that never raises (a saved learner's record of its start). What a run's manifest
records is `models/provenance.recipe_representations`."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Callable, Iterable

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


def identity_digest(ident: dict, ignore: Iterable[str]) -> str:
    """Short stable hash of an identity without its ``ignore`` keys (names, paths, notes: what does not change
    the weights). Feature cache ids include it, so each module's ``ignore`` list must stay as it is."""
    core = {k: v for k, v in ident.items() if k not in set(ignore)}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:16]


def export_checkpoint(path, what: str, recipe_hint: str) -> Path:
    """The checkpoint a ``weights`` path names: the file, or ``checkpoint.pt`` in a pretraining run folder."""
    p = Path(str(path)).expanduser()
    if p.is_dir():
        if (p / "checkpoint.pt").is_file():
            return p / "checkpoint.pt"
        raise FileNotFoundError(f"folder {p} has no checkpoint.pt (a {what} pretraining export)")
    if not p.is_file():
        raise FileNotFoundError(f"{what} weights {str(path)!r}: no such file; use 'default', 'random' or the "
                                f"checkpoint.pt of `uniqsar pretrain --recipe {recipe_hint}`")
    return p


_warned: set[tuple[str, str]] = set()


def warn_once(module: str, key: str, msg: str) -> None:
    """Print ``msg`` on stderr the first time (``module``, ``key``) is seen in this process."""
    if (module, key) not in _warned:
        _warned.add((module, key))
        print(f"uniqsar: warning: {msg}", file=sys.stderr, flush=True)


def safe_identity(identity: Callable[..., dict], weights, seed: int, arch: dict | None) -> dict:
    """`identity(weights, seed, arch)`, or a record of why it failed (a manifest entry never raises)."""
    try:
        return identity(weights, seed, arch)
    except Exception as e:
        return {"kind": "error", "weights": str(weights), "error": f"{type(e).__name__}: {e}"}
