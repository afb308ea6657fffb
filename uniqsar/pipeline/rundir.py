"""The run directory's life cycle around a fit: created empty, ``running`` while the fit works, ``complete`` at
the end, or ``failed`` / ``interrupted`` (with the error) when the fit stops early, so that rerunning the same
command works: a failed attempt with the same data, recipe and seed continues from its finished work (as
``--resume`` would), one with anything else is cleared and started over."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from uniqsar.io import layout
from uniqsar.io.artifacts import FORMAT_VERSION, read_json, write_json
from uniqsar.util import log

#: statuses a plain rerun may take over (a ``running`` one may still be alive: only --resume takes it)
RERUNNABLE = ("failed", "interrupted")
#: what a fit writes at the top of its directory (cleared when a failed attempt is started over)
RUN_ENTRIES = layout.RUN_ENTRIES


def _manifest(out: Path) -> dict | None:
    try:
        m = read_json(out / layout.MANIFEST)
    except ValueError:  # missing or damaged
        return None
    return m if isinstance(m, dict) else None


def prepare_out(out: Path, resume: bool) -> dict | None:
    """Make ``out`` ready for a fit; returns the manifest of a failed attempt found there (None otherwise)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; choose a folder")
    if out.exists() and any(out.iterdir()) and not resume:
        previous = _manifest(out)
        if previous is not None and previous.get("status") in RERUNNABLE:
            return previous
        status = f" (it holds a run with status {previous.get('status')!r})" if previous else ""
        raise FileExistsError(f"output directory {out} exists and is not empty{status}; choose a new --out or pass "
                              "--resume")
    out.mkdir(parents=True, exist_ok=True)
    return None


def continue_or_restart(out: Path, previous: dict | None, fingerprint: str) -> bool:
    """After a failed attempt in ``out``: True (resume) when it fitted the same thing, else clear it."""
    if previous is None:
        return False
    why = f"the previous fit in {out} {previous.get('status')} ({previous.get('error', 'no reason recorded')})"
    if previous.get("fingerprint") == fingerprint:
        log(f"{why}; continuing from its finished work")
        return True
    log(f"{why}; it fitted other data, recipe or seed: starting over")
    for name in RUN_ENTRIES:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in out.glob(f"{layout.JOURNAL}*"):
        p.unlink()
    return False


def mark_failed(out: Path, exc: BaseException) -> None:
    """Record in the manifest that the fit in ``out`` stopped with ``exc`` (never raises)."""
    from uniqsar.io.verify import one_line

    try:
        m = _manifest(out) or {"format_version": FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if m.get("status") == "complete":
            return
        m.update(status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", error=one_line(exc),
                 stopped=time.strftime("%Y-%m-%dT%H:%M:%S"))
        write_json(out / layout.MANIFEST, m)
    except Exception:  # the original error matters more than this record
        pass
