"""Scaling study of Uni-Mol2 pretraining at small scale: validation loss vs parameters and vs training tokens.

Every run uses the same corpus (first 20k MOSES rows minus TDC test molecules, identical conformers and
validation molecules), objective and schedule; only [model] differs (recipes in scaling/). Run them with
`uniqsar pretrain` (see README.md), then:

    python benchmarks/pretrain/scaling.py --runs s0=/work/pt/s0 s1=/work/pt/s1 s2=/work/pt/s2 \
        --out benchmarks/pretrain/results/scaling

Fits, on the held-out validation loss (total, and the MLM term alone):
  * L(N) = a * N^-alpha over the final losses of the runs (N = all parameters incl. the LM head);
  * L(D) = b * D^-beta per run over its validation curve after 2x warmup (D = training tokens = atoms seen,
    molecules seen x the run's measured tokens per molecule).
Both are straight-line fits in log-log space. Writes OUT.json, OUT.md and OUT.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def power_fit(x, y) -> dict:
    """y = a * x^-alpha by least squares in log-log space; returns a, alpha and R^2 (log space)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    slope, icept = np.polyfit(lx, ly, 1)
    pred = icept + slope * lx
    r2 = 1 - ((ly - pred) ** 2).sum() / max(((ly - ly.mean()) ** 2).sum(), 1e-300)
    return {"a": float(np.exp(icept)), "alpha": float(-slope), "r2": float(r2)}


def load_run(path: Path) -> dict:
    card = json.loads((path / "model_card.json").read_text())
    val = pd.read_csv(path / "val_losses.csv")
    tr = pd.read_csv(path / "losses.csv")
    mols_per_step = tr.set_index("step")["mols"]
    cum = mols_per_step.cumsum()
    atoms_per_mol = card["tokens_seen"] / card["molecules_seen"]  # measured over the run's own batches
    val["tokens"] = cum.reindex(val["step"]).to_numpy() * atoms_per_mol
    return {"params": int(card["num_params"]), "val": val, "card": card,
            "warmup": int(card["recipe"]["train"]["warmup_steps"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, metavar="NAME=DIR")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    runs = {}
    for item in a.runs:
        name, _, d = item.partition("=")
        runs[name] = load_run(Path(d))
    runs = dict(sorted(runs.items(), key=lambda kv: kv[1]["params"]))
    res = {"runs": {}, "fits": {}}
    for term in ("loss", "mlm"):
        final = {n: float(r["val"][term].iloc[-1]) for n, r in runs.items()}
        res["fits"][f"{term}_vs_params"] = power_fit([runs[n]["params"] for n in runs], list(final.values()))
        for n, r in runs.items():
            v = r["val"][r["val"]["step"] > 2 * r["warmup"]]
            res["fits"][f"{term}_vs_tokens[{n}]"] = power_fit(v["tokens"], v[term])
    for n, r in runs.items():
        last = r["val"].iloc[-1]
        res["runs"][n] = {"params": r["params"], "steps": int(last["step"]), "tokens": float(last["tokens"]),
                          "final_val_loss": float(last["loss"]), "final_val_mlm": float(last["mlm"]),
                          "final_val_coord": float(last["coord"]), "final_val_dist": float(last["dist"]),
                          "train_seconds": r["card"]["elapsed_s"], "model": r["card"]["config"]}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    md = ["# Uni-Mol2 pretraining scaling (MOSES 20k, identical data and schedule; held-out validation loss)", "",
          "| run | parameters | steps | tokens (heavy atoms) | val loss | val MLM | val coord | val dist |",
          "|---|---|---|---|---|---|---|---|"]
    for n, r in res["runs"].items():
        md.append(f"| {n} | {r['params']:,} | {r['steps']} | {r['tokens']:.3g} | {r['final_val_loss']:.4f} | "
                  f"{r['final_val_mlm']:.4f} | {r['final_val_coord']:.4f} | {r['final_val_dist']:.4f} |")
    md += ["", "| fit | a | exponent | R² (log-log) |", "|---|---|---|---|"]
    for k, f in res["fits"].items():
        md.append(f"| {k} | {f['a']:.4g} | {f['alpha']:.4f} | {f['r2']:.3f} |")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    plot(runs, res, out.with_suffix(".png"))
    return 0


def plot(runs: dict, res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, term in zip(axes[:2], ("loss", "mlm")):
        for n, r in runs.items():
            v = r["val"]
            ax.loglog(v["tokens"], v[term], "o-", ms=3, label=f"{n} ({r['params'] / 1e6:.2f}M)")
            f = res["fits"][f"{term}_vs_tokens[{n}]"]
            x = v["tokens"][v["step"] > 2 * r["warmup"]]
            ax.loglog(x, f["a"] * x ** -f["alpha"], "k:", lw=1)
        ax.set_xlabel("training tokens (heavy atoms seen)")
        ax.set_ylabel(f"validation {term}")
        ax.set_title(f"validation {term} vs tokens (dotted: power-law fits)")
        ax.legend(fontsize=8)
    ax = axes[2]
    n_params = np.array([r["params"] for r in runs.values()], float)
    for term, c in (("loss", "C0"), ("mlm", "C1")):
        y = [float(r["val"][term].iloc[-1]) for r in runs.values()]
        f = res["fits"][f"{term}_vs_params"]
        xs = np.geomspace(n_params.min() / 1.5, n_params.max() * 1.5, 50)
        ax.loglog(n_params, y, "o", color=c, label=f"final val {term}")
        ax.loglog(xs, f["a"] * xs ** -f["alpha"], "--", color=c, label=f"fit: N^-{f['alpha']:.3f} (R² {f['r2']:.2f})")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("validation loss")
    ax.set_title("final validation loss vs parameters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
