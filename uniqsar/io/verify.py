"""Integrity of a run directory: what fit records, what predict checks before it predicts anything.

At fit time every ensemble member gets ``files`` in ``ensemble.json`` (path relative to the member folder ->
sha256) and the manifest gets ``weights_sha256`` (featurizer alias -> sha256 of the weights file it embeds
with). ``verify_run`` recomputes both and refuses, naming the file, when anything is missing or changed:
a deleted member folder or ``model.txt``, a foreign file in its place, a replaced checkpoint, a package
upgrade that changed the default weights. Nothing is loaded before this passes.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from uniqsar.io import layout
from uniqsar.io.artifacts import RunDirError
from uniqsar.models.weights_identity import file_sha256

#: written beside the parts, not needed to predict (a resumed fit's record of what was fitted)
_NOT_PART = (layout.FINAL,)


def member_digests(folder) -> dict[str, str]:
    """sha256 of every file a member's parts consist of, by path relative to ``folder`` (sorted)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() not in _NOT_PART}


def member_parts(files: dict[str, str]) -> list[str]:
    """The part folders (``full``, ``fold0``, ...) named by a member's recorded files."""
    return sorted({f.split("/", 1)[0] for f in files if "/" in f})


def featurizer_weights_sha256(featurizer) -> str | None:
    """sha256 of the weights file a featurizer embeds with (None: it has no weights file)."""
    ident = featurizer.weights_identity()
    return ident.get("sha256") if ident and ident.get("kind") == "file" else None


_REFIT = "restore the run directory from a copy or refit"


def member_dir(run: Path, member: dict) -> Path:
    """A member's folder, refused when its recorded path leaves the run directory."""
    mdir = (run / str(member.get("path", ""))).resolve()
    if run.resolve() not in mdir.parents:
        raise RunDirError(f"{run}: member {member.get('id')!r} path {member.get('path')!r} points outside the run "
                          f"directory; {_REFIT}")
    return mdir


def verify_member(run: Path, member: dict) -> list[str]:
    """Check one member's files; returns its part folders in load order."""
    mdir = member_dir(run, member)
    name = member.get("id", member.get("path"))
    if not mdir.is_dir():
        raise RunDirError(f"{run}: the model folder of ensemble member {name!r} is missing ({mdir}); {_REFIT}")
    files = member.get("files")
    if files is None:  # runs fitted before digests were recorded: the parts must at least be there
        parts = sorted(p.name for p in mdir.iterdir() if p.is_dir() and (p / layout.LEARNER).is_file())
        if not parts:
            raise RunDirError(f"{run}: ensemble member {name!r} has no fitted model in {mdir}; {_REFIT}")
        return parts
    if not isinstance(files, dict) or not files:
        raise RunDirError(f"{run}: ensemble.json lists no files for member {name!r}; {_REFIT}")
    for rel, sha in files.items():
        path = mdir / rel
        if not path.is_file():
            raise RunDirError(f"{run}: {path} is missing (part of ensemble member {name!r}); {_REFIT}")
        if file_sha256(path) != sha:
            raise RunDirError(f"{run}: {path} is not the file this run saved (sha256 differs); {_REFIT}")
    return member_parts(files)


def verify_weights(run: Path, manifest: dict, store) -> None:
    """Every weights file the run's featurizers embed with must still be the one the fit used."""
    for alias, sha in (manifest.get("weights_sha256") or {}).items():
        try:
            feat = store.featurizer(alias)
            now = featurizer_weights_sha256(feat)
        except (OSError, ValueError, KeyError) as e:
            raise RunDirError(f"{run}: the weights of featurizer {alias!r} cannot be read ({one_line(e)}); install "
                              "the weights the run was fitted with or refit") from None
        if now is None:
            raise RunDirError(f"{run}: featurizer {alias!r} was fitted with weights {feat.params.get('weights')!r} "
                              f"(sha256 {sha[:12]}...), which no longer resolve to a weights file here; install "
                              "them or refit the run")
        if now != sha:
            where = feat.weights_identity().get("path", feat.params.get("weights"))
            raise RunDirError(f"{run}: featurizer {alias!r} weights {where} changed since the fit (sha256 {sha[:12]}... "
                              f"recorded, {str(now)[:12]}... now); restore that file or refit the run")


def one_line(exc: BaseException, limit: int = 200) -> str:
    """A short, safe description of an exception for a one-line error message. Unpickling errors get a fixed
    text: the library's own hints (e.g. to turn off ``weights_only``) must never reach a user."""
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
        return ("the file holds pickled Python objects, which uniqsar never loads (loading them could run code); "
                "do not trust this file")
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    if isinstance(exc, KeyError):
        msg = f"missing entry {msg}"
    msg = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def weights_digests(store) -> dict[str, str]:
    """Featurizer alias -> sha256 of its weights file, for every alias of ``store`` that embeds with one."""
    out = {}
    for alias in sorted(store.specs):
        sha = featurizer_weights_sha256(store.featurizer(alias))
        if sha is not None:
            out[alias] = sha
    return out
