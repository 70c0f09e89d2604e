"""Plots every assignment uses: training curves and confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def plot_curves(
    series: dict[str, Sequence[float]],
    *,
    x: Sequence[float] | np.ndarray | None = None,
    xlabel: str = "epoch",
    ylabel: str = "",
    title: str = "",
    ax=None,
):
    """Line plot of named series against ``x`` (default 1..n); returns the Axes."""
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    for name, values in series.items():
        xs = list(x) if x is not None else list(range(1, len(values) + 1))
        ax.plot(xs, values, marker="o", ms=3, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return ax


def plot_confusion_matrix(
    cm: np.ndarray, labels: Sequence[str], *, normalize: bool = True, title: str = "", ax=None
):
    """Heatmap of a (K, K) confusion matrix, rows = true class; row-normalised by default."""
    cm = np.asarray(cm, dtype=float)
    if normalize:
        cm = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None)
    k = len(labels)
    ax = ax or plt.subplots(figsize=(0.35 * k + 3, 0.35 * k + 2.5))[1]
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(k), labels, rotation=90, fontsize=7 if k > 12 else 9)
    ax.set_yticks(range(k), labels, fontsize=7 if k > 12 else 9)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if k <= 12:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{cm[i, j]:.2f}" if normalize else int(cm[i, j]), ha="center",
                        va="center", fontsize=7, color="white" if cm[i, j] > 0.5 * cm.max() else "black")
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    return ax
