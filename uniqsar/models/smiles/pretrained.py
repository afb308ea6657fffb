"""Which SMILES-transformer weights a featurizer / learner uses, and a stable identity for them.

`weights` vocabulary (recipes, learner / featurizer params):
  "default"   the shipped checkpoint `uniqsar/models/smiles/weights/default.pt` (model card `default.json`
              beside it) once it exists; until then a seeded RANDOM init of `DEFAULT_CONFIG`, said once on
              stderr and in `identity()["kind"] == "random"`;
  "random"    seeded random init (BERT init) of `DEFAULT_CONFIG` (`arch` overrides apply: tests use tiny ones);
  a path      a checkpoint file written by `uniqsar pretrain --recipe pretrain_smiles_<name>` (its
              `checkpoint.pt`), or a run folder holding one.

Checkpoint layout (torch.save of plain containers; read with torch.load(weights_only=True), never unpickled):
  {"format": "uniqsar-smiles-transformer/1", "config": {SmilesTransformerConfig fields},
   "vocab": [token strings], "model": SmilesMLM state_dict}
The vocabulary travels with the weights: a checkpoint is tokenized with its own vocabulary.

`identity(weights, seed, arch)` is JSON: kind ("random" | "file"), path, sha256 of the file (cached per path +
size + mtime), config, vocabulary sha256, for random inits the seed, and ``provenance`` (models/provenance.py:
from the model card beside the file). It goes into the feature cache key (provenance excepted).
"""
from __future__ import annotations

import json
from pathlib import Path

from uniqsar.models import provenance as _prov
from uniqsar.models.weights_identity import export_checkpoint, file_sha256, warn_once
from uniqsar.models.weights_identity import identity_digest as _identity_digest

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "default.pt"
DEFAULT_CARD = WEIGHTS_DIR / "default.json"
FORMAT = "uniqsar-smiles-transformer/1"
RANDOM_INIT_VERSION = "1"  # bump when the random-init procedure changes

_meta_cache: dict[str, dict] = {}


class SmilesWeightsError(RuntimeError):
    """A checkpoint was found but is not a SMILES-transformer checkpoint of this format."""


def _warn_once(key: str, msg: str) -> None:
    warn_once(__name__, key, msg)


def default_config():
    """d 256, 4 layers, 8 heads, FFN 1024, 128 positions, the packaged vocabulary: ~3.4 M parameters (13 MB)."""
    from uniqsar.featurize.smiles_tokens import load_vocab

    from .model import SmilesTransformerConfig

    return SmilesTransformerConfig(vocab_size=len(load_vocab()))


def resolve_checkpoint(path) -> Path:
    return export_checkpoint(path, "SMILES-transformer", "pretrain_smiles_<name>")


def resolve_spec(weights="default", arch: dict | None = None) -> dict:
    """{"kind": "random", "config": SmilesTransformerConfig} or {"kind": "file", "path": Path}."""
    w = "default" if weights is None else str(weights)
    low = w.lower()
    if low == "default":
        if DEFAULT_CHECKPOINT.is_file():
            if arch:
                raise ValueError("arch overrides apply to random initialisations only, not to a checkpoint")
            return {"kind": "file", "path": DEFAULT_CHECKPOINT, "name": "default"}
        _warn_once("default", "SMILES-transformer weights 'default' = RANDOM initialisation (no pretrained "
                              f"default checkpoint: {DEFAULT_CHECKPOINT} is missing from this install); "
                              "embeddings carry no pretrained "
                              "knowledge")
        return {"kind": "random", "config": _with(default_config(), arch), "name": "default"}
    if low == "random":
        return {"kind": "random", "config": _with(default_config(), arch), "name": "random"}
    if arch:
        raise ValueError("arch overrides apply to random initialisations only, not to a checkpoint")
    return {"kind": "file", "path": resolve_checkpoint(w), "name": w}


