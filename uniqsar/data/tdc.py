"""TDC ADMET benchmark group: tasks, data loading, the official split and scoring.

Protocol (PyTDC ``admet_group``; see ``shared/reference/tdc.md``):

* 22 datasets, each with a fixed scaffold-split ``test.csv`` (~20%) and a ``train_val.csv``
  (columns ``Drug_ID, Drug, Y``). Scores are always computed on the fixed test set.
* For each seed in 1..5, ``get_train_valid_split(seed, name, 'default')`` scaffold-splits
  train_val with fractions [0.875, 0.125, 0] (:func:`train_valid_split` re-implements it exactly).
* Each seed's test score is ``round(metric, 3)``; ``evaluate_many`` needs >= 5 seeds and reports
  ``[round(mean, 3), round(np.std, 3)]`` with the population std (ddof=0) (:func:`summarize`).
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.metrics import BINARY, REGRESSION, get_metric, score

ENV_VAR = "UNIQSAR_TDC_DIR"
SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)
SPLIT_FRAC: tuple[float, float, float] = (0.875, 0.125, 0.0)
COLUMNS: tuple[str, ...] = ("Drug_ID", "Drug", "Y")


@dataclass(frozen=True)
class TaskInfo:
    """Metadata of one ADMET-group task.

    ``metric`` is the official metric as a :mod:`uniqsar.metrics` name; ``log_scale`` is
    MapLight's flag (regress log10(y + 1)); sizes are the row counts of the group's CSVs.
    """

    name: str
    task: str  # "regression" or "binary"
    metric: str  # "mae", "spearman", "roc_auc" or "pr_auc"
    n_train_val: int
    n_test: int
    log_scale: bool = False

    @property
    def greater_is_better(self) -> bool:
        return get_metric(self.metric).greater_is_better


def _t(name: str, task: str, metric: str, n_tv: int, n_test: int, log: bool = False) -> TaskInfo:
    return TaskInfo(name, task, metric, n_tv, n_test, log)


R, B = REGRESSION, BINARY
#: The 22 tasks in leaderboard order (tdc/metadata.py ``admet_metrics``).
TASKS: dict[str, TaskInfo] = {
    t.name: t
    for t in (
        _t("caco2_wang", R, "mae", 728, 182),
        _t("hia_hou", B, "roc_auc", 461, 117),
        _t("pgp_broccatelli", B, "roc_auc", 973, 245),
        _t("bioavailability_ma", B, "roc_auc", 512, 128),
        _t("lipophilicity_astrazeneca", R, "mae", 3360, 840),
        _t("solubility_aqsoldb", R, "mae", 7985, 1997),  # tdc.md's [QA] count says 1995
        _t("bbb_martins", B, "roc_auc", 1624, 406),
        _t("ppbr_az", R, "mae", 2231, 559),
        _t("vdss_lombardo", R, "spearman", 904, 226, log=True),
        _t("cyp2c9_veith", B, "pr_auc", 9673, 2419),
        _t("cyp2d6_veith", B, "pr_auc", 10504, 2626),
        _t("cyp3a4_veith", B, "pr_auc", 9861, 2467),
        _t("cyp2c9_substrate_carbonmangels", B, "pr_auc", 534, 135),
        _t("cyp2d6_substrate_carbonmangels", B, "pr_auc", 532, 135),
        _t("cyp3a4_substrate_carbonmangels", B, "roc_auc", 535, 135),  # AUROC, not AUPRC
        _t("half_life_obach", R, "spearman", 532, 135, log=True),
        _t("clearance_hepatocyte_az", R, "spearman", 970, 243, log=True),
        _t("clearance_microsome_az", R, "spearman", 881, 221, log=True),
        _t("ld50_zhu", R, "mae", 5907, 1478),
        _t("herg", B, "roc_auc", 523, 132),
        _t("ames", B, "roc_auc", 5821, 1457),
        _t("dili", B, "roc_auc", 379, 96),
    )
}
del R, B

#: Published 5-seed test anchors (mean, std) from tdc.md §3. Direction follows the task
#: metric: MAE is lower-is-better, the others higher-is-better. "leaderboard_best" is the
#: tdcommons.ai [LB26] best, except bioavailability_ma (that page is corrupted; TDC2 value).
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "caco2_wang": {"maplight": (0.276, 0.005), "maplight_gnn": (0.287, 0.005),
                   "chemprop_rdkit": (0.330, 0.024), "leaderboard_best": (0.256, 0.006)},
    "hia_hou": {"maplight": (0.986, 0.000), "maplight_gnn": (0.989, 0.001),
                "chemprop_rdkit": (0.981, 0.002), "leaderboard_best": (0.993, 0.005)},
    "pgp_broccatelli": {"maplight": (0.930, 0.002), "maplight_gnn": (0.938, 0.002),
                        "chemprop_rdkit": (0.886, 0.016), "leaderboard_best": (0.942, 0.002)},
    "bioavailability_ma": {"maplight": (0.730, 0.010), "maplight_gnn": (0.742, 0.010),
                           "chemprop_rdkit": (0.667, 0.068), "leaderboard_best": (0.753, 0.000)},
    "lipophilicity_astrazeneca": {"maplight": (0.539, 0.002), "maplight_gnn": (0.525, 0.003),
                                  "chemprop_rdkit": (0.467, 0.006),
                                  "leaderboard_best": (0.456, 0.008)},
    "solubility_aqsoldb": {"maplight": (0.792, 0.002), "maplight_gnn": (0.789, 0.003),
                           "chemprop_rdkit": (0.761, 0.025), "leaderboard_best": (0.741, 0.013)},
    "bbb_martins": {"maplight": (0.916, 0.001), "maplight_gnn": (0.913, 0.001),
                    "chemprop_rdkit": (0.869, 0.027), "leaderboard_best": (0.924, 0.003)},
    "ppbr_az": {"maplight": (7.660, 0.058), "maplight_gnn": (7.526, 0.106),
                "chemprop_rdkit": (8.288, 0.173), "leaderboard_best": (7.440, 0.024)},
    "vdss_lombardo": {"maplight": (0.707, 0.009), "maplight_gnn": (0.713, 0.007),
                      "chemprop_rdkit": (0.389, 0.075), "leaderboard_best": (0.713, 0.007)},
    "cyp2c9_veith": {"maplight": (0.783, 0.002), "maplight_gnn": (0.859, 0.001),
                     "chemprop_rdkit": (0.777, 0.003), "leaderboard_best": (0.859, 0.001)},
    "cyp2d6_veith": {"maplight": (0.723, 0.003), "maplight_gnn": (0.790, 0.001),
                     "chemprop_rdkit": (0.673, 0.007), "leaderboard_best": (0.790, 0.001)},
    "cyp3a4_veith": {"maplight": (0.881, 0.001), "maplight_gnn": (0.916, 0.000),
                     "chemprop_rdkit": (0.876, 0.003), "leaderboard_best": (0.916, 0.000)},
    "cyp2c9_substrate_carbonmangels": {"maplight": (0.415, 0.008), "maplight_gnn": (0.437, 0.008),
                                       "chemprop_rdkit": (0.400, 0.008),
                                       "leaderboard_best": (0.474, 0.025)},
    "cyp2d6_substrate_carbonmangels": {"maplight": (0.713, 0.009), "maplight_gnn": (0.720, 0.002),
                                       "chemprop_rdkit": (0.686, 0.031),
                                       "leaderboard_best": (0.736, 0.024)},
    "cyp3a4_substrate_carbonmangels": {"maplight": (0.650, 0.006), "maplight_gnn": (0.647, 0.008),
                                       "chemprop_rdkit": (0.619, 0.030),
                                       "leaderboard_best": (0.667, 0.019)},
    "half_life_obach": {"maplight": (0.562, 0.008), "maplight_gnn": (0.557, 0.034),
                        "chemprop_rdkit": (0.239, 0.019), "leaderboard_best": (0.576, 0.025)},
    "clearance_hepatocyte_az": {"maplight": (0.466, 0.012), "maplight_gnn": (0.498, 0.009),
                                "chemprop_rdkit": (0.430, 0.021),
                                "leaderboard_best": (0.536, 0.020)},
    "clearance_microsome_az": {"maplight": (0.626, 0.008), "maplight_gnn": (0.630, 0.010),
                               "chemprop_rdkit": (0.599, 0.025),
                               "leaderboard_best": (0.630, 0.010)},
    "ld50_zhu": {"maplight": (0.621, 0.003), "maplight_gnn": (0.633, 0.003),
                 "chemprop_rdkit": (0.625, 0.022), "leaderboard_best": (0.552, 0.009)},
    "herg": {"maplight": (0.871, 0.004), "maplight_gnn": (0.880, 0.002),
             "chemprop_rdkit": (0.840, 0.007), "leaderboard_best": (0.880, 0.002)},
    "ames": {"maplight": (0.868, 0.002), "maplight_gnn": (0.869, 0.002),
             "chemprop_rdkit": (0.850, 0.004), "leaderboard_best": (0.871, 0.002)},
    "dili": {"maplight": (0.887, 0.006), "maplight_gnn": (0.917, 0.005),
             "chemprop_rdkit": (0.887, 0.011), "leaderboard_best": (0.956, 0.006)},
}

#: Method holding PUBLISHED[task]["leaderboard_best"]. tdc.md §4: the MiniMol, CFA, ZairaChem
#: and Gradient Boost tops are unaudited or suspect; MapLight(+GNN) is the reproducible SOTA.
LEADERBOARD_BEST_METHOD: dict[str, str] = {
    "caco2_wang": "CaliciBoost", "hia_hou": "MiniMol", "pgp_broccatelli": "MiniMol",
    "bioavailability_ma": "HistGB (DeepMol) [TDC2]", "lipophilicity_astrazeneca": "MiniMol",
    "solubility_aqsoldb": "MiniMol", "bbb_martins": "MiniMol", "ppbr_az": "Gradient Boost",
    "vdss_lombardo": "MapLight+GNN", "cyp2c9_veith": "MapLight+GNN",
    "cyp2d6_veith": "MapLight+GNN", "cyp3a4_veith": "MapLight+GNN",
    "cyp2c9_substrate_carbonmangels": "MiniMol", "cyp2d6_substrate_carbonmangels": "ContextPred",
    "cyp3a4_substrate_carbonmangels": "CFA", "half_life_obach": "CFA",
    "clearance_hepatocyte_az": "CFA", "clearance_microsome_az": "MapLight+GNN",
    "ld50_zhu": "BaseBoosting", "herg": "MapLight+GNN", "ames": "ZairaChem", "dili": "MiniMol",
}


# --------------------------------------------------------------------------- names & files
def task_info(name: str) -> TaskInfo:
    """Metadata of a task (case-insensitive name, e.g. 'Caco2_Wang')."""
    key = name.strip().lower()
    if key not in TASKS:
        raise KeyError(f"unknown TDC ADMET task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[key]


def _holds_tasks(path: Path) -> bool:
    return any((path / t / "train_val.csv").is_file() for t in TASKS)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Directory holding the ``<task>/{train_val,test}.csv`` folders.

    Uses ``data_dir`` if given, else ``$UNIQSAR_TDC_DIR``. Accepts a directory that holds the
    task folders directly, or PyTDC's cache layout ``<path>/admet_group/<task>/``.
    """
    source = "data_dir argument" if data_dir is not None else f"${ENV_VAR}"
    base = data_dir if data_dir is not None else os.environ.get(ENV_VAR)
    if not base:
        raise FileNotFoundError(
            f"no TDC ADMET data directory: pass data_dir=... or set ${ENV_VAR} to a directory "
            "holding <task>/train_val.csv folders (or PyTDC's <path>/admet_group/<task>/)")
    root = Path(base).expanduser()
    tried = [root, root / "admet_group"]
    for cand in tried:
        if _holds_tasks(cand):
            return cand.resolve()
    raise FileNotFoundError(
        f"no TDC ADMET task folders (<task>/train_val.csv) found from {source} {str(base)!r}; "
        f"tried: {', '.join(str(p) for p in tried)}")


