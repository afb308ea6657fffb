"""Small shared helpers: logging to stderr, durations, thread budgets, time limits, the source commit."""
from __future__ import annotations

import os
import re
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar

_T0 = time.time()
QUIET = False


def log(msg: str) -> None:
    if not QUIET:
        print(f"[uniqsar {time.time() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def parse_duration(text) -> float | None:
    """'90', '90s', '10m', '1h30m', '2.5h' -> seconds; None/'' -> None."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(h|m|s)", s)
    if not parts or "".join(f"{a}{b}" for a, b in parts) != s.replace(" ", ""):
        raise ValueError(f"cannot read duration {text!r}; use e.g. 90s, 10m, 1h30m")
    unit = {"h": 3600, "m": 60, "s": 1}
    return sum(float(a) * unit[b] for a, b in parts)


def source_commit() -> str | None:
    """Short git commit of the checkout this uniqsar package is imported from, with "+dirty" when its
    ``uniqsar/`` folder has uncommitted changes; None when it is not a git checkout (an installed wheel)."""
    import subprocess
    from pathlib import Path

    pkg = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=pkg, capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != pkg.parent:
            return None  # a repository that merely contains an installed copy (e.g. a venv inside a project)
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--", ".") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def threads_per_job(n_jobs: int) -> int:
    return max(1, n_cores() // max(1, n_jobs))


_DEADLINE: ContextVar[float | None] = ContextVar("uniqsar_deadline", default=None)


@contextmanager
def time_limit(deadline: float | None):
    """Within the block, fits that support it (the torch trainer, LightGBM) stop early so as to
    end by ``deadline`` (a ``time.time()`` value; None: no limit) and keep what they have."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    return _DEADLINE.get()
