"""Command line: parse arguments, make one library call per subcommand, print errors plainly."""
from __future__ import annotations

import argparse
import json
import sys

EPILOG_FIT = """examples:
  uniqsar fit data.csv --target Y --preset fast --out runs/first
  uniqsar fit data.csv --target logS --target logD --time-budget 20m --n-jobs 2 --out runs/sol
  uniqsar fit data.csv --target Y --learners lightgbm,linear --out runs/gbdt_only
"""


def _learner_help() -> str:
    from uniqsar.registry import learner_names

    return ", ".join(learner_names())


def build_parser() -> argparse.ArgumentParser:
    from uniqsar import __version__
    from uniqsar.config import available_presets
    from uniqsar.data.standardize import MODES

    p = argparse.ArgumentParser(prog="uniqsar", description="AutoML for molecular property prediction (QSAR).")
    p.add_argument("--version", action="version", version=f"uniqsar {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="train an ensemble on a labeled CSV", epilog=EPILOG_FIT,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("data", help="CSV (or TSV) with a SMILES column and target column(s)")
    f.add_argument("--target", action="append", required=True, help="target column (repeat for several)")
    f.add_argument("--smiles-col", help="SMILES column (default: auto-detect smiles/SMILES/Drug/canonical_smiles)")
    f.add_argument("--task", default="auto", choices=["auto", "regression", "binary", "multiclass"],
                   help="auto: 2 labels -> binary; 3-20 distinct text labels or integer codes -> multiclass; "
                        "numbers -> regression (pass --task regression for an integer-valued quantity)")
    f.add_argument("--preset", default="default",
                   help=f"preset name ({', '.join(available_presets())}) or path to a recipe TOML")
    f.add_argument("--time-budget", help="wall-clock limit for the whole fit, e.g. 90s, 10m, 1h30m")
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--n-jobs", type=int, default=-1,
                   help="processes for featurization, the folds of each trial and the final fits (the results do "
                        "not depend on it); default -1 = all cores")
    f.add_argument("--learners", help="comma-separated learners to use (one the preset lacks comes with its "
                                      f"configuration from `best`); available: {_learner_help()}")
    f.add_argument("--metric", help="metric to optimize, any case (default: mae for regression, roc_auc for binary, "
                                    "macro_roc_auc for multiclass; aliases such as AUROC, auc, ROC-AUC, AUPRC, "
                                    "log_loss, accuracy, macro_f1)")
    f.add_argument("--joint", action="store_true", default=None, dest="joint_targets",
                   help="with several targets: the torch learners (dmpnn, unimol2, smiles_transformer) fit all "
                        "regression / binary targets with one network, a loss masked where a label is missing "
                        "(GBDT / linear stay per target; recipe: [data] joint_targets = true)")
    f.add_argument("--drop-conflicting", action="store_true", default=None,
                   help="leave out molecules whose duplicate rows have conflicting labels (default: merge them, "
                        "mean or majority; recipe: [data] drop_conflicting)")
    f.add_argument("--target-transform", default="auto", choices=["auto", "none", "log10p1"],
                   help="regression target transform (auto: log10(1+y) for non-negative right-skewed targets)")
    f.add_argument("--standardize", choices=MODES,
                   help="canonical: the molecule as written, salts and charges kept (default); full: largest organic "
                        "fragment, neutralized (merges salts with their parent)")
    f.add_argument("--cache-dir", help="feature cache directory (default: $UNIQSAR_CACHE_DIR or ~/.cache/uniqsar)")
    f.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    f.add_argument("--storage", help="Optuna storage URL (default: a journal file in the run directory)")
    f.add_argument("--resume", action="store_true", help="continue a run in an existing --out directory")
    f.add_argument("--out", required=True, help="run directory to create")

    pr = sub.add_parser("predict", help="predict new molecules with a run directory")
    pr.add_argument("run", help="run directory written by `uniqsar fit`")
    pr.add_argument("data", help="CSV with a SMILES column")
    pr.add_argument("--smiles-col")
    pr.add_argument("--out", required=True, help="output CSV: input columns + <T>_pred [<T>_prob] + error")
    pr.add_argument("--confidence", type=float, default=0.9,
                    help="confidence of the conformal intervals (regression) and sets (binary) (default: 0.9)")
    pr.add_argument("--n-jobs", type=int, default=1)
    pr.add_argument("--cache-dir")

    w = sub.add_parser("worker", help="join a run's tuning from another process or machine (shared --storage)")
    w.add_argument("spec", help="run_spec.json written by `uniqsar fit --storage URL` (copy it to this machine)")
    w.add_argument("--storage", required=True, help="the Optuna storage URL the run was started with")
    w.add_argument("--n-jobs", type=int, default=1)
    w.add_argument("--cache-dir")

    _add_pretrain_parser(sub)
    _add_embed_parser(sub)
    _add_explain_report_parsers(sub)

    i = sub.add_parser("info", help="summarize a run directory")
    i.add_argument("run")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def cmd_fit(a) -> int:
    from uniqsar.pipeline.fit import FitOptions, fit
    from uniqsar.util import parse_duration

    learners = tuple(x.strip() for x in a.learners.split(",") if x.strip()) if a.learners else ()
    opts = FitOptions(targets=tuple(a.target), smiles_col=a.smiles_col, task=a.task, preset=a.preset, seed=a.seed,
                      n_jobs=a.n_jobs, time_budget=parse_duration(a.time_budget), cache_dir=a.cache_dir,
                      use_cache=not a.no_cache, learners=learners, metric=a.metric or {}, storage=a.storage,
                      resume=a.resume, target_transform=a.target_transform, standardize=a.standardize,
                      drop_conflicting=a.drop_conflicting,
                      joint_targets=a.joint_targets)  # every option is resolved in pipeline/options.py
    out = fit(a.data, a.out, opts)
    print(info_text(out))
    return 0


