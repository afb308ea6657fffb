"""chemprop v2, the peer baseline of issue 18's fine-tuning probe, on the same TDC train -> valid splits as
``finetune_dmpnn.py`` (never the test sets). chemprop pins its own RDKit, so it runs from a separate venv:

    python -m venv /root/venvs/chemprop
    /root/venvs/chemprop/bin/pip install torch==2.13.0 && /root/venvs/chemprop/bin/pip install chemprop==2.3.1
    python benchmarks/pretrain/chemprop_probe.py --chemprop /root/venvs/chemprop/bin/chemprop --seeds 1 2 3 4 5 \
        --out benchmarks/pretrain/results/finetune_dmpnn_s1/chemprop [--compare benchmarks/pretrain/results/finetune_dmpnn_s1/finetune.json]

chemprop's defaults throughout (D-MPNN, hidden 300, depth 3, 50 epochs, batch 64), with the settings that make
it comparable to uniqsar's ``dmpnn`` learner in that probe: the same inputs (uniqsar-standardized SMILES), the
same target scale (log10(1 + y) for the tasks TDC scores on that scale), a scaffold-balanced 90/10 inner split
of the TDC train part for best-epoch selection (``--split-sizes 0.9 0.1 0.0``, ``--data-seed`` = seed), and
``--pytorch-seed`` = seed. Resumable: finished (task, seed) entries are kept. Writes OUT.json (scores,
seconds, command line, commit, chemprop version) and OUT.md (5-seed means beside the other probe variants).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "pretrain"))

from probe import TASKS, load_train_val  # noqa: E402

from uniqsar.data import tdc  # noqa: E402
from uniqsar.metrics import get_metric, score  # noqa: E402


def run_chemprop(exe: str, task: str, smiles, y, tr, va, seed: int, threads: int) -> float:
    info = tdc.task_info(task)
    fwd = (lambda v: np.log10(v + 1)) if info.log_scale else (lambda v: v)
    inv = (lambda v: 10 ** v - 1) if info.log_scale else (lambda v: v)
    with tempfile.TemporaryDirectory(prefix=f"chemprop_{task}_{seed}_") as tmp:
        tmp = Path(tmp)
        pd.DataFrame({"smiles": [smiles[i] for i in tr], "y": fwd(y[tr])}).to_csv(tmp / "train.csv", index=False)
        pd.DataFrame({"smiles": [smiles[i] for i in va]}).to_csv(tmp / "valid.csv", index=False)
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
        task_type = "classification" if info.task == "binary" else "regression"
        subprocess.run([exe, "train", "-i", str(tmp / "train.csv"), "-s", "smiles", "--target-columns", "y",
                        "-t", task_type, "-o", str(tmp / "model"), "--split-type", "SCAFFOLD_BALANCED",
                        "--split-sizes", "0.9", "0.1", "0.0", "--data-seed", str(seed), "--pytorch-seed", str(seed),
                        "-n", "0", "--accelerator", "cpu", "--devices", "1"],
                       check=True, capture_output=True, env=env)
        models = sorted((tmp / "model").rglob("best*.pt"))
        if not models:
            raise RuntimeError(f"chemprop wrote no model under {tmp / 'model'}")
        subprocess.run([exe, "predict", "-i", str(tmp / "valid.csv"), "-s", "smiles", "--model-paths", str(models[0]),
                        "-o", str(tmp / "pred.csv"), "-n", "0", "--accelerator", "cpu", "--devices", "1"],
                       check=True, capture_output=True, env=env)
        pred = pd.read_csv(tmp / "pred.csv").iloc[:, -1].to_numpy(float)
    return float(score(info.metric, y[va], pred if info.task == "binary" else inv(pred)))


def report(res: dict, compare: dict | None) -> str:
    variants = (["scratch", "pretrained"] if compare else []) + ["chemprop"]
    lines = ["# D-MPNN fine-tuning probe with chemprop v2 beside it (TDC train -> valid, never test)", "",
             f"chemprop: `{res['command']}` (commit {res['commit']}, chemprop {res.get('chemprop_version', '?')})"]
    if compare:
        lines.append(f"uniqsar `dmpnn` scratch / pretrained: `{compare['command']}` (commit {compare['commit']})")
    lines += ["", "Means over the seeds every variant finished.", "",
              "| task | metric | " + " | ".join(variants) + " | seeds | best |", "|---|---|" + "---|" * (len(variants) + 2)]
    for task, r in res["tasks"].items():
        per = {"chemprop": r.get("chemprop", {})}
        if compare:
            c = compare["tasks"].get(task, {})
            per.update(scratch=c.get("scratch", {}), pretrained=c.get("pretrained", {}))
        seeds = sorted(set.intersection(*(set(per[v]) for v in variants)))
        if not seeds:
            continue
        means = {v: float(np.mean([per[v][s] for s in seeds])) for v in variants}
        pick = max if get_metric(r["metric"]).greater_is_better else min
        best = pick(variants, key=means.get)
        lines.append(f"| {task} | {r['metric']} | " + " | ".join(f"{means[v]:.3f}" for v in variants)
                     + f" | {len(seeds)} | {best} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from benchmarks.tdc.run import git_commit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chemprop", required=True, help="the chemprop executable of its own venv")
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "tdc_admet_group"))
    ap.add_argument("--compare", default=None, help="finetune_dmpnn.py's JSON, for the side-by-side table")
    ap.add_argument("--out", required=True, help="output path without extension")
    a = ap.parse_args(argv)
    if not Path(a.chemprop).is_file():
        ap.error(f"no chemprop executable at {a.chemprop} (see the install lines at the top of this file)")
    version = subprocess.run([str(Path(a.chemprop).with_name("python")), "-c",
                              "import chemprop; print(chemprop.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.with_suffix(".json")
    res = json.loads(path.read_text()) if path.exists() else {"tasks": {}}
    res.update(command="python " + " ".join(sys.argv), commit=git_commit(), chemprop_version=version)

    def compare():
        return json.loads(Path(a.compare).read_text()) if a.compare and Path(a.compare).exists() else None

    for seed in a.seeds:  # seed-major, as finetune_dmpnn.py
        for task in a.tasks:
            r = res["tasks"].setdefault(task, {"metric": tdc.task_info(task).metric})
            if str(seed) in r.get("chemprop", {}):
                continue
            train_val, smiles, y = load_train_val(a.data_dir, task)
            tr, va = tdc.train_valid_split(train_val, seed)
            t0 = time.time()
            try:
                r.setdefault("chemprop", {})[str(seed)] = run_chemprop(a.chemprop, task, smiles, y, tr, va, seed,
                                                                       a.threads)
            except subprocess.CalledProcessError as exc:
                print(f"{task} seed {seed}: chemprop failed:\n{exc.stderr.decode()[-2000:]}", file=sys.stderr)
                continue
            r.setdefault("seconds", {})[str(seed)] = round(time.time() - t0, 1)
            print(f"{task} seed {seed} chemprop: {r['chemprop'][str(seed)]:.4f} ({time.time() - t0:.0f}s)",
                  file=sys.stderr, flush=True)
            path.write_text(json.dumps(res, indent=1))
            out.with_suffix(".md").write_text(report(res, compare()))
    print(report(res, compare()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
