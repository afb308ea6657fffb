"""uniqsar: AutoML for molecular property prediction (QSAR)."""
__version__ = "0.1.0"

__all__ = ["AutoQSAR", "load_run", "__version__"]


def __getattr__(name):  # lazy: `import uniqsar` stays cheap for the CLI's --help
    if name == "AutoQSAR":
        from uniqsar.api import AutoQSAR

        return AutoQSAR
    if name == "load_run":
        from uniqsar.api import load_run

        return load_run
    raise AttributeError(name)
