"""Run directory I/O: plain JSON/CSV/TOML plus each learner's native model files.

Loading never unpickles: JSON is parsed, learners are rebuilt from registry keys that must
already exist in this installation, and their state comes from native formats.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from uniqsar.io.layout import MANIFEST

FORMAT_VERSION = 1


class RunDirError(ValueError):
    pass


def write_json(path: Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2, default=_default, allow_nan=True)
        fh.write("\n")
    os.replace(tmp, path)


def read_json(path: Path):
    """Parse a JSON file; a damaged one is a :class:`RunDirError` naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing; restore it from a copy or refit the run") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise RunDirError(f"{path} is damaged: not valid JSON{where}; restore it from a copy or refit the run") from None
    except IsADirectoryError:
        raise RunDirError(f"{path} is a folder, not a JSON file; restore it from a copy or refit the run") from None


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def to_jsonable(obj):
    """``obj`` as it reads back from :func:`write_json` (numpy scalars -> Python, tuples -> lists, ...)."""
    return json.loads(json.dumps(obj, default=_default, allow_nan=True))


def package_versions() -> dict[str, str]:
    from importlib import metadata

    import uniqsar

    out = {"uniqsar": uniqsar.__version__, "python": platform.python_version()}
    for name in ("numpy", "pandas", "scikit-learn", "rdkit", "lightgbm", "optuna", "torch", "catboost"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def check_run_dir(path) -> Path:
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.exists():
        raise RunDirError(f"{path} is not a uniqsar run directory (no {MANIFEST})")
    m = read_json(manifest)
    if not isinstance(m, dict):
        raise RunDirError(f"{manifest} is damaged (not a JSON object); restore it from a copy or refit the run")
    version = m.get("format_version")
    if version != FORMAT_VERSION:
        raise RunDirError(f"{path}: run format version {version} is not supported by this uniqsar "
                          f"(expects {FORMAT_VERSION}); refit or use a matching uniqsar version")
    if m.get("status") != "complete":
        raise RunDirError(f"{path}: the run did not finish (status {m.get('status')!r}); resume or refit it")
    bad = [k for k, kind in (("targets", dict), ("featurizers", dict)) if not isinstance(m.get(k), kind)]
    if bad or not all(isinstance(t, dict) and "dir" in t and "task" in t for t in m["targets"].values()):
        raise RunDirError(f"{manifest} is damaged (entry {(bad or ['targets'])[0]!r} is missing or malformed); "
                          "restore it from a copy or refit the run")
    return path
