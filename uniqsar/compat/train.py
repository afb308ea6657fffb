"""``MolTrain``: unimol_tools 0.1.6's training API, fine-tuning uniqsar's Uni-Mol2 through the uniqsar pipeline.

``MolTrain(task=..., model_name='unimolv2', model_size=...).fit(data)`` runs one pipeline fit with a recipe of a
single ``unimol2`` learner whose parameters are the unimol_tools arguments (epochs, learning_rate, batch_size,
early_stopping, max_norm, freeze_layers, ...): ``kfold`` cross-validation folds whose out-of-fold predictions are
``cv_pred``, then one model per fold, averaged at prediction time (as unimol_tools' MolPredict averages its fold
models). ``save_path`` is a uniqsar run directory (manifest, recipe, state_dicts, OOF table; no pickle) plus
``compat.json``, which tells MolPredict the unimol_tools task and target columns.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from uniqsar.io import layout

from .common import (MULTILABEL, PIPELINE_METRIC, TASKS, UNIMOL_TOOLS_VERSION, CompatError, CompatWarning, Unset,
                     check_choice, check_data_type, compute_metrics, parse_metrics, read_input, resolve_weights,
                     target_columns, warn_speed_only)

OWNER = "MolTrain"
COMPAT_FILE = "compat.json"
COMPAT_FORMAT = "uniqsar-compat-v1"
#: unimol_tools task -> the pipeline's task of each target
PIPELINE_TASK = {"regression": "regression", "classification": "binary", "multiclass": "multiclass",
                 "multilabel_regression": "regression", "multilabel_classification": "binary"}
NORMALIZE = ("auto", "minmax", "standard", "robust", "log1p", "none")
SPLITS = ("random", "scaffold", "group", "stratified", "select")
#: unimol_tools' warmup_ratio (its default.yaml)
WARMUP = 0.03


class MolTrain:
    def __init__(self, cfg=None, task="classification", data_type="molecule", epochs=10, learning_rate=1e-4,
                 batch_size=16, early_stopping=5, metrics="none", split="random", split_group_col="scaffold", kfold=5,
                 save_path="./exp", remove_hs=False, smiles_col="SMILES", target_cols=None, target_col_prefix="TARGET",
                 target_anomaly_check=False, smiles_check="filter", target_normalize="auto", max_norm=5.0,
                 use_cuda=True, use_amp=Unset(True), use_ddp=Unset(False), use_gpu=Unset("all"), freeze_layers=None,
                 freeze_layers_reversed=False, load_model_dir=None, model_name="unimolv1", model_size="84m",
                 pretrained_model_path=None, pretrained_dict_path=None, conf_cache_level=Unset(1), seed=42, **params):
        if cfg is not None:  # an omegaconf DictConfig or any mapping of these arguments
            values = dict(cfg)
            unknown = set(values) - set(_ARGS)
            if unknown:
                raise CompatError(f"{OWNER}: cfg has unknown key(s) {sorted(unknown)}")
            loc = locals()
            return self.__init__(**{k: values.get(k, loc[k]) for k in _ARGS}, **params)
        if params:
            raise CompatError(f"{OWNER}: unknown argument(s) {sorted(params)}; unimol_tools 0.1.6 silently ignores "
                              "arguments it does not know, uniqsar does not (its arguments: README, 'Coming from "
                              "unimol_tools')")
        check_choice(OWNER, "task", task, TASKS)
        check_data_type(OWNER, data_type)
        warn_speed_only(OWNER, use_amp=use_amp, use_ddp=use_ddp, use_gpu=use_gpu, conf_cache_level=conf_cache_level)
        if load_model_dir is not None:
            raise CompatError(f"{OWNER}: load_model_dir (continue from an earlier MolTrain's models) is not available "
                              "here; start from a checkpoint with pretrained_model_path instead")
        if pretrained_dict_path is not None:
            warnings.warn(f"{OWNER}: pretrained_dict_path is a Uni-Mol v1 token dictionary; Uni-Mol2 does not use one "
                          "(neither does unimol_tools for model_name='unimolv2')", CompatWarning, stacklevel=2)
        check_choice(OWNER, "split", split, SPLITS)
        check_choice(OWNER, "target_normalize", target_normalize, NORMALIZE)
        check_choice(OWNER, "smiles_check", smiles_check, ("filter", "none"))
        check_choice(OWNER, "target_anomaly_check", target_anomaly_check, (False, True, "filter", "none"))
        for name, v, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("kfold", kfold, 1),
                            ("early_stopping", early_stopping, 0)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise CompatError(f"{OWNER}: {name} must be an integer >= {lo}, not {v!r}")
        if not float(learning_rate) > 0 or not float(max_norm) > 0:
            raise CompatError(f"{OWNER}: learning_rate and max_norm must be > 0")
        if split == "select":
            raise CompatError(f"{OWNER}: split='select' (folds given in a column) is not available in uniqsar; use "
                              "split='scaffold' or 'random'")
        if split == "group" and split_group_col != "scaffold":
            raise CompatError(f"{OWNER}: split='group' on column {split_group_col!r} is not available in uniqsar "
                              "(its folds group molecules by scaffold: split='scaffold')")
        if isinstance(freeze_layers, str):
            freeze_layers = [p.strip() for p in freeze_layers.split(",") if p.strip()]
        if freeze_layers is not None and not isinstance(freeze_layers, (list, tuple)):
            raise CompatError(f"{OWNER}: freeze_layers must be a list of parameter-name prefixes or a comma-separated "
                              "string, e.g. ['encoder', 'embed_tokens']")
        self.weights = resolve_weights(OWNER, model_name, model_size, pretrained_model_path)
        self.task = task
        self.save_path = save_path
        self.metrics = parse_metrics(OWNER, task, metrics)
        self.seed = int(seed)
        self.config = {
            "task": task, "data_type": data_type, "epochs": int(epochs), "learning_rate": float(learning_rate),
            "batch_size": int(batch_size), "early_stopping": int(early_stopping), "metrics": metrics,
            "split": split, "split_group_col": split_group_col, "kfold": int(kfold), "remove_hs": remove_hs,
            "smiles_col": smiles_col, "target_cols": target_cols, "target_col_prefix": target_col_prefix,
            "target_anomaly_check": target_anomaly_check, "smiles_check": smiles_check,
            "target_normalize": target_normalize, "max_norm": float(max_norm), "use_cuda": bool(use_cuda),
            "freeze_layers": list(freeze_layers) if freeze_layers else None,
            "freeze_layers_reversed": bool(freeze_layers_reversed), "model_name": model_name,
            "model_size": model_size, "pretrained_model_path": pretrained_model_path, "seed": self.seed,
        }
        self.cv_pred = None
        self.run_dir = None

    # ------------------------------------------------------------------------------------------- fit
    def fit(self, data):
        """Fine-tune on ``data`` (a CSV path, a DataFrame or a dict of lists with ``smiles_col`` and the target
        columns); writes the run to ``save_path``. Returns None, as unimol_tools does (``cv_pred``: the
        out-of-fold predictions of the input rows, NaN where a row was left out)."""
        from uniqsar.pipeline.fit import FitOptions, fit as pipeline_fit

        c = self.config
        df = read_input(OWNER, data, c["smiles_col"], target_prefix=c["target_col_prefix"])
        cols = target_columns(OWNER, df, c["target_cols"], c["target_col_prefix"])
        task = self.task
        if task not in MULTILABEL and len(cols) != 1:
            raise CompatError(f"{OWNER}: task {task!r} takes one target column, found {len(cols)} ({cols}); use "
                              f"task='multilabel_{'regression' if task == 'regression' else 'classification'}' for "
                              "several")
        if task == "multiclass":
            _multiclass_or_pending()
            self._multiclass_cnt = _class_count(df[cols[0]])
        df = self._anomaly_filter(df, cols)
        split = self._split(cols)
        recipe_path = self._recipe(split)
        out = Path(self.save_path)
        _clear_previous(out)
        opts = FitOptions(targets=tuple(cols), smiles_col=c["smiles_col"], task=PIPELINE_TASK[task],
                          preset=str(recipe_path), seed=self.seed, metric=self._pipeline_metric(cols),
                          target_transform={"auto": "auto", "log1p": "log10p1"}.get(c["target_normalize"], "none"),
                          # multilabel: one network for all targets, its loss masked where a label is missing
                          joint_targets=task in MULTILABEL)
        try:
            run_dir = pipeline_fit(df, out, opts)
        finally:
            shutil.rmtree(recipe_path.parent, ignore_errors=True)
        self.run_dir = Path(run_dir)
        self.cv_pred, y_true = self._oof(df, cols)
        cv_metrics = compute_metrics(task, self.metrics, y_true, self.cv_pred)
        from uniqsar.io.artifacts import write_json
        from uniqsar.util import log

        log(f"MolTrain: out-of-fold metrics {', '.join(f'{k} {v:.4f}' for k, v in cv_metrics.items())}")
        write_json(self.run_dir / COMPAT_FILE, {
            "format": COMPAT_FORMAT, "unimol_tools_version": UNIMOL_TOOLS_VERSION, "task": task,
            "target_cols": cols, "smiles_col": c["smiles_col"], "metrics": self.metrics, "cv_metrics": cv_metrics,
            "multiclass_cnt": self._multiclass_cnt, "arguments": c})
        return None

    _multiclass_cnt = None

    def _anomaly_filter(self, df: pd.DataFrame, cols: list) -> pd.DataFrame:
        """target_anomaly_check: regression rows outside mean +- 3 sd of the target left out (unimol_tools' rule)."""
        if self.task != "regression" or self.config["target_anomaly_check"] in (False, "none"):
            return df
        y = pd.to_numeric(df[cols[0]], errors="coerce")
        keep = (y > y.mean() - 3 * y.std()) & (y < y.mean() + 3 * y.std())
        from uniqsar.util import log

        log(f"MolTrain: target_anomaly_check: {len(df)} -> {int(keep.sum())} rows (3 sigma)")
        return df[keep].reset_index(drop=True)

    def _split(self, cols: list) -> str:
        split, group = self.config["split"], self.config["split_group_col"]
        if split == "stratified":
            if self.task not in ("classification", "multiclass") or group not in cols:
                raise CompatError(f"{OWNER}: split='stratified' is available for classification tasks with "
                                  "split_group_col set to the target column (uniqsar stratifies its folds by class); "
                                  "use split='random' or 'scaffold'")
            return "random"
        return "random" if split == "random" else "scaffold"

    def _recipe(self, split: str) -> Path:
        from uniqsar.config import dump_toml

        c = self.config
        params = {"weights": self.weights, "lr": c["learning_rate"], "epochs": c["epochs"],
                  "batch_size": c["batch_size"], "patience": c["early_stopping"], "grad_clip": c["max_norm"],
                  "warmup_frac": WARMUP, "pooling": "cls", "n_conformers": 1, "max_atoms": 128,
                  "device": "auto" if c["use_cuda"] else "cpu"}
        if c["freeze_layers"]:
            params.update(freeze_prefixes=c["freeze_layers"], freeze_reversed=c["freeze_layers_reversed"])
        kfold = c["kfold"]
        recipe = {
            "name": "unimol_tools_compat",
            "description": "uniqsar.compat.MolTrain: one unimol2 fine-tuning learner with unimol_tools' arguments",
            "cv": {"n_folds": kfold if kfold > 1 else 0, "split": split},
            "models": [{"learner": "unimol2", "features": [], "n_trials": 1, "params": params, "name": "unimol2",
                        "search": False}],
            "ensemble": {"method": "best", "size": 1, "top_trials": 1},
            "final": {"mode": "folds" if kfold > 1 else "refit"},
            "tuning": {"pruning": False},
        }
        folder = Path(tempfile.mkdtemp(prefix="uniqsar-compat-"))
        path = folder / "unimol_tools_compat.toml"
        path.write_text(dump_toml(recipe))
        return path

    def _pipeline_metric(self, cols: list) -> dict:
        from uniqsar.metrics import metric_for_task

        first = self.metrics[0]
        for name in (PIPELINE_METRIC.get(first), first):
            try:
                return {t: metric_for_task(name, PIPELINE_TASK[self.task]) for t in cols}
            except (KeyError, ValueError, TypeError):
                continue
        return {}  # not a uniqsar metric (f1_score, mcc, ...): the task's default selects, all are reported

    def _oof(self, df: pd.DataFrame, cols: list):
        """Out-of-fold predictions of every input row (n, T) (multiclass: (n, C)), and the targets, from the run."""
        from uniqsar.data.dataset import standardize_column
        from uniqsar.io.artifacts import read_json

        manifest = read_json(self.run_dir / layout.MANIFEST)
        rows = standardize_column(df, self.config["smiles_col"], mode=manifest.get("standardize", "canonical"))
        canon = rows["canonical"].where(rows["error"] == "", None)
        if self.task == "multiclass":
            return self._oof_multiclass(df, manifest, cols[0], canon)
        preds, ys = [], []
        for t in cols:
            oof = pd.read_csv(self.run_dir / manifest["targets"][t]["dir"] / layout.OOF)
            by_smiles = dict(zip(oof["smiles"], oof["ensemble_nested"]))
            preds.append([by_smiles.get(s, np.nan) if s is not None else np.nan for s in canon])
            ys.append(pd.to_numeric(df[t], errors="coerce").to_numpy(float))
        return np.asarray(preds, float).T, np.asarray(ys, float).T


    def _oof_multiclass(self, df, manifest, t, canon):
        """(n, multiclass_cnt) out-of-fold class probabilities (a class absent from the data: 0), (n,) labels."""
        from uniqsar.pipeline.oof import prob_columns

        tdir = self.run_dir / manifest["targets"][t]["dir"]
        oof = pd.read_csv(tdir / layout.OOF)
        classes = manifest["targets"][t]["classes"]
        P = np.zeros((len(df), self._multiclass_cnt))
        probs = oof[prob_columns("ensemble_nested", len(classes))].to_numpy(float)
        row_of = {s: i for i, s in enumerate(oof["smiles"])}
        for r, s in enumerate(canon):
            if s is None or s not in row_of:
                P[r] = np.nan
                continue
            for k, label in enumerate(classes):
                P[r, int(float(label))] = probs[row_of[s], k]
        return P, pd.to_numeric(df[t], errors="coerce").to_numpy(float)


def _multiclass_or_pending() -> None:
    from uniqsar.data.targets import TASKS as DATA_TASKS
    from uniqsar.registry import get_learner_class

    if "multiclass" not in DATA_TASKS or "multiclass" not in get_learner_class("unimol2").tasks:
        raise CompatError(f"{OWNER}: task 'multiclass' needs the pipeline's multiclass task (issue 20 item 2), which "
                          "this uniqsar version does not have yet")


def _class_count(col: pd.Series) -> int:
    """unimol_tools' multiclass_cnt: labels are the integers 0..C-1, C = max + 1."""
    y = pd.to_numeric(col, errors="coerce")
    known = y.dropna()
    if len(known) < (col.notna()).sum() or len(known) == 0 or (known != known.round()).any() or (known < 0).any():
        raise CompatError(f"{OWNER}: task 'multiclass' takes integer class labels 0..C-1 in the target column, as "
                          "unimol_tools does (uniqsar fit --task multiclass also takes text labels)")
    return int(known.max()) + 1


def _clear_previous(out: Path) -> None:
    """unimol_tools overwrites save_path; uniqsar does so only for a save_path that an earlier MolTrain wrote (it
    never deletes a folder it did not make)."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if out.is_dir() and (out / COMPAT_FILE).is_file():
        from uniqsar.util import log

        log(f"MolTrain: overwriting the earlier MolTrain run in {out}")
        shutil.rmtree(out)
        return
    raise CompatError(f"{OWNER}: save_path {str(out)!r} exists and holds something other than an earlier MolTrain "
                      "run; choose a new save_path (uniqsar never overwrites a folder it did not write)")


_ARGS = ("task", "data_type", "epochs", "learning_rate", "batch_size", "early_stopping", "metrics", "split",
         "split_group_col", "kfold", "save_path", "remove_hs", "smiles_col", "target_cols", "target_col_prefix",
         "target_anomaly_check", "smiles_check", "target_normalize", "max_norm", "use_cuda", "use_amp", "use_ddp",
         "use_gpu", "freeze_layers", "freeze_layers_reversed", "load_model_dir", "model_name", "model_size",
         "pretrained_model_path", "pretrained_dict_path", "conf_cache_level", "seed")
