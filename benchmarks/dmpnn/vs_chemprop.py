"""Our D-MPNN (``dmpnn`` learner) vs chemprop v2, default settings, side by side on TDC ADMET tasks.

Both systems get the same data: the official TDC scaffold split of ``train_val.csv`` for
``--seed`` (``uniqsar.data.tdc.train_valid_split``: train 87.5% / validation 12.5%, the
validation part drives early stopping / best-epoch selection) and are scored on ``test.csv``
with ``uniqsar.data.tdc.evaluate``. Same seed for weight init, same thread budget.

chemprop runs as a subprocess of its own Python (``--chemprop-python``): chemprop 2.3 depends on
``cuik_molmaker_pin``, which pins an older RDKit, so it lives in a separate virtualenv
(``python -m venv --system-site-packages V && V/bin/pip install torch==2.13.0 chemprop``) and
the project's environment keeps its RDKit. Its wall time is the ``chemprop train`` process
(includes interpreter start-up and featurization, ~10-15 s); ours is ``fit`` in-process
(includes graph featurization). On a shared machine wall time follows the load, so CPU seconds
are recorded too (ours: ``time.process_time``; chemprop: ``RUSAGE_CHILDREN``).

    python benchmarks/dmpnn/vs_chemprop.py --tasks caco2_wang bbb_martins --seed 1 \
        --chemprop-python /tmp/chemprop_venv/bin/python

Results: ``results/<task>_seed<seed>.json`` (one per task, updated per system) and
``results/table.md`` (rebuilt from every JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from uniqsar.data import tdc  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tdc_admet_group"


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_ours(task, tv, te, train_idx, valid_idx, seed, threads, params):
    from uniqsar.registry import get_learner_class

    info = tdc.task_info(task)
    cls = get_learner_class("dmpnn")
    X, y = tv.Drug.to_numpy(object), tv.Y.to_numpy(float)
    t0, c0 = time.time(), time.process_time()
    model = cls(info.task, seed=seed, n_threads=threads, **params).fit(
        X[train_idx], y[train_idx], X[valid_idx], y[valid_idx])
    fit_s, fit_cpu = time.time() - t0, time.process_time() - c0
    t0 = time.time()
    pred = model.predict(te.Drug.to_numpy(object))
    pred_s = time.time() - t0
    return {"score": tdc.evaluate(task, te.Y.to_numpy(float), pred), "fit_seconds": round(fit_s, 1),
            "fit_cpu_seconds": round(fit_cpu, 1), "predict_seconds": round(pred_s, 1),
            "epochs_run": len(model.history_), "best_epoch": model.best_epoch_, "params": params,
            "resolved_params": {k: v for k, v in model._p().items()}, "threads": threads}


def run_chemprop(task, tv, te, train_idx, valid_idx, seed, threads, python):
    info = tdc.task_info(task)
    bin_dir = Path(python).parent
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tv[["Drug", "Y"]].to_csv(tmp / "train_val.csv", index=False)
        te[["Drug", "Y"]].to_csv(tmp / "test.csv", index=False)
        (tmp / "splits.json").write_text(json.dumps(
            [{"train": [int(i) for i in train_idx], "val": [int(i) for i in valid_idx], "test": []}]))
        common = ["--accelerator", "cpu", "--devices", "1", "-n", "0", "-s", "Drug"]
        train = [str(bin_dir / "chemprop"), "train", "--data-path", str(tmp / "train_val.csv"),
                 "--target-columns", "Y", "--task-type",
                 "classification" if info.task == "binary" else "regression",
                 "--splits-file", str(tmp / "splits.json"), "--save-dir", str(tmp / "model"),
                 "--pytorch-seed", str(seed), "--data-seed", str(seed), *common]
        t0, c0 = time.time(), _children_cpu()
        r = subprocess.run(train, env=env, capture_output=True, text=True)
        fit_s, fit_cpu = time.time() - t0, _children_cpu() - c0
        if r.returncode:
            raise RuntimeError(f"chemprop train failed:\n{r.stderr[-3000:]}")
        metrics = next((tmp / "model").rglob("metrics.csv"))
        epochs = len({line.split(",")[0] for line in metrics.read_text().splitlines()[1:]})
        t0 = time.time()
        r = subprocess.run([str(bin_dir / "chemprop"), "predict", "--test-path", str(tmp / "test.csv"),
                            "--model-paths", str(tmp / "model" / "model_0" / "best.pt"),
                            "--preds-path", str(tmp / "preds.csv"), *common],
                           env=env, capture_output=True, text=True)
        pred_s = time.time() - t0
        if r.returncode:
            raise RuntimeError(f"chemprop predict failed:\n{r.stderr[-3000:]}")
        import pandas as pd

        pred = pd.read_csv(tmp / "preds.csv")["Y"].to_numpy(float)
        version = subprocess.run([python, "-c", "import chemprop; print(chemprop.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
    return {"score": tdc.evaluate(task, te.Y.to_numpy(float), pred), "fit_seconds": round(fit_s, 1),
            "fit_cpu_seconds": round(fit_cpu, 1), "predict_seconds": round(pred_s, 1), "epochs_run": epochs,
            "chemprop_version": version, "threads": threads}


def write_table() -> None:
    head = ("| task | seed | metric | ours | ours score | chemprop score | ours fit s (epochs) | "
            "chemprop fit s (epochs) | wall ours / chemprop | CPU ours / chemprop | threads ours / chemprop |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for path in sorted(RESULTS.glob("*_seed*.json")):
        r = json.loads(path.read_text())
        cp = r["systems"].get("chemprop")
        cp_score = f"{cp['score']:.3f}" if cp else "—"
        cp_time = f"{cp['fit_seconds']:.0f} ({cp['epochs_run']})" if cp else "—"
        for name, s in r["systems"].items():
            if name == "chemprop":
                continue
            ratio = f"{s['fit_seconds'] / cp['fit_seconds']:.2f}" if cp else "—"
            cpu = (f"{s['fit_cpu_seconds'] / cp['fit_cpu_seconds']:.2f}"
                   if cp and "fit_cpu_seconds" in s and "fit_cpu_seconds" in cp else "—")
            rows.append(f"| {r['task']} | {r['seed']} | {r['metric']} | {name} | {s['score']:.3f} | {cp_score} | "
                        f"{s['fit_seconds']:.0f} ({s['epochs_run']}) | {cp_time} | {ratio} | {cpu} | "
                        f"{s.get('threads', '?')} / {cp.get('threads', '?') if cp else '—'} |")
    (RESULTS / "table.md").write_text("\n".join(rows) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["caco2_wang", "bbb_martins"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("UNIQSAR_TDC_DIR", str(DEFAULT_DATA)))
    ap.add_argument("--chemprop-python", default=os.environ.get("CHEMPROP_PYTHON", "/tmp/chemprop_venv/bin/python"))
    ap.add_argument("--systems", nargs="+", default=["dmpnn", "chemprop"],
                    help="dmpnn, dmpnn_rdkit (Chemprop-RDKit variant), chemprop")
    ap.add_argument("--params", default="{}", help="JSON dict of dmpnn parameters (default: its defaults)")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        tv, te = tdc.load_task(task, args.data_dir)
        train_idx, valid_idx = tdc.train_valid_split(tv, args.seed)
        out = RESULTS / f"{task}_seed{args.seed}.json"
        record = json.loads(out.read_text()) if out.exists() else {}
        record.update({"task": task, "seed": args.seed, "metric": tdc.task_info(task).metric,
                       "n_train": len(train_idx), "n_valid": len(valid_idx), "n_test": len(te)})
        record.pop("threads", None)  # per system now (systems may run with different budgets)
        record.setdefault("systems", {})
        for system in args.systems:
            print(f"[{time.strftime('%H:%M:%S')}] {task} seed {args.seed}: {system} ...", flush=True)
            if system == "chemprop":
                res = run_chemprop(task, tv, te, train_idx, valid_idx, args.seed, args.threads, args.chemprop_python)
            else:
                params = {**json.loads(args.params), **({"rdkit_features": True} if system == "dmpnn_rdkit" else {})}
                res = run_ours(task, tv, te, train_idx, valid_idx, args.seed, args.threads, params)
            res["load_average_1min"] = round(os.getloadavg()[0], 1)
            record["systems"][system] = res
            out.write_text(json.dumps(record, indent=2))
            write_table()
            print(f"    {json.dumps(res)}", flush=True)


if __name__ == "__main__":
    main()
