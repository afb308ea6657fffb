"""One-factor ablations of the ``dmpnn`` defaults on TDC tasks (ours only; chemprop's numbers come
from ``vs_chemprop.py``). Same data, split and scoring as ``vs_chemprop.py``; one fit per call.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/dmpnn/ablate.py --task caco2_wang --seed 1 \
        --name agg_mean --params '{"aggregation": "mean"}'

Appends one JSON line per fit to ``results/ablation.jsonl`` (name, task, seed, score, fit wall /
CPU seconds, epochs, best epoch, the parameters given and the resolved parameters).
``--record`` (only with the defaults, ``--params '{}'``) also stores the fit as system ``dmpnn``
in ``results/<task>_seed<seed>.json`` and rebuilds ``results/table.md``, exactly as
``vs_chemprop.py --systems dmpnn`` would. ``--promote NAME`` stores the last logged fit of variant
NAME for every task/seed the same way, but only where its resolved parameters equal the learner's
current defaults (a variant run before it became the default need not be rerun). ``--summary``
prints the table of all lines instead (one row per name, one column per task/seed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from vs_chemprop import DEFAULT_DATA, RESULTS, run_ours, write_table  # noqa: E402

from uniqsar.data import tdc  # noqa: E402

LOG = RESULTS / "ablation.jsonl"


def summary() -> str:
    rows = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()]
    cols = sorted({(r["task"], r["seed"]) for r in rows})
    names = list(dict.fromkeys(r["name"] for r in rows))
    cell = {(r["name"], r["task"], r["seed"]): r for r in rows}  # last run wins
    out = ["| variant | " + " | ".join(f"{t} s{s}" for t, s in cols) + " |",
           "|---|" + "---|" * len(cols)]
    for n in names:
        vals = []
        for t, s in cols:
            r = cell.get((n, t, s))
            vals.append(f"{r['score']:.3f} ({r['fit_cpu_seconds']:.0f} s, ep {r['best_epoch']})" if r else "")
        out.append(f"| {n} | " + " | ".join(vals) + " |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--name")
    ap.add_argument("--params", default="{}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=os.environ.get("UNIQSAR_TDC_DIR", str(DEFAULT_DATA)))
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--promote", metavar="NAME")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary())
        return
    if args.promote:
        promote(args.promote)
        return
    tv, te = tdc.load_task(args.task, args.data_dir)
    train_idx, valid_idx = tdc.train_valid_split(tv, args.seed)
    t0 = time.strftime("%H:%M:%S")
    res = run_ours(args.task, tv, te, train_idx, valid_idx, args.seed, args.threads, json.loads(args.params))
    res.update(name=args.name, task=args.task, seed=args.seed, metric=tdc.task_info(args.task).metric,
               started=t0, load_average_1min=round(os.getloadavg()[0], 1))
    with open(LOG, "a") as fh:
        fh.write(json.dumps(res) + "\n")
    print(json.dumps(res), flush=True)
    if args.record:
        if json.loads(args.params):
            raise SystemExit("--record stores the defaults only")
        _store(res)
        write_table()


def _store(res: dict) -> None:
    """Put one logged fit into ``results/<task>_seed<seed>.json`` as system ``dmpnn``."""
    out = RESULTS / f"{res['task']}_seed{res['seed']}.json"
    if out.exists():
        record = json.loads(out.read_text())
    else:
        tv, te = tdc.load_task(res["task"], DEFAULT_DATA)
        train_idx, valid_idx = tdc.train_valid_split(tv, res["seed"])
        record = {"task": res["task"], "seed": res["seed"], "metric": res["metric"], "n_train": len(train_idx),
                  "n_valid": len(valid_idx), "n_test": len(te), "systems": {}}
    record["systems"]["dmpnn"] = {**{k: v for k, v in res.items() if k not in ("name", "task", "seed", "metric")},
                                  "params": {}, "ablation_name": res["name"]}
    out.write_text(json.dumps(record, indent=2))


def promote(name: str) -> None:
    from uniqsar.models.dmpnn import DMPNN

    defaults = DMPNN("regression")._p()
    rows = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()]
    last = {(r["task"], r["seed"]): r for r in rows if r["name"] == name}
    for (task, seed), r in sorted(last.items()):
        if r["resolved_params"] != defaults:
            diff = {k: r["resolved_params"].get(k) for k in defaults if r["resolved_params"].get(k) != defaults[k]}
            print(f"{task} seed {seed}: skipped, not the defaults {diff}")
            continue
        _store(r)
        print(f"{task} seed {seed}: stored ({r['score']})")
    write_table()


if __name__ == "__main__":
    main()
