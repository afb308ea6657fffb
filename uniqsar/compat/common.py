"""What MolTrain, MolPredict and UniMolRepr share: argument checks, the weights an argument set means, input
tables, and unimol_tools' metric names.

Every argument of unimol_tools 0.1.6 is in one of three groups (README, "Coming from unimol_tools"):
honoured (same meaning here), speed-only (accepted with a :class:`CompatWarning` when set: uniqsar's results never
depend on them), or not honoured (a :class:`CompatError` that says so, never silently ignored).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

#: the unimol_tools release whose argument names and meanings this package follows
UNIMOL_TOOLS_VERSION = "0.1.6"
TASKS = ("classification", "regression", "multiclass", "multilabel_classification", "multilabel_regression")
MULTILABEL = ("multilabel_classification", "multilabel_regression")
#: released Uni-Mol2 sizes as unimol_tools spells them (any case accepted), plus uniqsar's shipped weights
SIZES = ("84m", "164m", "310m", "570m", "1.1b")


class CompatError(ValueError):
    """An argument (or argument value) of unimol_tools that uniqsar cannot honour, or a user mistake."""


class CompatWarning(UserWarning):
    """An argument accepted for compatibility that changes nothing here (speed / hardware settings)."""


class Unset:
    """Default of a speed-only argument: tells "not given" from "given" (only a given one is warned about)."""

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def given(value) -> bool:
    return not isinstance(value, Unset)


def plain(value):
    return value.value if isinstance(value, Unset) else value


def warn_speed_only(owner: str, **args) -> None:
    """One CompatWarning per speed / hardware argument that was passed explicitly."""
    for name, value in args.items():
        if given(value):
            warnings.warn(f"{owner}: {name}={value!r} is accepted for unimol_tools compatibility and changes nothing "
                          "here (uniqsar's results do not depend on it)", CompatWarning, stacklevel=3)


def check_choice(owner: str, name: str, value, choices) -> None:
    if value not in choices:
        raise CompatError(f"{owner}: {name}={value!r} is not one of {', '.join(map(repr, choices))}")


def resolve_weights(owner: str, model_name: str, model_size, pretrained_model_path) -> str:
    """The uniqsar ``weights`` value for unimol_tools' model_name / model_size / pretrained_model_path, checked
    now (a released size must be a locally placed checkpoint, or downloadable): a clear error before any work."""
    if model_name == "unimolv1":
        raise CompatError(f"{owner}: model_name='unimolv1' (Uni-Mol v1) is not available in uniqsar, which implements "
                          "Uni-Mol2 only: pass model_name='unimolv2' (with model_size='84m', ... or 'default')")
    if model_name != "unimolv2":
        raise CompatError(f"{owner}: unknown model_name {model_name!r}; uniqsar has 'unimolv2'")
    if pretrained_model_path is not None:  # as in unimol_tools: a given checkpoint wins over model_size
        path = Path(str(pretrained_model_path)).expanduser()
        if not path.exists():
            raise CompatError(f"{owner}: pretrained_model_path {str(path)!r} does not exist")
        weights = str(path)
    else:
        size = str(model_size).lower()
        if size not in SIZES + ("default",):
            raise CompatError(f"{owner}: model_size={model_size!r} is not a released Uni-Mol2 size (84m, 164m, 310m, "
                              "570m, 1.1B) or 'default' (uniqsar's shipped weights)")
        weights = size
    from uniqsar.models.unimol2.pretrained import resolve_spec

    resolve_spec(weights)  # a missing released checkpoint: UniMol2WeightsNotFound says where to put it
    return weights


def check_data_type(owner: str, data_type: str) -> None:
    if data_type != "molecule":
        raise CompatError(f"{owner}: data_type={data_type!r} is not available in uniqsar (Uni-Mol2 on small "
                          "molecules only); use data_type='molecule'")


def read_input(owner: str, data, smiles_col: str, *, allow_single_smiles: bool = False,
               allow_conformers: bool = False, target_prefix: str = "TARGET") -> pd.DataFrame:
    """unimol_tools' inputs as a DataFrame: a CSV path, a SMILES (where allowed), a list / array / Series of SMILES,
    a DataFrame, or a dict of lists (``target`` becomes ``<target_prefix>`` columns, as unimol_tools does)."""
    if isinstance(data, (str, Path)):
        text = str(data)
        low = text.lower()
        if low.endswith((".sdf", ".pdb")):
            raise CompatError(f"{owner}: {Path(text).suffix} input is not available in uniqsar; give a CSV with a "
                              f"{smiles_col!r} column, a DataFrame or a list of SMILES")
        if low.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
            from uniqsar.data.dataset import read_table

            return read_table(text)
        if allow_single_smiles:
            return pd.DataFrame({smiles_col: [text]})
        raise CompatError(f"{owner}: {text!r} is not a .csv file (unimol_tools reads csv, sdf or pdb paths here)")
    if isinstance(data, pd.DataFrame):
        df = data.reset_index(drop=True)
    elif isinstance(data, pd.Series):
        df = data.reset_index(drop=True).to_frame(name=smiles_col)
    elif isinstance(data, (list, tuple, np.ndarray)):
        if len(data) == 0:
            raise CompatError(f"{owner}: no molecules given")
        df = pd.DataFrame({smiles_col: [str(s) for s in data]})
    elif isinstance(data, dict):
        d = dict(data)
        if "target" in d:
            label = np.asarray(d.pop("target"))
            if label.ndim == 1 or label.shape[1] == 1:
                d[target_prefix] = label.reshape(-1)
            else:
                for i in range(label.shape[1]):
                    d[f"{target_prefix}{i}"] = label[:, i]
        if isinstance(d.get(smiles_col), str):
            d[smiles_col] = [d[smiles_col]]
        if smiles_col not in d and {"atoms", "coordinates"} <= set(d) and allow_conformers:
            return _conformer_frame(d)
        df = pd.DataFrame(d)
    else:
        raise CompatError(f"{owner}: unknown data type {type(data).__name__}; give a CSV path, a DataFrame, a dict of "
                          "lists or a list of SMILES")
    if "atoms" in df.columns and "coordinates" in df.columns and smiles_col not in df.columns:
        if allow_conformers:
            return _conformer_frame({c: list(df[c]) for c in df.columns})
        raise CompatError(f"{owner}: custom conformers (atoms + coordinates) are not available here; uniqsar trains "
                          f"and predicts from SMILES (a {smiles_col!r} column)")
    if smiles_col not in df.columns:
        raise CompatError(f"{owner}: no {smiles_col!r} column (smiles_col); columns are: "
                          f"{', '.join(map(str, df.columns))}")
    return df


def _conformer_frame(d: dict) -> pd.DataFrame:
    atoms, coords = d["atoms"], d["coordinates"]
    if len(atoms) and not isinstance(atoms[0], (list, tuple, np.ndarray)):  # one molecule
        atoms, coords = [atoms], [coords]
    return pd.DataFrame({"atoms": list(atoms), "coordinates": list(coords)})


def target_columns(owner: str, df: pd.DataFrame, target_cols, prefix: str) -> list[str]:
    """unimol_tools' rule: target_cols (list or comma-separated text), else every column starting with prefix."""
    if target_cols is None:
        cols = [c for c in df.columns if str(c).startswith(prefix)]
        if not cols:
            raise CompatError(f"{owner}: no target column: none is named in target_cols and none starts with "
                              f"target_col_prefix={prefix!r}; columns are: {', '.join(map(str, df.columns))}")
        return cols
    if isinstance(target_cols, str):
        cols = [c.strip() for c in target_cols.split(",") if c.strip()]
    elif isinstance(target_cols, (list, tuple)):
        cols = [str(c) for c in target_cols]
    else:
        raise CompatError(f"{owner}: target_cols must be a list or a comma-separated string, not "
                          f"{type(target_cols).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise CompatError(f"{owner}: target column(s) {missing} not found; columns are: "
                          f"{', '.join(map(str, df.columns))}")
    return cols


