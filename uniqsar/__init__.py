"""uniqsar: AutoML for molecular property prediction (QSAR)."""
import os as _os

__version__ = "0.1.0"

# OpenMP threads that spin while idle (GNU default) make LightGBM 10-100x slower as soon as
# the cores are shared (parallel trials, other jobs). Passive waiting costs ~nothing when they
# are not; measured in benchmarks/omp/omp_wait_policy.py. Users can still override it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["AutoQSAR", "load_run", "__version__"]


def __getattr__(name):  # lazy: `import uniqsar` stays cheap for the CLI's --help
    if name == "AutoQSAR":
        from uniqsar.api import AutoQSAR

        return AutoQSAR
    if name == "load_run":
        from uniqsar.api import load_run

        return load_run
    raise AttributeError(name)