def load_task(name: str, data_dir: str | os.PathLike | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train_val, test)`` DataFrames (columns Drug_ID, Drug, Y), as PyTDC's group serves them."""
    info = task_info(name)
    folder = resolve_data_dir(data_dir) / info.name
    frames = []
    for part in ("train_val", "test"):
        path = folder / f"{part}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (task {info.name!r})")
        df = pd.read_csv(path)
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path} lacks columns {missing}")
        frames.append(df)
    return frames[0], frames[1]


# --------------------------------------------------------------------------- official split
@lru_cache(maxsize=8)
def _scaffold_groups(smiles: tuple[str, ...]) -> tuple[list[set[int]], int]:
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")
    groups: dict[str, set[int]] = {}
    errors = 0
    for i, smi in enumerate(smiles):
        try:
            scaf = MurckoScaffold.MurckoScaffoldSmiles(
                mol=Chem.MolFromSmiles(smi), includeChirality=False)
        except Exception:  # unparsable SMILES: dropped from train and valid, as in PyTDC
            errors += 1
            continue
        groups.setdefault(scaf, set()).add(i)
    return list(groups.values()), errors


def scaffold_groups(smiles) -> tuple[list[set[int]], int]:
    """Bemis-Murcko scaffold groups (first-appearance order) and the number of RDKit errors.

    Each group is a Python ``set`` of row indices filled in row order, exactly as PyTDC does:
    its CPython iteration order is the order rows are emitted in. Cached for reuse across seeds;
    do not mutate the returned sets.
    """
    return _scaffold_groups(tuple(str(s) for s in smiles))