# ----------------------------------------------------------------------------------------------- metrics
#: unimol_tools' metric names per task
METRIC_NAMES = {
    "regression": ("mse", "mae", "r2", "spearmanr", "pearsonr"),
    "classification": ("log_loss", "auc", "auroc", "auprc", "f1_score", "mcc", "acc", "precision", "recall",
                       "cohen_kappa"),
    "multiclass": ("log_loss", "acc"),
    "multilabel_classification": ("log_loss", "auc", "auroc", "auprc", "acc", "mcc"),
    "multilabel_regression": ("mse", "mae", "r2"),
}
#: what metrics='none' reports, in unimol_tools' order (its DEFAULT_METRICS; the first is the selection metric)
DEFAULT_METRICS = {
    "regression": ("mse", "mae", "r2", "spearmanr", "pearsonr"),
    "classification": ("log_loss", "auc", "f1_score", "mcc", "acc", "precision", "recall"),
    "multiclass": ("log_loss", "acc"),
    "multilabel_classification": ("log_loss", "auc", "auprc"),
    "multilabel_regression": ("mse", "mae", "r2"),
}
#: unimol_tools name -> uniqsar metric (the run's selection / report metric); the others are reported only
PIPELINE_METRIC = {"mse": "rmse", "mae": "mae", "r2": "r2", "spearmanr": "spearman", "pearsonr": "pearson",
                   "auc": "roc_auc", "auroc": "roc_auc", "auprc": "pr_auc", "log_loss": "logloss", "acc": "accuracy"}