def _with(cfg, arch: dict | None):
    if not arch:
        return cfg
    arch = dict(arch)
    if "d_model" in arch and "ffn_dim" not in arch:
        arch["ffn_dim"] = 4 * arch["d_model"]
    if "d_model" in arch and "n_heads" not in arch:
        arch["n_heads"] = max(1, arch["d_model"] // 32)
    return cfg.with_(**arch).validate()


def read_checkpoint(path) -> dict:
    import torch

    try:
        ck = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise SmilesWeightsError(f"{path}: cannot read as a SMILES-transformer checkpoint ({type(e).__name__}: {e})") \
            from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT or not {"config", "vocab", "model"} <= set(ck):
        what = sorted(ck) if isinstance(ck, dict) else type(ck).__name__
        raise SmilesWeightsError(f"{path}: not a {FORMAT} checkpoint ({what})")
    return ck


def identity(weights="default", seed: int = 0, arch: dict | None = None) -> dict:
    """JSON identity of the weights a (weights, seed, arch) triple resolves to."""
    from uniqsar.featurize.smiles_tokens import SmilesTokenizer

    spec = resolve_spec(weights, arch)
    if spec["kind"] == "random":
        return {"kind": "random", "name": spec["name"], "seed": int(seed), "init_version": RANDOM_INIT_VERSION,
                "config": spec["config"].to_dict(), "vocab_sha256": SmilesTokenizer().sha256,
                "note": "randomly initialised - no pretrained weights", "provenance": _prov.random_init()}
    path = Path(spec["path"])
    ident = {"kind": "file", "name": spec["name"], "path": str(path.resolve()), "sha256": file_sha256(path),
             "size_bytes": path.stat().st_size}
    ident["provenance"] = _prov.file_provenance(path, ident["sha256"])
    card = path.with_suffix(".json") if path.name != "checkpoint.pt" else path.parent / "model_card.json"
    if card.is_file():
        try:
            ident["model_card"] = json.loads(card.read_text())
        except ValueError:
            pass
    if ident["sha256"] not in _meta_cache:
        ck = read_checkpoint(path)
        _meta_cache[ident["sha256"]] = {"config": dict(ck["config"]),
                                        "vocab_sha256": SmilesTokenizer(ck["vocab"]).sha256}
    ident.update(_meta_cache[ident["sha256"]])
    return ident


def identity_digest(ident: dict) -> str:
    """Short stable hash of an identity (what feature cache ids include)."""
    return _identity_digest(ident, ignore=("path", "model_card", "note", "name", "size_bytes", "provenance"))


def describe(ident: dict) -> str:
    if ident["kind"] == "random":
        c = ident["config"]
        return f"RANDOM init (no pretrained weights; seed {ident['seed']}, {c['n_layers']} layers, d={c['d_model']})"
    return f"{ident['path']} (sha256 {ident['sha256'][:12]}...)"


def random_mlm(config, seed: int = 0):
    """A seeded random SmilesMLM; the global torch RNG is left untouched."""
    import torch

    from .model import SmilesMLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = SmilesMLM(config)
    return model.eval()


def load_mlm(weights="default", seed: int = 0, arch: dict | None = None):
    """(SmilesMLM in eval mode, SmilesTokenizer) for `weights`."""
    from uniqsar.featurize.smiles_tokens import SmilesTokenizer

    from .model import SmilesMLM, SmilesTransformerConfig

    spec = resolve_spec(weights, arch)
    if spec["kind"] == "random":
        tok = SmilesTokenizer()
        if spec["config"].vocab_size != tok.vocab_size:
            raise ValueError(f"arch vocab_size {spec['config'].vocab_size} != packaged vocabulary {tok.vocab_size}")
        return random_mlm(spec["config"], seed), tok
    ck = read_checkpoint(spec["path"])
    cfg = SmilesTransformerConfig.from_dict(dict(ck["config"]))
    tok = SmilesTokenizer(list(ck["vocab"]))
    if cfg.vocab_size != tok.vocab_size:
        raise SmilesWeightsError(f"{spec['path']}: config vocab_size {cfg.vocab_size} != {tok.vocab_size} tokens")
    model = SmilesMLM(cfg)
    try:
        model.load_state_dict(ck["model"], strict=True)
    except RuntimeError as e:
        raise SmilesWeightsError(f"{spec['path']}: weights do not match the architecture: {e}") from None
    return model.eval(), tok


def save_checkpoint(model, tokenizer, path) -> Path:
    """Write the export layout (see module docstring); loadable with torch.load(weights_only=True)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "config": model.cfg.to_dict(), "vocab": list(tokenizer.tokens),
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, tmp)
    tmp.replace(path)
    return path


__all__ = ["DEFAULT_CHECKPOINT", "DEFAULT_CARD", "FORMAT", "default_config", "resolve_spec", "identity",
           "identity_digest", "describe", "load_mlm", "random_mlm", "save_checkpoint", "read_checkpoint",
           "SmilesWeightsError"]
