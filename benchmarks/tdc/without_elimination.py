"""Result dir of the same runs without the stacker's backward elimination, from their seed JSONs.

Every seed JSON written by run.py since backward elimination exists also holds
`score_without_elimination`: the test score of the same run's ensemble before elimination (the model
`[ensemble] drop_models = false` fits; None when nothing was dropped, i.e. the two are the same model).
This writes DST/<task>/seed<k>.json with `score` set to that model's score (the elimination score kept as
`score_with_elimination`), then DST/summary.json and summary.md, so report.py / diagnose.py compare it like
any run. Seeds without the field (written before elimination existed) are refused.

    python benchmarks/tdc/without_elimination.py benchmarks/tdc/results/default \
        benchmarks/tdc/results/default_no_elimination
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402


def derive(src: Path, dst: Path) -> int:
    n = 0
    for path in sorted(src.glob("*/seed*.json")):
        rec = json.loads(path.read_text())
        if "score_without_elimination" not in rec:
            raise SystemExit(f"{path}: no score_without_elimination (written before backward elimination existed)")
        before = rec["score_without_elimination"]
        out = {**rec, "score": rec["score"] if before is None else before, "score_with_elimination": rec["score"],
               "derived_from": f"{path} (score_without_elimination)"}
        target = dst / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(out, indent=2) + "\n")
        n += 1
    report.write_summary(dst, title=f"TDC ADMET results: {src.name} without backward elimination")
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="result dir written by run.py")
    ap.add_argument("dst", type=Path, help="result dir to write")
    a = ap.parse_args(argv)
    print(f"{derive(a.src, a.dst)} seed results -> {a.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