def parse_metrics(owner: str, task: str, metrics) -> list[str]:
    """unimol_tools' ``metrics`` ('none', 'auc' or 'auc,acc'): the names, checked for the task; 'none': defaults."""
    if not isinstance(metrics, str) or metrics.strip() in ("", "none"):
        return list(DEFAULT_METRICS[task])
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    bad = [m for m in names if m not in METRIC_NAMES[task]]
    if bad:
        raise CompatError(f"{owner}: unknown metric(s) {bad} for task {task!r}; unimol_tools has "
                          f"{', '.join(METRIC_NAMES[task])}")
    return names


def compute_metrics(task: str, names: list[str], y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """unimol_tools' metric names on (n, T) targets and predictions (multiclass: (n,) labels, (n, C) probabilities).
    Rows with a missing target or prediction are left out; several targets: the mean over targets. Label metrics
    of classification tasks threshold the probability at 0.5."""
    from scipy import stats
    from sklearn import metrics as skm

    fns = {
        "mae": skm.mean_absolute_error, "mse": skm.mean_squared_error, "r2": skm.r2_score,
        "pearsonr": lambda y, p: stats.pearsonr(y, p)[0], "spearmanr": lambda y, p: stats.spearmanr(y, p)[0],
        "auc": skm.roc_auc_score, "auroc": skm.roc_auc_score, "auprc": skm.average_precision_score,
        "log_loss": lambda y, p: skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]),
        "acc": lambda y, p: skm.accuracy_score(y, p >= 0.5), "f1_score": lambda y, p: skm.f1_score(y, p >= 0.5),
        "mcc": lambda y, p: skm.matthews_corrcoef(y, p >= 0.5),
        "precision": lambda y, p: skm.precision_score(y, p >= 0.5, zero_division=0),
        "recall": lambda y, p: skm.recall_score(y, p >= 0.5, zero_division=0),
        "cohen_kappa": lambda y, p: skm.cohen_kappa_score(y, p >= 0.5),
    }
    out = {}
    if task == "multiclass":
        y = np.asarray(y_true).reshape(-1)
        P = np.asarray(y_pred, dtype=float)
        ok = ~pd.isna(y) & ~np.isnan(P).any(axis=1)
        for name in names:
            try:
                if name == "log_loss":
                    out[name] = float(skm.log_loss(y[ok].astype(int), P[ok], labels=list(range(P.shape[1]))))
                else:
                    out[name] = float(skm.accuracy_score(y[ok].astype(int), P[ok].argmax(1)))
            except ValueError:
                out[name] = float("nan")
        return out
    Y = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)
    P = np.asarray(y_pred, dtype=float).reshape(len(y_pred), -1)
    for name in names:
        vals = []
        for j in range(Y.shape[1]):
            ok = ~np.isnan(Y[:, j]) & ~np.isnan(P[:, j])
            try:
                with warnings.catch_warnings():  # too few rows for a metric: NaN, said by the value itself
                    warnings.simplefilter("ignore")
                    vals.append(float(fns[name](Y[ok, j], P[ok, j])) if ok.sum() > 1 else float("nan"))
            except ValueError:  # e.g. one class only among the scored rows
                vals.append(float("nan"))
        out[name] = float(np.nanmean(vals)) if not all(np.isnan(vals)) else float("nan")
    return out