def cmd_predict(a) -> int:
    from uniqsar.pipeline.predict import Run, predict_csv
    from uniqsar.util import log

    run = Run(a.run, cache_dir=a.cache_dir, n_jobs=a.n_jobs)
    n = predict_csv(run, a.data, a.out, a.smiles_col, confidence=a.confidence)
    log(f"wrote {n} rows to {a.out}")
    return 0


def info_text(path) -> str:
    import pandas as pd

    from uniqsar.data.standardize import LEGACY_MODE
    from uniqsar.io import layout
    from uniqsar.io.artifacts import check_run_dir, read_json
    from uniqsar.models.provenance import representation_lines

    path = check_run_dir(path)
    m = read_json(path / layout.MANIFEST)
    rep = read_json(path / layout.DATA_REPORT)
    metrics = read_json(path / layout.METRICS)
    lines = [f"run {path}", f"  preset {m['preset']}, seed {m['seed']}, uniqsar {m['versions']['uniqsar']}, "
             f"fit time {m['timings']['total_s']:.0f} s",
             f"  data: {rep['n_rows']} rows, {rep['n_valid']} valid, {rep['n_invalid']} invalid; "
             f"standardize {m.get('standardize', LEGACY_MODE)}"]
    lines += representation_lines(m.get("representations") or {})
    if m.get("joint_targets"):
        lines.append(f"  joint targets {', '.join(m['joint_targets']['targets'])}: "
                     f"{', '.join(m['joint_targets']['models'])} fitted with one network for all of them")
    board = pd.read_csv(path / layout.LEADERBOARD)
    for t, tm in m["targets"].items():
        r = metrics[t]
        lines.append(f"\ntarget {t}: {tm['task']}, {r['n_train']} training molecules, metric {r['metric']}")
        if tm["task"] in ("binary", "multiclass") and tm.get("classes"):
            counts = rep["targets"].get(t, {}).get("class_counts")
            lines.append("  classes: " + ", ".join(f"{c}" + (f" ({n})" if counts else "")
                                                   for c, n in zip(tm["classes"], counts or tm["classes"])))
        if r["cv_score_ensemble"] is None:
            lines.append("  no cross-validation in this recipe (n_folds = 0): no CV score")
        else:
            lines.append(f"  ensemble CV {r['metric']} (nested, honest): {r['cv_score_ensemble']:.4f}; "
                         f"best single learner {r['best_single']}: {r['cv_score_best_single']:.4f}")
        for d in r.get("dropped_models", []):
            lines.append(f"  dropped from the stack: {d['model']} (nested CV {d['cv_with']:.4f} with it, "
                         f"{d['cv_without']:.4f} without)")
        cols = ["candidate", "cv_score", "weight", "n_trials", "ensemble_cv_without_model"]
        sub = board[board["target"] == t][[c for c in cols if c in board]]
        if "ensemble_cv_without_model" in sub:  # older runs have no ablation column
            sub = sub.rename(columns={"ensemble_cv_without_model": "ensemble_cv_without_its_model"})
        lines.append("  " + sub.to_string(index=False, float_format=lambda v: f"{v:.4f}").replace("\n", "\n  "))
    return "\n".join(lines)


