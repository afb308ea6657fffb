"""Report figures as inline base64 PNG ``<img>`` tags (matplotlib, the ``plot`` extra). Each function
returns HTML; without matplotlib every figure is a one-line note instead."""
from __future__ import annotations

import base64
import io

import numpy as np

NO_MATPLOTLIB = ("<p class='note'>Figure not drawn: matplotlib is not installed "
                 "(<code>pip install \"uniqsar[plot]\"</code>).</p>")


def _plt():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _img(fig, alt: str) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<img alt='{alt}' src='data:image/png;base64,{data}'>"


def _fig(w=4.2, h=3.4):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(w, h))
    ax.grid(alpha=0.3)
    return fig, ax


def target_distribution(y: np.ndarray, task: str, name: str, classes: list | None = None) -> str:
    if _plt() is None:
        return NO_MATPLOTLIB
    fig, ax = _fig()
    if task == "multiclass":
        counts = [int(np.sum(y == k)) for k in range(len(classes))]
        ax.bar([str(c) for c in classes], counts, color="#8da0cb")
        for i, c in enumerate(counts):
            ax.text(i, c, str(c), ha="center", va="bottom")
        ax.tick_params(axis="x", labelrotation=45 if len(classes) > 6 else 0)
        ax.set_ylabel("molecules")
    elif task == "binary":
        labels = [str(c) for c in classes] if classes else ["0", "1"]
        counts = [int(np.sum(y == 0)), int(np.sum(y == 1))]
        ax.bar(labels, counts, color=["#8da0cb", "#fc8d62"])
        for i, c in enumerate(counts):
            ax.text(i, c, str(c), ha="center", va="bottom")
        ax.set_ylabel("molecules")
    else:
        ax.hist(y, bins=40, color="#66a3d2")
        ax.set_xlabel(name)
        ax.set_ylabel("molecules")
    ax.set_title("target distribution (training)")
    return _img(fig, "target distribution")


def parity(y: np.ndarray, pred: np.ndarray, lower=None, upper=None) -> str:
    if _plt() is None:
        return NO_MATPLOTLIB
    fig, ax = _fig(4.2, 4.0)
    if lower is not None:
        ax.errorbar(y, pred, yerr=[pred - lower, upper - pred], fmt="none", ecolor="#9ecae1", alpha=0.6, lw=0.8,
                    label="90% interval (OOF)")
    ax.scatter(y, pred, s=6, alpha=0.6, color="#1f77b4", label="OOF prediction")
    lo, hi = float(np.nanmin([y.min(), pred.min()])), float(np.nanmax([y.max(), pred.max()]))
    ax.plot([lo, hi], [lo, hi], color="black", lw=1)
    ax.set_xlabel("measured")
    ax.set_ylabel("predicted (out of fold, nested ensemble)")
    ax.set_title("OOF parity")
    ax.legend(loc="upper left", fontsize=8)
    return _img(fig, "parity plot")


def binary_curves(y: np.ndarray, prob: np.ndarray) -> str:
    plt = _plt()
    if plt is None:
        return NO_MATPLOTLIB
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    fpr, tpr, _ = roc_curve(y, prob)
    axes[0].plot(fpr, tpr)
    axes[0].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC (AUC {auc(fpr, tpr):.3f})")
    prec, rec, _ = precision_recall_curve(y, prob)
    axes[1].plot(rec, prec)
    axes[1].axhline(np.mean(y), color="k", ls="--", lw=0.8)
    axes[1].set(xlabel="recall", ylabel="precision", title="precision-recall")
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(prob, edges) - 1, 0, 9)
    mp = [prob[which == b].mean() for b in range(10) if np.any(which == b)]
    fy = [y[which == b].mean() for b in range(10) if np.any(which == b)]
    axes[2].plot(mp, fy, "o-")
    axes[2].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[2].set(xlabel="mean predicted probability", ylabel="observed fraction of 1", title="calibration (10 bins)")
    for ax in axes:
        ax.grid(alpha=0.3)
    return _img(fig, "ROC, precision-recall and calibration curves")


def confusion(y: np.ndarray, pred: np.ndarray, classes: list) -> str:
    """Confusion matrix of the OOF arg-max predictions (rows: measured class)."""
    plt = _plt()
    if plt is None:
        return NO_MATPLOTLIB
    k = len(classes)
    counts = np.zeros((k, k), int)
    np.add.at(counts, (np.asarray(y, int), np.asarray(pred, int)), 1)
    fig, ax = plt.subplots(figsize=(max(3.6, 0.5 * k + 2), max(3.2, 0.5 * k + 1.6)))
    ax.imshow(counts, cmap="Blues")
    names = [str(c) for c in classes]
    ax.set_xticks(range(k), names, rotation=45 if k > 6 else 0)
    ax.set_yticks(range(k), names)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xlabel="predicted (out of fold, nested ensemble)", ylabel="measured", title="OOF confusion matrix")
    return _img(fig, "confusion matrix")


def coverage_curve(levels: list[float], coverage: list[float]) -> str:
    if _plt() is None:
        return NO_MATPLOTLIB
    fig, ax = _fig()
    ax.plot([0.45, 1], [0.45, 1], "k--", lw=0.8, label="nominal")
    ax.plot(levels, coverage, "o-", label="OOF (leave-one-fold-out)")
    ax.set(xlabel="confidence", ylabel="coverage", title="interval / set coverage")
    ax.legend(fontsize=8)
    return _img(fig, "coverage against nominal")


def error_vs_similarity(sim: np.ndarray, err: np.ndarray, threshold: float, label: str) -> str:
    if _plt() is None:
        return NO_MATPLOTLIB
    fig, ax = _fig(5.0, 3.6)
    ax.scatter(sim, err, s=5, alpha=0.35, color="#7f7f7f", label="OOF molecule")
    edges = np.unique(np.quantile(sim, np.linspace(0, 1, 11)))
    if len(edges) > 2:
        which = np.clip(np.digitize(sim, edges[1:-1]), 0, len(edges) - 2)
        mids = [np.median(sim[which == b]) for b in range(len(edges) - 1) if np.any(which == b)]
        means = [err[which == b].mean() for b in range(len(edges) - 1) if np.any(which == b)]
        ax.plot(mids, means, "o-", color="#d62728", label="mean per decile")
    ax.axvline(threshold, color="#1f77b4", ls="--", label=f"domain threshold {threshold:.2f}")
    ax.set(xlabel="nearest-neighbour Tanimoto similarity (other folds)", ylabel=label,
           title="OOF error against similarity")
    ax.legend(fontsize=8)
    return _img(fig, "error against similarity")
