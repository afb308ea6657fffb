"""Load, create and save Uni-Mol2 weights.

`load_unimol2(source)` accepts a checkpoint file, a folder holding `checkpoint.pt`, or a released size name
("84m", "164m", "310m", "570m", "1.1b"; case-insensitive). Size names resolve to the Hugging Face repo
`dptech/Uni-Mol2`, file `modelzoo/<84M|164M|310M|570M|1.1B>/checkpoint.pt`, cached under
`$UNIQSAR_UNIMOL2_DIR` (default `$XDG_CACHE_HOME/uniqsar/unimol2`, i.e. `~/.cache/uniqsar/unimol2`).
`huggingface_hub` is optional and imported only when a download is needed.

Files are read with `torch.load(weights_only=True)`; Uni-Core checkpoints carry an `argparse.Namespace`
under `args`, which is allowlisted for that one retry. Nothing is ever unpickled with weights_only=False.
Key mismatches are errors: a weight that does not load is never left silently random.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path

import torch

from .config import RELEASED_DIRS, SIZES, UniMol2Config, get_config, infer_config
from .model import LinearHead, MaskLMHead, UniMol2

HF_REPO = "dptech/Uni-Mol2"
OPTIONAL_PREFIXES = ("lm_head.", "classification_head.")


class UniMol2WeightsNotFound(FileNotFoundError):
    """A checkpoint could not be found locally and could not be downloaded."""


class UniMol2CheckpointError(RuntimeError):
    """A checkpoint was found but does not match the Uni-Mol2 architecture."""


def default_cache_dir() -> Path:
    if os.environ.get("UNIQSAR_UNIMOL2_DIR"):
        return Path(os.environ["UNIQSAR_UNIMOL2_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "uniqsar" / "unimol2"


def hub_filename(size: str) -> str:
    return f"modelzoo/{RELEASED_DIRS[size.lower()]}/checkpoint.pt"


def resolve_checkpoint(source, cache_dir=None) -> Path:
    """Path of a checkpoint file for a path, a folder or a released size name (downloading if allowed)."""
    p = Path(str(source)).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        if (p / "checkpoint.pt").is_file():
            return p / "checkpoint.pt"
        raise UniMol2WeightsNotFound(f"folder {p} has no checkpoint.pt")
    key = str(source).lower()
    if key not in RELEASED_DIRS:
        raise UniMol2WeightsNotFound(
            f"{source!r} is neither an existing file/folder nor a released Uni-Mol2 size {sorted(RELEASED_DIRS)}"
        )
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    target = cache / hub_filename(key)
    if target.is_file():
        return target
    reason = _download(key, cache)
    if target.is_file():
        return target
    raise UniMol2WeightsNotFound(
        f"Uni-Mol2 {RELEASED_DIRS[key]} weights are not cached and could not be downloaded ({reason}).\n"
        f"Put the file at: {target}\n"
        f"(from https://huggingface.co/{HF_REPO}, file {hub_filename(key)}), or set UNIQSAR_UNIMOL2_DIR to the "
        f"folder that holds modelzoo/, or pass the checkpoint path directly."
    )


def _download(key: str, cache: Path) -> str:
    """Try huggingface_hub; return a reason string on failure (never raise)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return "HF_HUB_OFFLINE is set"
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        return "huggingface_hub is not installed (pip install huggingface_hub)"
    try:
        hf_hub_download(repo_id=HF_REPO, filename=hub_filename(key), local_dir=str(cache))
    except Exception as e:  # network errors, 404, offline mode inside the hub client...
        return f"download failed: {type(e).__name__}: {e}"
    return "downloaded"