def cmd_info(a) -> int:
    if a.json:
        from uniqsar.io import layout
        from uniqsar.io.artifacts import check_run_dir, read_json

        path = check_run_dir(a.run)
        print(json.dumps({"manifest": read_json(path / layout.MANIFEST), "metrics": read_json(path / layout.METRICS)},
                         indent=2))
    else:
        print(info_text(a.run))
    return 0


def cmd_worker(a) -> int:
    from uniqsar.pipeline.worker import run_worker
    from uniqsar.util import log

    n = run_worker(a.spec, a.storage, n_jobs=a.n_jobs, cache_dir=a.cache_dir)
    log(f"worker done: contributed to {n} studies")
    return 0


COMMANDS = {"fit": cmd_fit, "predict": cmd_predict, "info": cmd_info, "worker": cmd_worker}


def _add_pretrain_parser(sub) -> None:
    t = sub.add_parser("pretrain", help="pretrain a Uni-Mol2 model or a SMILES transformer from scratch on a SMILES corpus",
                       epilog="examples:\n  uniqsar pretrain --recipe small --corpus smiles.csv.gz --out runs/pt "
                              "--exclude tdc_test.csv --n-jobs 2\n"
                              "  uniqsar pretrain --recipe pretrain_smiles_small --corpus smiles.csv.gz --out runs/pt_smiles "
                              "--exclude tdc_test.csv", formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--recipe", required=True,
                   help="recipe TOML path, or a packaged name: tiny, small (Uni-Mol2), pretrain_smiles_tiny, "
                        "pretrain_smiles_small (SMILES transformer; the recipe's [model] kind decides)")
    t.add_argument("--corpus", required=True, help="CSV/CSV.gz with a SMILES column (or .smi)")
    t.add_argument("--out", required=True, help="run folder (conformer cache, checkpoints, losses, export)")
    t.add_argument("--exclude", nargs="+", default=[], metavar="FILE",
                   help="SMILES files (e.g. TDC test sets) whose molecules must never enter the corpus")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    t.add_argument("--max-steps", type=int, help="override the recipe's train.max_steps")
    t.add_argument("--limit", type=int, help="override the recipe's data.limit (first N corpus rows)")
    t.add_argument("--n-jobs", type=int, default=1, help="processes for conformer generation (Uni-Mol2)")
    t.add_argument("--threads", type=int, help="torch threads (default: recipe, else all cores)")
    t.add_argument("--device", default="cpu", help="cpu (default), cuda[:N], or auto (cuda when available)")


def cmd_pretrain(a) -> int:
    from uniqsar.models.pretraining import pretrain

    pretrain(a.recipe, a.corpus, a.out, resume=a.resume, max_steps=a.max_steps, n_jobs=a.n_jobs,
             exclude=a.exclude, threads=a.threads, limit=a.limit, verbose=not a.quiet, device=a.device)
    return 0


COMMANDS["pretrain"] = cmd_pretrain


class _EmbedModels:
    """``uniqsar embed --model`` choices: every registered featurizer that declares an ``embed_name`` (loaded on
    first use, so other commands do not import the neural modules)."""

    def classes(self) -> dict:
        from uniqsar.registry import FEATURIZERS, load_all

        load_all()
        return {cls.embed_name: cls for cls in FEATURIZERS.values() if cls.embed_name}

    def __contains__(self, name) -> bool:
        return name in self.classes()

    def __iter__(self):
        return iter(sorted(self.classes()))


EMBED_MODELS = _EmbedModels()
#: embed options that set the featurizer parameter of the same name (when given; else the featurizer's default)
EMBED_PARAMS = ("weights", "seed", "pooling", "n_conformers", "batch_size")


