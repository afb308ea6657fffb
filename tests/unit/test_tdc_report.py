"""benchmarks/tdc/report.py --paired: the numbers the pre-registered decision rules are stated in."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "tdc"))

import report  # noqa: E402


def _write(root: Path, task: str, scores: dict[int, float]) -> None:
    (root / task).mkdir(parents=True, exist_ok=True)
    for seed, score in scores.items():
        (root / task / f"seed{seed}.json").write_text(json.dumps({"seed": seed, "score": score}))


def test_paired_counts_tasks_by_seed_mean_and_signs_the_change(tmp_path):
    base, new = tmp_path / "base", tmp_path / "new"
    _write(base, "caco2_wang", {1: 0.30, 2: 0.30})  # MAE: lower is better
    _write(new, "caco2_wang", {1: 0.27, 2: 0.30, 3: 0.01})  # seed 3 only in one dir: ignored
    _write(base, "hia_hou", {1: 0.9, 2: 0.8})  # AUROC: higher is better
    _write(new, "hia_hou", {1: 0.8, 2: 0.9})  # same mean, one seed each way
    _write(base, "herg", {1: 0.8})
    _write(new, "herg", {1: 0.72})
    text = report.paired_markdown(base, new)
    assert "| caco2_wang | mae | 2 | 0.3000 | 0.2850 | +5.00% | 1 / 0 / 1 |" in text
    assert "| hia_hou | roc_auc | 2 | 0.8500 | 0.8500 | +0.00% | 1 / 1 / 0 |" in text
    assert "| herg | roc_auc | 1 | 0.8000 | 0.7200 | -10.00% | 0 / 1 / 0 |" in text
    assert "new better on 1, worse on 1, the same on 1; mean relative change -1.67%" in text
    assert report.paired_markdown(base, tmp_path / "empty") == "The two dirs share no task-seed.\n"


def test_comparison_counts_published_baselines_and_the_reproduction_floor(tmp_path):
    from uniqsar.data.tdc import PUBLISHED

    ours, repro = tmp_path / "ours", tmp_path / "repro"
    ml, gnn = PUBLISHED["caco2_wang"]["maplight"][0], PUBLISHED["caco2_wang"]["maplight_gnn"][0]
    best = min(ml, gnn)
    _write(ours, "caco2_wang", {s: best - 0.01 + 0.001 * s for s in range(1, 6)})  # MAE: beats both, sd ~0.0016
    _write(repro, "caco2_wang", {s: best + 0.05 for s in range(1, 6)})
    _write(ours, "hia_hou", {1: 0.50, 2: 0.52})  # AUROC far below the reproduction, 2 seeds only
    _write(repro, "hia_hou", {s: 0.98 for s in range(1, 6)})
    text = report.compare_markdown([str(ours), str(repro)], ["ours", "repro"], repro="repro")
    assert "| ours | 2 (1) | 1 | 1 | " in text  # 2 tasks, 1 with 5 seeds; beats MapLight and MapLight+GNN on caco2
    assert text.rstrip().splitlines()[-2].endswith("| 1 (hia_hou) |")  # > 2 sd below the reproduction
    assert "| hia_hou | roc_auc ↑ | 0.510±0.010* |" in text  # fewer than 5 seeds are marked


def test_timing_sums_seed_seconds_per_pinned_process(tmp_path):
    root = tmp_path / "run"
    for task, cpus, secs in (("caco2_wang", [0], (10, 20)), ("hia_hou", [1], (5, 5)), ("herg", [0], (7,))):
        (root / task).mkdir(parents=True)
        for seed, sec in enumerate(secs, 1):
            (root / task / f"seed{seed}.json").write_text(json.dumps(
                {"seed": seed, "score": 0.5, "seconds": sec, "machine": {"cpus": cpus}}))
    text = report.timing_markdown(root)
    assert "5 task-seeds" in text and "cpus [0]: 37 s" in text and "cpus [1]: 10 s" in text
    assert "**37 s (0.01 h)**" in text