def read_checkpoint(path) -> dict:
    """torch.load with weights_only=True; allowlist argparse.Namespace (Uni-Core `args`) only if needed."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Namespace" not in str(e):
            raise UniMol2CheckpointError(f"{path}: cannot be read with weights_only=True: {e}") from e
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def extract_state_dict(ckpt: dict, use_ema: bool = False) -> tuple[dict, str]:
    """The model tensors from the layouts in use: {'model': sd}, {'model_state_dict': sd}, {'ema': ...}, bare sd."""
    if not isinstance(ckpt, dict):
        raise UniMol2CheckpointError(f"checkpoint is a {type(ckpt).__name__}, expected a dict")
    if use_ema:
        if "ema" not in ckpt:
            raise UniMol2CheckpointError("use_ema=True but the checkpoint has no 'ema' entry")
        ema = ckpt["ema"]
        sd, layout = (ema["params"] if isinstance(ema, dict) and "params" in ema else ema), "ema"
    elif isinstance(ckpt.get("model"), dict):
        sd, layout = ckpt["model"], "model"
    elif isinstance(ckpt.get("model_state_dict"), dict):
        sd, layout = ckpt["model_state_dict"], "model_state_dict"
    else:
        sd, layout = ckpt, "bare"
    sd = {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise UniMol2CheckpointError(f"no tensors found in the checkpoint (layout {layout!r})")
    return sd, layout


def load_unimol2(
    source,
    *,
    cache_dir=None,
    device="cpu",
    num_classes: int | None = None,
    lm_head: bool | None = None,
    use_ema: bool = False,
    seed: int = 0,
):
    """Build a Uni-Mol2 model from a checkpoint. Returns (model in eval mode, info dict).

    num_classes / lm_head: None keeps the heads found in the checkpoint; 0 / False drops them (their keys are
    then ignored). A task head requested with a size the checkpoint lacks is freshly initialised (seeded),
    which is the fine-tuning case; it is reported in info["new_heads"]. Every other missing or unexpected
    key, or a shape mismatch, raises UniMol2CheckpointError.
    """
    path = resolve_checkpoint(source, cache_dir)
    sd, layout = extract_state_dict(read_checkpoint(path), use_ema=use_ema)
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    try:
        found = infer_config(sd)
    except (KeyError, ValueError) as e:
        raise UniMol2CheckpointError(f"{path}: not a Uni-Mol2 state_dict ({e})") from e
    cfg = found.with_(
        num_classes=found.num_classes if num_classes is None else num_classes,
        lm_head=found.lm_head if lm_head is None else lm_head,
    )
    ignored, new_heads = [], []
    if not cfg.lm_head:
        ignored += [k for k in sd if k.startswith("lm_head.")]
    if cfg.num_classes != found.num_classes:
        ignored += [k for k in sd if k.startswith("classification_head.")]
        if cfg.num_classes:
            new_heads.append("classification_head")
    if cfg.lm_head and not found.lm_head:
        new_heads.append("lm_head")
    sd = {k: v for k, v in sd.items() if k not in set(ignored)}

    with torch.device("meta"):
        model = UniMol2(cfg)
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.startswith(_prefixes(new_heads))}
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    bad_shape = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(s)}"
                 for k, s in expected.items() if k in sd and sd[k].shape != s]
    if missing or unexpected or bad_shape:
        raise UniMol2CheckpointError(
            f"{path}: state_dict does not match the inferred config.\n missing: {missing[:20]}"
            f"{' ...' if len(missing) > 20 else ''}\n unexpected: {unexpected[:20]}\n shape: {bad_shape[:20]}"
        )
    model.load_state_dict(sd, strict=False, assign=True)
    _init_new_heads(model, cfg, new_heads, seed)
    model = model.to(device).eval()
    info = {
        "path": str(path),
        "layout": layout,
        "config": cfg.to_dict(),
        "ignored": sorted(ignored),
        "new_heads": new_heads,
        "missing": missing,
        "unexpected": unexpected,
        "num_params": model.num_params(),
    }
    return model, info


def _prefixes(new_heads) -> tuple:
    return tuple(f"{h}." for h in new_heads) or ("\0",)


def _init_new_heads(model: UniMol2, cfg: UniMol2Config, new_heads: list, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if "classification_head" in new_heads:
            model.classification_head = LinearHead(cfg.embed_dim, cfg.num_classes, cfg.pooler_dropout)
            model.classification_head.out_proj.weight.data.normal_(0.0, 0.02)
            model.classification_head.out_proj.bias.data.zero_()
        if "lm_head" in new_heads:
            model.lm_head = MaskLMHead(cfg.embed_dim, cfg.num_tokens)
            model.lm_head.dense.weight.data.normal_(0.0, 0.02)
            model.lm_head.dense.bias.data.zero_()
            model.lm_head.weight.data.normal_(0.0, 0.02)


def random_unimol2(config_or_size="84m", seed: int = 0, device="cpu", **overrides) -> UniMol2:
    """A seeded Uni-Core-style random init (init_bert_params); the global RNG state is left untouched."""
    cfg = config_or_size if isinstance(config_or_size, UniMol2Config) else get_config(config_or_size)
    cfg = cfg.with_(**overrides) if overrides else cfg
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = UniMol2(cfg)
    return model.to(device).eval()


def save_checkpoint(model: UniMol2, path) -> Path:
    """Save in the official layout {'model': state_dict}; loadable with weights_only=True and by unimol_tools."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, path)
    return path


def load_model(weights="random", *, seed: int = 0, device="cpu", cache_dir=None) -> UniMol2:
    """Convenience: a UniMol2 instance from "random", "random:<size>", a size name, a path, or a model."""
    if isinstance(weights, UniMol2):
        return weights.to(device).eval()
    if isinstance(weights, str) and weights.lower().startswith("random"):
        size = weights.split(":", 1)[1] if ":" in weights else "84m"
        return random_unimol2(size, seed=seed, device=device)
    if isinstance(weights, str) and weights.lower() == "tiny":
        return random_unimol2("tiny", seed=seed, device=device)
    return load_unimol2(weights, cache_dir=cache_dir, device=device)[0]


__all__ = [
    "load_unimol2", "random_unimol2", "save_checkpoint", "load_model", "read_checkpoint", "resolve_checkpoint",
    "UniMol2WeightsNotFound", "UniMol2CheckpointError", "default_cache_dir", "SIZES",
]
