"""Which Uni-Mol2 weights a featurizer / learner uses, and a stable identity for them.

`weights` vocabulary (recipes, CLI `--weights`, learner / featurizer params):
  "default"        the shipped checkpoint `uniqsar/models/unimol2/weights/default.pt` (pretrained on MOSES
                   molecules; model card `default.json` beside it, training and probe results in
                   docs/unimol2_default_weights.md). Should the file be missing (a trimmed install), a seeded
                   RANDOM init of `DEFAULT_CONFIG` - said once on stderr and in `identity()["kind"]`.
  "random"         seeded random init (Uni-Core init_bert_params) of `DEFAULT_CONFIG`;
  "random:<size>"  seeded random init of a named size ("small", "tiny", "84m", ...);
  "<size>"         a released size name ("84m", "164m", ...): the official checkpoint (see weights.py);
  "tiny"/"small"   random init of that config (no checkpoint exists for them);
  a path          a checkpoint file or a folder holding checkpoint.pt.
`arch` (a dict of UniMol2Config overrides) applies to random inits only (tests use a tiny one).

`identity(weights, seed, arch)` is JSON: kind ("random" | "file"), path, sha256 of the file (cached per
path + size + mtime), the config summary, for random inits the seed, and ``provenance`` (models/provenance.py:
the model card's corpora and TDC exclusions; official releases are not TDC-clean). It goes into feature cache keys
and the run manifest, so new weights never reuse stale embeddings.
"""
from __future__ import annotations

import json
from pathlib import Path

from uniqsar.models import provenance as _prov
from uniqsar.models.weights_identity import file_sha256, warn_once
from uniqsar.models.weights_identity import identity_digest as _identity_digest

from .config import RELEASED_DIRS, SIZES, UniMol2Config
from .model import UniMol2

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "default.pt"
DEFAULT_CARD = WEIGHTS_DIR / "default.json"

# The shipped default's architecture (recipe pretrain_unimol2_small): 8 blocks, D = 256 (16 heads of 16),
# FFN 256, P = 64, h = 16 -> 4.07 M parameters (15.6 MB fp32). "random" is this architecture, untrained.
DEFAULT_CONFIG = UniMol2Config(layers=8, embed_dim=256, heads=16, ffn_dim=256, pair_dim=64, pair_hidden=16)
LOCAL_SIZES: dict[str, UniMol2Config] = {**SIZES, "small": DEFAULT_CONFIG}
# The official releases ("84m" ... "1.1b", fetched by weights.load_unimol2): their corpus is the publisher's.
RELEASED_PROVENANCE = _prov.published(
    [{"source": "Uni-Mol2 official pretraining set (Ji et al. 2024, arXiv:2406.14969): ~884M 3D conformations "
                "curated by the authors"}],
    "official Uni-Mol2 release: no exclusion of TDC ADMET test molecules is reported, and its corpus cannot be "
    "checked here")
# bump when the random-init procedure changes (identity of random weights)
RANDOM_INIT_VERSION = "1"

_config_cache: dict[str, dict] = {}


def _warn_once(key: str, msg: str) -> None:
    warn_once(__name__, key, msg)


def _config_summary(cfg: UniMol2Config) -> dict:
    return {k: getattr(cfg, k) for k in ("layers", "embed_dim", "heads", "ffn_dim", "pair_dim", "pair_hidden",
                                         "num_kernels")}


