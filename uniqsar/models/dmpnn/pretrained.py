"""Which D-MPNN encoder weights a featurizer / learner uses, a stable identity for them, and their provenance.

`weights` vocabulary (featurizer ``dmpnn_emb`` and learner ``dmpnn`` params, ``uniqsar embed --model dmpnn``):
  "default"   the shipped encoder `uniqsar/models/dmpnn/weights/default.pt` (model card `default.json` beside it);
              a missing file is an error (it ships with the package);
  "random"    a seeded random init of the default architecture (`arch` overrides apply: tests use tiny ones);
  a path      the checkpoint.pt of `uniqsar pretrain --recipe pretrain_dmpnn_<name>`, or its run folder.

Checkpoint layout (torch.save of plain containers; torch.load(weights_only=True), never unpickled):
  {"format": "uniqsar-dmpnn/1", "config": {hidden_size, depth, aggregation, aggregation_norm, atom_dim, bond_dim,
   graph_version}, "encoder": state_dict of W_i / W_h / W_o, "provenance": {...}, "recipe": name}

Provenance (``provenance_of``): the pretraining corpora, the exclusion files, and ``tdc_admet_test_excluded``:
true only when every TDC ADMET test set was among the excluded files. A checkpoint without a provenance record
counts as not TDC-clean.
"""
from __future__ import annotations

from pathlib import Path

from uniqsar.models import provenance as _prov
from uniqsar.models.weights_identity import export_checkpoint, file_sha256
from uniqsar.models.weights_identity import identity_digest as _identity_digest

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "default.pt"
FORMAT = "uniqsar-dmpnn/1"
RANDOM_INIT_VERSION = "1"
DEFAULT_ARCH = {"hidden_size": 300, "depth": 3, "aggregation": "norm", "aggregation_norm": 100.0}
ARCH_KEYS = tuple(DEFAULT_ARCH)

_meta_cache: dict[str, dict] = {}


class DMPNNWeightsError(RuntimeError):
    """A checkpoint was found but is not a D-MPNN encoder checkpoint of this format."""


def provenance_of(corpus_stats: dict) -> dict:
    """Provenance record of a pretraining corpus (``corpus.json`` statistics; models/provenance.py)."""
    return _prov.corpus_provenance(corpus_stats)


def resolve_checkpoint(path) -> Path:
    return export_checkpoint(path, "D-MPNN", "pretrain_dmpnn_<name>")


def resolve_spec(weights="default", arch: dict | None = None) -> dict:
    """{"kind": "random", "config": {...}} or {"kind": "file", "path": Path}."""
    w = "default" if weights is None else str(weights)
    if arch and w.lower() != "random":
        raise ValueError("arch overrides apply to random initialisations only, not to a checkpoint")
    if w.lower() == "random":
        unknown = set(arch or {}) - set(ARCH_KEYS)
        if unknown:
            raise ValueError(f"unknown D-MPNN arch key(s) {sorted(unknown)}; allowed: {list(ARCH_KEYS)}")
        return {"kind": "random", "config": {**DEFAULT_ARCH, **(arch or {})}, "name": "random"}
    if w.lower() == "default":
        if not DEFAULT_CHECKPOINT.is_file():
            raise FileNotFoundError(f"the shipped D-MPNN weights are missing from this install ({DEFAULT_CHECKPOINT}); "
                                    f"reinstall uniqsar or pass weights='random' or a checkpoint path")
        return {"kind": "file", "path": DEFAULT_CHECKPOINT, "name": "default"}
    return {"kind": "file", "path": resolve_checkpoint(w), "name": w}


def read_checkpoint(path) -> dict:
    import torch

    try:
        ck = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise DMPNNWeightsError(f"{path}: cannot read as a D-MPNN checkpoint ({type(e).__name__}); only plain "
                                f"tensor checkpoints written by `uniqsar pretrain` are accepted") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT or not {"config", "encoder"} <= set(ck):
        what = sorted(ck) if isinstance(ck, dict) else type(ck).__name__
        raise DMPNNWeightsError(f"{path}: not a {FORMAT} checkpoint ({what})")
    from uniqsar.featurize.graph import ATOM_DIM, BOND_DIM, GRAPH_VERSION

    c = ck["config"]
    if (c.get("graph_version"), c.get("atom_dim"), c.get("bond_dim")) != (GRAPH_VERSION, ATOM_DIM, BOND_DIM):
        raise DMPNNWeightsError(f"{path}: trained on graph features v{c.get('graph_version')} "
                                f"({c.get('atom_dim')}/{c.get('bond_dim')}); this build has v{GRAPH_VERSION} "
                                f"({ATOM_DIM}/{BOND_DIM})")
    return ck