def train_valid_split(train_val: pd.DataFrame, seed: int, smiles_col: str = "Drug"
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Positional ``(train_idx, valid_idx)`` into ``train_val``, in PyTDC's row order.

    Re-implements ``tdc.utils.split.create_scaffold_split(train_val, seed, [0.875, 0.125, 0])``:

    1. group rows by ``MurckoScaffoldSmiles(mol, includeChirality=False)`` into Python sets,
       dict-ordered by first appearance; rows that raise are dropped (errors);
    2. with n = rows - errors: n_train = int(n * 0.875), n_valid = int(n * 0.125),
       n_test = n - n_train - n_valid;
    3. "big" groups (size > n_valid/2 or > n_test/2) vs "small"; ``rng = random.Random(seed)``
       shuffles big, then small; order is big + small;
    4. walk the groups: a group goes to train if it still fits in n_train, else to valid.

    Valid therefore takes everything that did not fit and can exceed 12.5% (e.g. ames seed 2).
    ``train_val.iloc[train_idx].reset_index(drop=True)`` equals PyTDC's ``train`` frame.
    """
    groups, errors = scaffold_groups(train_val[smiles_col].tolist())
    n = len(train_val) - errors
    n_train = int(n * SPLIT_FRAC[0])
    n_valid = int(n * SPLIT_FRAC[1])
    n_test = n - n_train - n_valid
    big = [g for g in groups if len(g) > n_valid / 2 or len(g) > n_test / 2]
    small = [g for g in groups if not (len(g) > n_valid / 2 or len(g) > n_test / 2)]
    rng = random.Random(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    train: list[int] = []
    valid: list[int] = []
    for group in big + small:
        if len(train) + len(group) <= n_train:
            train += group  # CPython set-iteration order, as PyTDC's `train += index_set`
        else:
            valid += group
    return np.asarray(train, dtype=np.int64), np.asarray(valid, dtype=np.int64)


def seed_splits(name: str, data_dir: str | os.PathLike | None = None, seeds=SEEDS
                ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{seed: (train_idx, valid_idx)}`` for one task; scaffolds are computed once."""
    train_val, _ = load_task(name, data_dir)
    return {s: train_valid_split(train_val, s) for s in seeds}


# --------------------------------------------------------------------------- scoring
def round3(value: float) -> float:
    """Round to 3 decimals the way PyTDC's ``round(np.float64, 3)`` does.

    That is NumPy's rounding (scale by 1000, round half to even), not Python's correctly
    rounded ``round(float)``: they differ on near-ties, e.g. mean(0.271, 0.274) = 0.2725 gives
    0.272 with NumPy but 0.273 with Python floats.
    """
    return float(np.round(np.float64(value), 3))


def evaluate(task: str, y_true, y_pred) -> float:
    """Official per-seed test score: the task's metric rounded to 3 decimals.

    Stricter than :func:`uniqsar.metrics.score`: NaN in ``y_pred`` raises instead of being
    dropped, so a model cannot improve its score by abstaining.
    """
    info = task_info(task)
    yt = np.asarray(y_true, dtype=float).reshape(-1)
    yp = np.asarray(y_pred, dtype=float).reshape(-1)
    if yt.shape != yp.shape:
        raise ValueError(f"{info.name}: {yt.size} labels but {yp.size} predictions")
    if np.isnan(yp).any() or np.isnan(yt).any():
        raise ValueError(f"{info.name}: NaN in labels or predictions")
    value = score(info.metric, yt, yp)
    if math.isnan(value):
        raise ValueError(f"{info.name}: {info.metric} is undefined on these labels")
    return round3(value)


def summarize(scores, allow_fewer: bool = False) -> tuple[float, float]:
    """``(round(mean, 3), round(std, 3))`` of per-seed scores, std with ddof=0 (``np.std``).

    Rounding is :func:`round3` (NumPy semantics), as ``evaluate_many`` applies it to NumPy scalars.

    Like PyTDC's ``evaluate_many``, at least 5 seeds are required unless ``allow_fewer``.
    """
    values = np.asarray(list(scores), dtype=float)
    if len(values) < len(SEEDS) and not allow_fewer:
        raise ValueError(f"need >= {len(SEEDS)} seed scores, got {len(values)}")
    if len(values) == 0:
        raise ValueError("no scores to summarize")
    return round3(np.mean(values)), round3(np.std(values))
