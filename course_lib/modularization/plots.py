"""Figures of the concern modules: similarity heatmap and per-class F1 of original vs pruned."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

SIMILARITY_COLUMNS = (
    "cca_concern", "linear_cka_concern", "kernel_cka_concern",
    "cca_non_concern", "linear_cka_non_concern", "kernel_cka_non_concern",
)


def plot_similarity_heatmap(table: pd.DataFrame, columns: Sequence[str] = SIMILARITY_COLUMNS, ax=None):
    """Heatmap of modules (rows: method / concern) x similarity measures (values in [0, 1])."""
    values = table[list(columns)].to_numpy(dtype=float)
    rows = [f"{m} / {c}" for m, c in zip(table["method"], table["concern"], strict=True)]
    ax = ax or plt.subplots(figsize=(1.1 * len(columns) + 3, 0.45 * len(rows) + 2))[1]
    low = min(0.5, float(np.floor(10 * values.min()) / 10))  # spread the colours over the values seen
    im = ax.imshow(values, cmap="viridis", vmin=low, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)), [c.replace("_", " ") for c in columns], rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if values[i, j] > low + 0.6 * (1 - low) else "white")
    ax.set_title("original vs pruned: similarity of last-layer token states")
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    return ax


def plot_f1_bars(original_f1: dict[str, float], pruned_f1: dict[str, dict[str, float]], ax=None):
    """Grouped bars: per class, the original model's F1 and each pruned module's F1.

    ``original_f1``: class -> F1; ``pruned_f1``: module label -> (class -> F1).
    """
    classes = list(original_f1)
    groups = {"original": original_f1, **pruned_f1}
    width = 0.8 / len(groups)
    x = np.arange(len(classes))
    ax = ax or plt.subplots(figsize=(max(6, 0.9 * len(classes) + 2), 3.8))[1]
    for i, (label, f1) in enumerate(groups.items()):
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, [f1.get(c, 0.0) for c in classes], width,
               label=label, color="0.4" if label == "original" else None)
    ax.set_xticks(x, classes, rotation=35, ha="right")
    ax.set(ylabel="F1 on the test set", ylim=(0, 1.05), title="per-class F1: original vs concern modules")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_finetune_curves(history: Sequence[dict], ax=None):
    """Fine-tuning curves: every batch loss against the epoch (fractions of an epoch), the epoch's mean
    training loss, and the test accuracy after each epoch on a second axis. ``history`` is
    :attr:`FineTuneResult.history` (records with ``step_losses``, ``train_loss``, ``test_accuracy``)."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    for record in history:
        losses = record["step_losses"]
        steps = record["epoch"] - 1 + np.arange(1, len(losses) + 1) / len(losses)
        ax.plot(steps, losses, color="tab:blue", lw=1, label="batch loss" if record["epoch"] == 1 else None)
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], "o", color="tab:blue", label="epoch mean loss")
    ax.set(xlabel="epoch", ylabel="cross-entropy", title="fine-tuning", xlim=(0, max(epochs)))
    acc = ax.twinx()
    acc.plot(epochs, [r["test_accuracy"] for r in history], "s--", color="tab:orange", label="test accuracy")
    acc.set(ylabel="test accuracy", ylim=(0, 1))
    lines = ax.get_legend_handles_labels()
    more = acc.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    ax.grid(alpha=0.3)
    return ax
