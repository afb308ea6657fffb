"""How much does `[data] standardize` change each TDC ADMET task's training molecules?

    python benchmarks/tdc/standardize_diff.py [--out benchmarks/tdc/results/standardize_diff.md]

For every task's train_val.csv: the share of molecules whose standardized SMILES differs between the
`full` and `canonical` modes, and how many distinct training molecules (after duplicate merging) each mode
leaves. Tasks with no difference train on identical inputs under both modes, so their results cannot differ.
Only train_val is read (test molecules are not looked at).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import data_dir  # noqa: E402  (benchmarks/tdc/run.py)

from uniqsar.data.standardize import standardize_many  # noqa: E402
from uniqsar.data.tdc import TASKS, load_task  # noqa: E402


def task_diff(task: str, folder: Path) -> dict:
    train_val, _ = load_task(task, folder)
    smiles = train_val["Drug"].tolist()
    full, _ = standardize_many(smiles, mode="full")
    canon, _ = standardize_many(smiles, mode="canonical")
    changed = sum(f != c for f, c in zip(full, canon))
    return {"task": task, "n": len(smiles), "changed": changed,
            "unique_full": len({s for s in full if s}), "unique_canonical": len({s for s in canon if s})}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=str(HERE / "results" / "standardize_diff.md"))
    args = ap.parse_args(argv)
    folder = data_dir(args.data_dir)
    lines = ["# full vs canonical standardization: training molecules that differ (train_val.csv)", "",
             "Written by `benchmarks/tdc/standardize_diff.py`.", "",
             "| task | molecules | differ | share | unique (full) | unique (canonical) |", "|---|---|---|---|---|---|"]
    for task in args.tasks:
        d = task_diff(task, folder)
        print(d, flush=True)
        lines.append(f"| {task} | {d['n']} | {d['changed']} | {d['changed'] / d['n']:.1%} | "
                     f"{d['unique_full']} | {d['unique_canonical']} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