def identity(weights="default", seed: int = 0, arch: dict | None = None) -> dict:
    """JSON identity of the weights a (weights, seed, arch) triple resolves to, with their provenance."""
    spec = resolve_spec(weights, arch)
    if spec["kind"] == "random":
        return {"kind": "random", "name": "random", "seed": int(seed), "init_version": RANDOM_INIT_VERSION,
                "config": spec["config"], "note": "randomly initialised - no pretrained weights",
                "provenance": _prov.random_init()}
    path = Path(spec["path"])
    ident = {"kind": "file", "name": spec["name"], "path": str(path.resolve()), "sha256": file_sha256(path),
             "size_bytes": path.stat().st_size}
    if ident["sha256"] not in _meta_cache:
        ck = read_checkpoint(path)
        _meta_cache[ident["sha256"]] = {"config": {k: ck["config"][k] for k in ARCH_KEYS},
                                        "provenance": _prov.file_provenance(path, ident["sha256"],
                                                                            ck.get("provenance"))}
    ident.update(_meta_cache[ident["sha256"]])
    return ident


def identity_digest(ident: dict) -> str:
    keep = ("kind", "sha256", "seed", "init_version", "config")
    return _identity_digest(ident, ignore=[k for k in ident if k not in keep])


def describe(ident: dict) -> str:
    if ident["kind"] == "random":
        c = ident["config"]
        return f"RANDOM init (no pretrained weights; seed {ident['seed']}, hidden {c['hidden_size']}, depth {c['depth']})"
    return f"{ident['path']} (sha256 {ident['sha256'][:12]}...)"


def load_encoder(weights="default", seed: int = 0, arch: dict | None = None):
    """(DMPNNModel without FFN in eval mode, config dict) for `weights`."""
    import torch

    from .learner import DMPNNModel

    spec = resolve_spec(weights, arch)
    cfg = spec["config"] if spec["kind"] == "random" else None
    ck = None
    if cfg is None:
        ck = read_checkpoint(spec["path"])
        cfg = {k: ck["config"][k] for k in ARCH_KEYS}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        enc = DMPNNModel(int(cfg["hidden_size"]), int(cfg["depth"]), 0.0, int(cfg["hidden_size"]), 1,
                         str(cfg["aggregation"]), 0, float(cfg["aggregation_norm"]))
    del enc.ffn
    if ck is not None:
        try:
            enc.load_state_dict(ck["encoder"], strict=True)
        except RuntimeError as e:
            raise DMPNNWeightsError(f"{spec['path']}: weights do not match the architecture: {e}") from None
    return enc.eval(), cfg


def encoder_state(weights, seed: int = 0) -> tuple[dict, dict]:
    """(W_i / W_h / W_o state dict, config) of a checkpoint, for initialising a learner's encoder."""
    enc, cfg = load_encoder(weights, seed)
    return {k: v.detach().clone() for k, v in enc.state_dict().items()}, cfg


def save_checkpoint(encoder, spec, path, provenance: dict, recipe: str = "") -> Path:
    """Write the export layout (module docstring); loadable with torch.load(weights_only=True)."""
    import torch

    from uniqsar.featurize.graph import ATOM_DIM, BOND_DIM, GRAPH_VERSION

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = {"hidden_size": int(spec.hidden_size), "depth": int(spec.depth), "aggregation": str(spec.aggregation),
           "aggregation_norm": float(spec.aggregation_norm), "atom_dim": ATOM_DIM, "bond_dim": BOND_DIM,
           "graph_version": GRAPH_VERSION}
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items() if not k.startswith("ffn.")}
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "config": cfg, "encoder": state, "provenance": provenance, "recipe": recipe}, tmp)
    tmp.replace(path)
    return path


__all__ = ["DEFAULT_CHECKPOINT", "FORMAT", "DEFAULT_ARCH", "provenance_of", "resolve_spec", "identity",
           "identity_digest", "describe", "load_encoder", "encoder_state", "save_checkpoint", "read_checkpoint",
           "DMPNNWeightsError"]