def resolve_spec(weights="default", arch: dict | None = None) -> dict:
    """Classify `weights` without building a model: {"kind": "random", "config": UniMol2Config} or
    {"kind": "file", "path": Path} (a released size name resolves - and may download - to its file)."""
    w = "default" if weights is None else str(weights)
    low = w.lower()
    if low == "default":
        if DEFAULT_CHECKPOINT.is_file():
            if arch:
                raise ValueError("arch overrides apply to random initialisations (weights='random'), not to the "
                                 "shipped default checkpoint")
            return {"kind": "file", "path": DEFAULT_CHECKPOINT, "name": "default"}
        _warn_once("default", "Uni-Mol2 weights 'default' = RANDOM initialisation of the small config "
                              f"(the shipped checkpoint {DEFAULT_CHECKPOINT} is missing from this install); "
                              "embeddings carry no "
                              "pretrained knowledge")
        return {"kind": "random", "config": _with(DEFAULT_CONFIG, arch), "name": "default"}
    if low == "random" or low.startswith("random:"):
        size = low.split(":", 1)[1] if ":" in low else "small"
        if size not in LOCAL_SIZES:
            raise ValueError(f"unknown Uni-Mol2 size {size!r}; choose one of {sorted(LOCAL_SIZES)}")
        return {"kind": "random", "config": _with(LOCAL_SIZES[size], arch), "name": low}
    if low in ("tiny", "small"):
        return {"kind": "random", "config": _with(LOCAL_SIZES[low], arch), "name": low}
    p = Path(w).expanduser()
    if p.exists() or low not in RELEASED_DIRS:
        if arch:
            raise ValueError("arch overrides apply to random initialisations only, not to a checkpoint")
        from .weights import resolve_checkpoint

        return {"kind": "file", "path": resolve_checkpoint(p), "name": w}
    from .weights import resolve_checkpoint

    return {"kind": "file", "path": resolve_checkpoint(low), "name": low}


def _with(cfg: UniMol2Config, arch: dict | None) -> UniMol2Config:
    if not arch:
        return cfg
    arch = dict(arch)
    if "embed_dim" in arch and "heads" not in arch:
        arch["heads"] = max(1, arch["embed_dim"] // 16)
    if "embed_dim" in arch and "ffn_dim" not in arch:
        arch["ffn_dim"] = arch["embed_dim"]
    return cfg.with_(**arch)


def identity(weights="default", seed: int = 0, arch: dict | None = None) -> dict:
    """JSON identity of the weights a (weights, seed, arch) triple resolves to."""
    spec = resolve_spec(weights, arch)
    if spec["kind"] == "random":
        return {"kind": "random", "name": spec["name"], "seed": int(seed), "init_version": RANDOM_INIT_VERSION,
                "config": _config_summary(spec["config"]),
                "note": "randomly initialised - no pretrained weights", "provenance": _prov.random_init()}
    path = Path(spec["path"])
    ident = {"kind": "file", "name": spec["name"], "path": str(path.resolve()), "sha256": file_sha256(path),
             "size_bytes": path.stat().st_size}
    ident["provenance"] = (RELEASED_PROVENANCE if spec["name"] in RELEASED_DIRS
                           else _prov.file_provenance(path, ident["sha256"]))
    card = path.with_suffix(".json")
    if card.is_file():
        try:
            ident["model_card"] = json.loads(card.read_text())
        except ValueError:
            pass
    from .config import infer_config
    from .weights import extract_state_dict, read_checkpoint

    if ident["sha256"] not in _config_cache:
        try:
            sd, _ = extract_state_dict(read_checkpoint(path))
            _config_cache[ident["sha256"]] = {"config": _config_summary(infer_config(sd))}
        except Exception as e:  # identity must not fail on an odd file; loading it will say what is wrong
            _config_cache[ident["sha256"]] = {"config_error": f"{type(e).__name__}: {e}"}
    ident.update(_config_cache[ident["sha256"]])
    return ident


def identity_digest(ident: dict) -> str:
    """Short stable hash of an identity (what feature cache ids include)."""
    return _identity_digest(ident, ignore=("path", "model_card", "note", "name", "provenance"))


def describe(ident: dict) -> str:
    if ident["kind"] == "random":
        c = ident["config"]
        return (f"RANDOM init (no pretrained weights; seed {ident['seed']}, {c['layers']} layers, "
                f"D={c['embed_dim']}, P={c['pair_dim']})")
    return f"{ident['path']} (sha256 {ident['sha256'][:12]}...)"


def load_backbone(weights="default", seed: int = 0, arch: dict | None = None, device="cpu") -> UniMol2:
    """A UniMol2 model (eval mode) for `weights`; random inits are seeded and leave the global RNG alone."""
    spec = resolve_spec(weights, arch)
    if spec["kind"] == "random":
        from .weights import random_unimol2

        return random_unimol2(spec["config"], seed=seed, device=device)
    from .weights import load_unimol2

    return load_unimol2(spec["path"], device=device)[0]


__all__ = ["DEFAULT_CONFIG", "DEFAULT_CHECKPOINT", "resolve_spec", "identity", "identity_digest", "describe",
           "load_backbone", "file_sha256"]
