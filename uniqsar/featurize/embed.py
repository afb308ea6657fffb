"""`uniqsar embed`: one float32 row per input row of a table, for any embedding featurizer."""
from __future__ import annotations

import numpy as np

from uniqsar.data.standardize import DEFAULT_MODE


def embed_rows(data, feat, *, smiles_col: str | None = None, n_jobs: int = 1, cache_dir=None,
               use_cache: bool = True, standardize: str = DEFAULT_MODE) -> tuple[np.ndarray, dict]:
    """Embed every row of a table (path or DataFrame) with featurizer ``feat``, in input order; NaN rows for
    invalid SMILES or failed molecules. Returns (X, summary) with the weights identity of ``feat``."""
    import pandas as pd

    from uniqsar.data.dataset import find_smiles_column, read_table, standardize_column
    from uniqsar.featurize.cache import FeatureCache

    df = data if isinstance(data, pd.DataFrame) else read_table(data)
    col = find_smiles_column(df, smiles_col)
    rows = standardize_column(df, col, n_jobs=n_jobs, mode=standardize)
    valid = (rows["error"] == "").to_numpy()
    canonical = rows["canonical"][valid].tolist()
    ident = feat.weights_identity()
    dim = feat.dim()
    X = np.full((len(df), dim), np.nan, dtype=np.float32)
    if canonical:
        X[valid] = FeatureCache(cache_dir, enabled=use_cache).get(feat, canonical, n_jobs=n_jobs)
    failed = int(np.isnan(X).all(axis=1).sum()) if dim else len(df)
    summary = {"n_rows": int(len(df)), "n_invalid_smiles": int((~valid).sum()), "n_failed": failed, "dim": int(dim),
               "smiles_col": col, "weights": ident, "cache_id": feat.cache_id}
    return X, summary
