"""Summaries of TDC ADMET benchmark results written by ``benchmarks/tdc/run.py``.

One result dir holds ``<task>/seed<k>.json`` files. This module rebuilds ``summary.json`` and
``summary.md`` for one dir (``run.py`` calls :func:`write_summary` after each task), and builds a
side-by-side comparison of several dirs::

    python benchmarks/tdc/report.py benchmarks/tdc/results/maplight            # rewrite its summary
    python benchmarks/tdc/report.py results/fast results/maplight results/default \
        [--names fast maplight default] [--out comparison.md]

Comparisons are direction-aware: MAE is lower-is-better, AUROC/AUPRC/Spearman higher-is-better.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from statistics import mean

from uniqsar.data.tdc import LEADERBOARD_BEST_METHOD, PUBLISHED, TASKS, summarize

REFERENCES = (("maplight", "MapLight"), ("maplight_gnn", "MapLight+GNN"),
              ("chemprop_rdkit", "Chemprop-RDKit"), ("leaderboard_best", "LB best"))


LEAKY_MARK = "†"
LEAKY_NOTE = ("† run with `--allow-leaky-pretraining`: uses a pretrained representation not declared TDC-clean "
              "(its pretraining may include TDC ADMET test molecules), so the score is not comparable to a clean "
              "entry")


def leaky_names(recs: list[dict]) -> list[str]:
    """Representations not declared TDC-clean that any of these seed records used (run.py `leaky_pretraining`)."""
    return sorted({f"{x['representation']} ({x.get('weights')})" for r in recs for x in r.get("leaky_pretraining") or []})


def _mark(names) -> str:
    return LEAKY_MARK if names else ""


def _footnote(entries) -> list[str]:
    """The footnote under a table whose rows carry the mark (empty when none does)."""
    names = sorted({n for e in entries for n in e})
    return ["", f"{LEAKY_NOTE}: {', '.join(names)}."] if names else []


def lower_is_better(task: str) -> bool:
    return not TASKS[task].greater_is_better


def better(task: str, a: float, b: float) -> bool:
    """True if score ``a`` is strictly better than ``b`` on ``task``."""
    return a < b if lower_is_better(task) else a > b


def load_seeds(result_dir) -> dict[str, list[dict]]:
    """``{task: [seed records sorted by seed]}`` in leaderboard task order."""
    root = Path(result_dir)
    out: dict[str, list[dict]] = {}
    for task in TASKS:
        files = sorted((root / task).glob("seed*.json")) if (root / task).is_dir() else []
        recs = []
        for f in files:
            try:
                recs.append(json.loads(f.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        if recs:
            out[task] = sorted(recs, key=lambda r: r["seed"])
    return out


def rank_among_published(task: str, mean: float) -> tuple[int, int]:
    """(rank of ``mean`` among the published reference means + ours, number of entries).

    Rank 1 is best; a published number equal to ours does not push us down (ties share a rank).
    """
    pub = [PUBLISHED[task][k][0] for k, _ in REFERENCES if k in PUBLISHED.get(task, {})]
    return 1 + sum(better(task, p, mean) for p in pub), len(pub) + 1


def summarize_dir(result_dir) -> dict[str, dict]:
    """``{task: {metric, mean, std, n_seeds, seeds, scores, seconds_mean, ...}}``."""
    summary = {}
    for task, recs in load_seeds(result_dir).items():
        scores = [r["score"] for r in recs]
        mean, std = summarize(scores, allow_fewer=True)
        secs = [r.get("seconds", float("nan")) for r in recs]
        summary[task] = {
            "metric": TASKS[task].metric, "mean": mean, "std": std, "n_seeds": len(recs),
            "seeds": [r["seed"] for r in recs], "scores": scores,
            "seconds_mean": round(sum(secs) / len(secs), 1),
            "n_fallback": max(int(r.get("n_fallback", 0)) for r in recs),
            "preset": recs[0].get("preset"), "protocol": recs[0].get("protocol"),
            "leaky_pretraining": leaky_names(recs),
        }
    return summary


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def _pub(task: str, key: str) -> str:
    v = PUBLISHED.get(task, {}).get(key)
    return f"{v[0]:.3f}±{v[1]:.3f}" if v else "—"


def summary_markdown(summary: dict[str, dict], title: str = "") -> str:
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines += ["Scores: mean ± population std over seeds, each seed rounded to 3 decimals (TDC "
              "`evaluate_many`). MAE ↓, others ↑. Rank: uniqsar's place among the 4 published "
              "numbers + itself (1 = best). Time: mean wall seconds per seed (fit + predict).", ""]
    head = ["task", "metric", "n", "uniqsar", "MapLight", "MapLight+GNN", "Chemprop-RDKit",
            "LB best (method)", "rank", "s/seed"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, s in summary.items():
        rank, n = rank_among_published(task, s["mean"])
        arrow = "↓" if lower_is_better(task) else "↑"
        lines.append("| " + " | ".join([
            task + _mark(s.get("leaky_pretraining")), f"{s['metric']} {arrow}", str(s["n_seeds"]),
            f"**{_fmt(s['mean'])}±{_fmt(s['std'])}**",
            _pub(task, "maplight"), _pub(task, "maplight_gnn"), _pub(task, "chemprop_rdkit"),
            f"{_pub(task, 'leaderboard_best')} ({LEADERBOARD_BEST_METHOD.get(task, '?')})",
            f"{rank}/{n}", f"{s['seconds_mean']:.0f}"]) + " |")
    lines += _footnote(s.get("leaky_pretraining", []) for s in summary.values())
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_summary(result_dir, title: str | None = None) -> dict[str, dict]:
    root = Path(result_dir)
    summary = summarize_dir(root)
    _atomic_write(root / "summary.json", json.dumps(summary, indent=2) + "\n")
    _atomic_write(root / "summary.md", summary_markdown(summary, title or f"TDC ADMET results: {root.name}"))
    return summary


def compare_markdown(dirs: list[str], names: list[str] | None = None, repro: str | None = None) -> str:
    """Side-by-side table of several result dirs with ratios vs MapLight and win counts against the published
    MapLight, MapLight+GNN and leaderboard best. ``repro``: the column holding our MapLight reproduction; each
    other column also counts the tasks where its mean is worse than that column's by more than 2 of its own
    seed standard deviations (issue 17's floor)."""
    names = names or [Path(d).name for d in dirs]
    if repro is not None and repro not in names:
        raise SystemExit(f"--repro {repro!r} is not one of the column names {names}")
    sums = [summarize_dir(d) for d in dirs]
    tasks = [t for t in TASKS if any(t in s for s in sums)]
    head = (["task", "metric"] + [f"{n}" for n in names] + [f"{n}/ML" for n in names]
            + ["MapLight", "MapLight+GNN", "LB best"])
    lines = ["Ratio `x/ML` = our mean / published MapLight mean (for MAE < 1 is better; otherwise > 1 is better). "
             "`*` marks fewer than 5 seeds.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    refs = ("maplight", "maplight_gnn", "leaderboard_best")
    wins = {k: [0] * len(dirs) for k in refs}
    counted, n_full = [0] * len(dirs), [0] * len(dirs)
    below = [[] for _ in dirs]  # tasks more than 2 sd below the reproduction
    rep = sums[names.index(repro)] if repro is not None else None
    for task in tasks:
        ml = PUBLISHED[task]["maplight"][0]
        cells, ratios = [], []
        for i, s in enumerate(sums):
            if task not in s:
                cells.append("—")
                ratios.append("—")
                continue
            r = s[task]
            counted[i] += 1
            n_full[i] += r["n_seeds"] >= 5
            for k in refs:
                wins[k][i] += better(task, r["mean"], PUBLISHED[task][k][0])
            if rep is not None and task in rep and names[i] != repro:
                if better(task, rep[task]["mean"], r["mean"]) and abs(rep[task]["mean"] - r["mean"]) > 2 * r["std"]:
                    below[i].append(task)
            star = "" if r["n_seeds"] >= 5 else "*"
            cells.append(f"{_fmt(r['mean'])}±{_fmt(r['std'])}{star}{_mark(r.get('leaky_pretraining'))}")
            ratios.append(f"{r['mean'] / ml:.3f}" if ml else "—")
        arrow = "↓" if lower_is_better(task) else "↑"
        lines.append("| " + " | ".join([task, f"{TASKS[task].metric} {arrow}"] + cells + ratios
                                         + [_pub(task, "maplight"), _pub(task, "maplight_gnn"),
                                            f"{_pub(task, 'leaderboard_best')} "
                                            f"({LEADERBOARD_BEST_METHOD.get(task, '?')})"]) + " |")
    lines += _footnote(r.get("leaky_pretraining", []) for s in sums for r in s.values())
    extra = f" | > 2 sd below `{repro}`" if repro is not None else ""
    lines += ["", "| run | tasks (5 seeds) | beats MapLight | beats MapLight+GNN | beats LB best" + extra + " |",
              "|---|---|---|---|---|" + ("---|" if repro is not None else "")]
    for i, n in enumerate(names):
        leaky = any(r.get("leaky_pretraining") for r in sums[i].values())
        cell = "" if repro is None else (" | —" if n == repro else f" | {len(below[i])}"
                                         + (f" ({', '.join(below[i])})" if below[i] else ""))
        lines.append(f"| {n}{_mark(leaky)} | {counted[i]} ({n_full[i]}) | {wins['maplight'][i]} | "
                     f"{wins['maplight_gnn'][i]} | {wins['leaderboard_best'][i]}{cell} |")
    return "\n".join(lines) + "\n"


def timing_markdown(result_dir) -> str:
    """Wall time of a run made of processes pinned one per core (run.py records each seed's ``machine``): the
    seconds of each process's task-seeds summed (seeds of one process run one after another, so the run's wall
    time is the largest sum), per task and in all; unpinned records are grouped as one process."""
    per_proc: dict[str, float] = {}
    rows, n, task_secs = [], 0, {}
    for task, recs in load_seeds(result_dir).items():
        secs = [float(r.get("seconds", 0.0)) for r in recs]
        task_secs[task] = sum(secs)
        n += len(recs)
        for r, sec in zip(recs, secs):
            cpus = (r.get("machine") or {}).get("cpus")
            key = f"cpus {cpus}" if cpus is not None else "unrecorded"
            per_proc[key] = per_proc.get(key, 0.0) + sec
        cpus = sorted({str((r.get("machine") or {}).get("cpus")) for r in recs})
        rows.append(f"| {task} | {len(recs)} | {sum(secs):.0f} | {min(secs):.0f}-{max(secs):.0f} | {', '.join(cpus)} |")
    wall = max(per_proc.values(), default=0.0)
    lines = [f"Timing of `{Path(result_dir).name}`: {n} task-seeds; per process (summed seed seconds): "
             + ", ".join(f"{k}: {v:.0f} s ({v / 3600:.2f} h)" for k, v in sorted(per_proc.items()))
             + f"; wall time = the largest, **{wall:.0f} s ({wall / 3600:.2f} h)**, plus start-up between seeds.", "",
             "| task | seeds | seconds (sum) | per seed | cpus |", "|---|---|---|---|---|", *rows]
    n_proc = max(len(per_proc), 1)
    if n_proc > 1:
        groups = balanced_task_lists(task_secs, n_proc)
        lines += ["", f"The same task-seeds split over {n_proc} processes by these seconds (longest task first, each "
                  "to the least loaded process) would take "
                  f"**{max(sum(task_secs[t] for t in g) for g in groups):.0f} s**; the task lists:", ""]
        lines += [f"- {sum(task_secs[t] for t in g):.0f} s: `--tasks {' '.join(g)}`" for g in groups]
    return "\n".join(lines) + "\n"


def balanced_task_lists(task_secs: dict[str, float], n_proc: int) -> list[list[str]]:
    """Longest-processing-time-first split of whole tasks (their seeds stay together, so each task's features
    are computed once) over ``n_proc`` processes: each task, longest first, goes to the least loaded one."""
    groups: list[list[str]] = [[] for _ in range(n_proc)]
    load = [0.0] * n_proc
    for task in sorted(task_secs, key=lambda t: (-task_secs[t], t)):
        i = load.index(min(load))
        groups[i].append(task)
        load[i] += task_secs[task]
    return groups


def bar_markdown(summary: dict[str, dict], ref: str = "maplight") -> str:
    """Reproduction check vs a published method: within max(2 published std, 0.01) of its mean."""
    lines = [f"Reproduction bar vs published `{ref}`: |ours - published| <= max(2 x published std, 0.01).", "",
             "| task | metric | n | ours | published | diff | bar | within |", "|---|---|---|---|---|---|---|---|"]
    n_in = n_all = 0
    for task, s in summary.items():
        pub = PUBLISHED.get(task, {}).get(ref)
        if not pub:
            continue
        diff = s["mean"] - pub[0]
        bar = max(2 * pub[1], 0.01)
        ok = abs(diff) <= bar + 1e-9
        n_in += ok
        n_all += 1
        lines.append(f"| {task}{_mark(s.get('leaky_pretraining'))} | {s['metric']} | {s['n_seeds']} | "
                     f"{_fmt(s['mean'])}±{_fmt(s['std'])} | "
                     f"{pub[0]:.3f}±{pub[1]:.3f} | {diff:+.3f} | {bar:.3f} | {'yes' if ok else 'NO'} |")
    lines += _footnote(s.get("leaky_pretraining", []) for s in summary.values())
    lines += ["", f"Within the bar on {n_in} of {n_all} tasks."]
    return "\n".join(lines) + "\n"


def ablation_markdown(result_dir) -> str:
    """Backward elimination judged on the test sets: per task and seed, the score of the ensemble uniqsar
    chose vs the same run's ensemble before elimination (``score_without_elimination``; a seed where
    nothing was dropped counts as a tie)."""
    lines = ["| task | metric | seeds | seeds with a drop | with elimination | before elimination | "
             "better / worse / same |", "|---|---|---|---|---|---|---|"]
    wins = losses = ties = 0
    diffs, leaky = [], []
    for task, seeds in sorted(load_seeds(result_dir).items()):
        pairs = [(s["score"], s["score"] if s.get("score_without_elimination") is None
                  else s["score_without_elimination"]) for s in seeds if "dropped_models" in s]
        if not pairs:
            continue
        n_drop = sum(bool(s.get("dropped_models")) for s in seeds)
        w = sum(better(task, a, b) for a, b in pairs)
        lo = sum(better(task, b, a) for a, b in pairs)
        wins, losses, ties = wins + w, losses + lo, ties + len(pairs) - w - lo
        diffs += [(b - a if lower_is_better(task) else a - b) for a, b in pairs]
        leaky.append(leaky_names(seeds))
        lines.append(f"| {task}{_mark(leaky[-1])} | {seeds[0]['metric']} | {len(pairs)} | {n_drop} | "
                     f"{mean(a for a, _ in pairs):.3f} | "
                     f"{mean(b for _, b in pairs):.3f} | {w} / {lo} / {len(pairs) - w - lo} |")
    if not diffs:
        return "No seed of this dir records the elimination ablation.\n"
    lines += _footnote(leaky)
    lines += ["", f"Over {len(diffs)} task-seeds: elimination better on {wins}, worse on {losses}, the same on "
              f"{ties}; mean change {sum(diffs) / len(diffs):+.4f} (sign-adjusted: positive = elimination better)."]
    return "\n".join(lines) + "\n"


def paired_markdown(base_dir, new_dir) -> str:
    """Two result dirs of the same tasks and seeds: per task the seed-mean of each, which is better, how many seeds
    each wins, and the sign-adjusted relative change (positive = ``new_dir`` better) -- the numbers the
    pre-registered decision rules in results/*_plan.md are stated in."""
    base, new = load_seeds(base_dir), load_seeds(new_dir)
    a_name, b_name = Path(base_dir).name, Path(new_dir).name
    lines = [f"| task | metric | seeds | {a_name} | {b_name} | relative change | seeds better / worse / same |",
             "|---|---|---|---|---|---|---|"]
    counts = {"better": 0, "worse": 0, "same": 0}
    rel, leaky = [], []
    for task in TASKS:
        a = {r["seed"]: r["score"] for r in base.get(task, [])}
        b = {r["seed"]: r["score"] for r in new.get(task, [])}
        seeds = sorted(set(a) & set(b))
        if not seeds:
            continue
        ma, mb = round(mean(a[k] for k in seeds), 9), round(mean(b[k] for k in seeds), 9)  # no float-noise ties
        change = (mb - ma) / abs(ma) * (-1 if lower_is_better(task) else 1)
        rel.append(change)
        counts["better" if better(task, mb, ma) else "worse" if better(task, ma, mb) else "same"] += 1
        w = sum(better(task, b[k], a[k]) for k in seeds)
        lo = sum(better(task, a[k], b[k]) for k in seeds)
        leaky.append(leaky_names(base.get(task, []) + new.get(task, [])))
        lines.append(f"| {task}{_mark(leaky[-1])} | {TASKS[task].metric} | {len(seeds)} | {ma:.4f} | {mb:.4f} | "
                     f"{change:+.2%} | {w} / {lo} / {len(seeds) - w - lo} |")
    if not rel:
        return "The two dirs share no task-seed.\n"
    lines += _footnote(leaky)
    lines += ["", f"Over {len(rel)} tasks (seed means on the seeds both dirs hold): {b_name} better on "
              f"{counts['better']}, worse on {counts['worse']}, the same on {counts['same']}; mean relative change "
              f"{sum(rel) / len(rel):+.2%} (sign-adjusted: positive = {b_name} better)."]
    return "\n".join(lines) + "\n"


def emit(text: str, out: str | None) -> None:
    """Write a Markdown report to ``out``, or to stdout if no path is given."""
    if out:
        Path(out).write_text(text)
    else:
        sys.stdout.write(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", help="result dirs written by run.py")
    ap.add_argument("--names", nargs="*", help="column names (default: dir names)")
    ap.add_argument("--out", help="write the comparison Markdown here (default: stdout)")
    ap.add_argument("--repro", metavar="NAME", help="the column of our MapLight reproduction: count the tasks where "
                    "each other column is more than 2 of its seed sds worse")
    ap.add_argument("--bar", metavar="METHOD", help="for one dir: reproduction check vs a published method "
                    "(maplight, maplight_gnn, chemprop_rdkit, leaderboard_best)")
    ap.add_argument("--ablation", action="store_true", help="for one dir: test scores with vs before the "
                    "stacker's backward elimination (seed JSON `score_without_elimination`)")
    ap.add_argument("--timing", action="store_true", help="for one dir: wall time of a run of pinned processes "
                    "(seed seconds summed per process)")
    ap.add_argument("--paired", action="store_true", help="for two dirs: per-task seed means, seeds won and the "
                    "mean relative change of the second dir against the first")
    args = ap.parse_args(argv)
    if args.paired:
        if len(args.dirs) != 2:
            ap.error("--paired takes two result dirs (baseline, new)")
        emit(paired_markdown(*args.dirs), args.out)
        return 0
    if args.timing:
        if len(args.dirs) != 1:
            ap.error("--timing takes one result dir")
        emit(timing_markdown(args.dirs[0]), args.out)
        return 0
    if args.ablation:
        if len(args.dirs) != 1:
            ap.error("--ablation takes one result dir")
        emit(ablation_markdown(args.dirs[0]), args.out)
        return 0
    if args.bar:
        if len(args.dirs) != 1:
            ap.error("--bar takes one result dir")
        text = bar_markdown(summarize_dir(args.dirs[0]), args.bar)
        emit(text, args.out)
        return 0
    if len(args.dirs) == 1 and not args.names:
        s = write_summary(args.dirs[0])
        print((Path(args.dirs[0]) / "summary.md").read_text(), end="")
        return 0 if s else 1
    if args.names and len(args.names) != len(args.dirs):
        ap.error("--names needs one name per dir")
    text = compare_markdown(args.dirs, args.names, args.repro)
    if args.out:  # a table file says what made it and from which code each column comes
        from uniqsar.util import source_commit

        commits = {n: sorted({r.get("git_commit") or "?" for recs in load_seeds(d).values() for r in recs})
                   for n, d in zip(args.names or [Path(d).name for d in args.dirs], args.dirs)}
        text = (f"Produced by `python benchmarks/tdc/report.py {' '.join(sys.argv[1:])}` at commit {source_commit()}. "
                "Seed-JSON commits per column: " + "; ".join(f"{n}: {', '.join(c)}" for n, c in commits.items())
                + ".\n\n" + text)
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