def _add_embed_parser(sub) -> None:
    from uniqsar.data.standardize import DEFAULT_MODE, MODES

    e = sub.add_parser("embed", help="molecule embeddings (one float32 row per input row) to a .npy file",
                       epilog="examples:\n  uniqsar embed data.csv --model unimol2 --pooling cls+mean --out emb.npy\n"
                              "  uniqsar embed data.csv --model unimol2 --atomic --out atoms/   (per-atom vectors, "
                              "atomic numbers, symbols and coordinates -> atoms/atomic.npz)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("data", help="CSV (or TSV) with a SMILES column")
    e.add_argument("--model", default="unimol2", choices=EMBED_MODELS, metavar="MODEL",
                   help="a featurizer that can embed (its class sets embed_name): %(choices)s (default: %(default)s)")
    e.add_argument("--weights", help="default | random | a size name (unimol2: small, 84m, ...) | checkpoint path "
                                     "(default: the featurizer's, 'default')")
    e.add_argument("--smiles-col")
    e.add_argument("--standardize", choices=MODES, default=DEFAULT_MODE, help="as for fit (default: %(default)s)")
    e.add_argument("--pooling", help="the featurizer's pooling: unimol2 cls (default) | cls+mean; dmpnn checkpoint "
                                     "(the readout it was trained with, default) | mean; smiles_transformer cls+mean "
                                     "(default) | cls | mean")
    e.add_argument("--n-conformers", type=int, help="unimol2: conformers averaged per molecule (default: 1)")
    e.add_argument("--seed", type=int, help="random-init seed (default: 0)")
    e.add_argument("--batch-size", type=int, help="molecules per forward pass (default: the featurizer's)")
    e.add_argument("--n-jobs", type=int, default=1, help="processes for conformers; torch threads")
    e.add_argument("--cache-dir", help="feature cache directory")
    e.add_argument("--no-cache", action="store_true")
    e.add_argument("--atomic", action="store_true",
                   help="unimol2 only: per-atom representations of every row (SMILES as written, heavy atoms in "
                        "their RDKit order; no standardization) + CLS vectors, atomic numbers, symbols and coordinates "
                        "to --out DIR/atomic.npz (flat arrays + offsets, no pickle) and DIR/summary.json")
    e.add_argument("--max-atoms", type=int, default=128,
                   help="--atomic: molecules with more heavy atoms are cropped to a seeded subset (default: 128)")
    e.add_argument("--out", required=True, help="output .npy (float32, rows in input order, NaN rows = failed); "
                                                "with --atomic a folder")


def cmd_embed(a) -> int:
    import numpy as np

    from uniqsar.featurize.embed import embed_rows

    if a.atomic:
        return _embed_atomic(a)
    cls = EMBED_MODELS.classes()[a.model]
    params = {}
    for name in EMBED_PARAMS:
        value = getattr(a, name)
        if value is None:
            continue
        if name not in cls.defaults:
            raise ValueError(f"--{name.replace('_', '-')} does not apply to --model {a.model}")
        params[name] = value
    feat = cls(**params)
    X, info = embed_rows(a.data, feat, smiles_col=a.smiles_col, n_jobs=max(1, a.n_jobs), cache_dir=a.cache_dir,
                         use_cache=not a.no_cache, standardize=a.standardize)
    np.save(a.out, X)
    print(f"wrote {a.out}: {info['n_rows']} rows x {info['dim']} (float32), {info['n_failed']} failed "
          f"({info['n_invalid_smiles']} invalid SMILES); weights: {feat.describe_weights(info['weights'])}")
    return 0


def _embed_atomic(a) -> int:
    from uniqsar.data.standardize import DEFAULT_MODE

    if a.model != "unimol2":
        raise ValueError("--atomic is for --model unimol2 (per-atom Uni-Mol2 representations)")
    if a.pooling is not None or a.n_conformers not in (None, 1) or a.standardize != DEFAULT_MODE:
        raise ValueError("--atomic writes the CLS and per-atom vectors of one conformer per molecule, for the SMILES "
                         "as written: leave out --pooling, --n-conformers and --standardize")
    from uniqsar.models.unimol2.atomic import embed_atomic_table

    info = embed_atomic_table(a.data, a.out, smiles_col=a.smiles_col, weights=a.weights or "default",
                              seed=a.seed or 0, batch_size=a.batch_size or 32, max_atoms=a.max_atoms,
                              n_jobs=max(1, a.n_jobs))
    print(f"wrote {a.out}/{info['file']}: {info['n_rows']} molecules, {info['n_atoms']} atoms x {info['dim']} "
          f"(float32), {info['n_failed']} failed; weights: {info['weights_text']}")
    return 0


COMMANDS["embed"] = cmd_embed


def _add_explain_report_parsers(sub) -> None:
    x = sub.add_parser("explain", help="atom weights of the ensemble's predictions (atom occlusion) + one SVG per row",
                       epilog='examples:\n  uniqsar explain runs/x new.csv --out expl/\n  uniqsar explain runs/x "CCOc1ccccc1" '
                              "--out expl/", formatter_class=argparse.RawDescriptionHelpFormatter)
    x.add_argument("run", help="run directory written by `uniqsar fit`")
    x.add_argument("data", help="CSV with a SMILES column, or one SMILES")
    x.add_argument("--out", required=True, help="folder for atom_weights.csv and <row>_<target>.svg")
    x.add_argument("--target", action="append", help="explain this target only (repeat for several; default: all)")
    x.add_argument("--smiles-col")
    x.add_argument("--cache-dir")
    r = sub.add_parser("report", help="one self-contained HTML report of a run (fit writes RUN/report.html)")
    r.add_argument("run", help="run directory written by `uniqsar fit`")
    r.add_argument("--out", help="output HTML (default: RUN/report.html)")


def cmd_explain(a) -> int:
    from pathlib import Path

    from uniqsar.data.dataset import find_smiles_column, read_table
    from uniqsar.explain.output import explain_to_dir
    from uniqsar.pipeline.predict import Run
    from uniqsar.util import log

    run = Run(a.run, cache_dir=a.cache_dir)
    if Path(a.data).is_file():
        df = read_table(a.data)
        smiles = df[find_smiles_column(df, a.smiles_col)].tolist()
    elif a.data.lower().endswith((".csv", ".tsv", ".txt", ".gz")):
        raise FileNotFoundError(f"no such file: {a.data}")
    else:
        smiles = [a.data]
    res = explain_to_dir(run, smiles, a.out, a.target)
    for r, reason in list(res["errors"].items())[:5]:
        log(f"row {r} not explained: {reason}")
    log(f"explained {res['n_explained']} of {res['n_rows']} rows -> {Path(a.out) / 'atom_weights.csv'} and "
        f"{res['n_svg']} SVG files")
    return 0


def cmd_report(a) -> int:
    from uniqsar.report.html import write_report
    from uniqsar.util import log

    log(f"wrote {write_report(a.run, a.out)}")
    return 0


COMMANDS["explain"] = cmd_explain
COMMANDS["report"] = cmd_report


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    import uniqsar.util

    quiet_before = uniqsar.util.QUIET
    uniqsar.util.QUIET = quiet_before or a.quiet
    try:
        return _run_command(a)
    finally:
        uniqsar.util.QUIET = quiet_before  # an in-process call (tests, notebooks) leaves logging as it found it


def _run_command(a) -> int:
    try:
        return COMMANDS[a.command](a)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:
        print(f"uniqsar {a.command}: error: a required package is missing: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, RuntimeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"uniqsar {a.command}: error: {_safe(msg)}", file=sys.stderr)
        return 2
    except Exception as exc:  # never a traceback (UNIQSAR_DEBUG=1 shows it)
        import os

        if os.environ.get("UNIQSAR_DEBUG"):
            raise
        from uniqsar.io.verify import one_line

        print(f"uniqsar {a.command}: error: {one_line(exc)} (unexpected; set UNIQSAR_DEBUG=1 to see where it "
              "happened)", file=sys.stderr)
        return 2


def _safe(msg) -> str:
    """The message, except that a library's hint to load pickles (torch: weights_only=False) is never passed on."""
    from uniqsar.io.verify import one_line

    return one_line(ValueError(msg)) if "weights_only" in str(msg) else str(msg)


if __name__ == "__main__":
    sys.exit(main())
