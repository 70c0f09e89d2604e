"""Looking at a trained language identifier: per-language F1, confusions, examples, predictions, plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from course_lib.core.plots import plot_confusion_matrix, plot_curves
from course_lib.langid.experiments import SettingResult


def predict_language(model: Any, texts: str | Sequence[str], languages: Sequence[str]) -> list[str]:
    """ISO 639-3 codes predicted by a trained pipeline for ``texts`` (a string or a list of strings).

    Raises ``TypeError`` for non-text input and ``ValueError`` for empty or blank strings.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, bytes):
        raise TypeError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is a {type(text).__name__} ({text!r}); expected a str")
        if not text.strip():
            raise ValueError(f"texts[{i}] is empty or blank ({text!r}); give some text to identify")
    if not texts:
        raise ValueError("texts is empty; give at least one string")
    return [languages[k] for k in np.asarray(model.predict(list(texts)))]


def per_language_report(y_true: np.ndarray, y_pred: np.ndarray, languages: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per language (rows sorted by F1, worst first)."""
    labels = np.arange(len(languages))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    frame = pd.DataFrame({"language": list(languages), "precision": p, "recall": r, "f1": f, "support": s})
    return frame.sort_values(["f1", "language"]).set_index("language").round(3)


def most_confused_pairs(
    y_true: np.ndarray, y_pred: np.ndarray, languages: Sequence[str], top: int = 5
) -> pd.DataFrame:
    """The ``top`` (true, predicted) pairs with the most errors, with the share of the true class."""
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(len(languages)))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    rows = []
    for flat in order:
        i, j = np.unravel_index(flat, off.shape)
        if off[i, j] == 0:
            break
        rows.append({"true": languages[i], "predicted": languages[j], "errors": int(off[i, j]),
                     "share of true": round(off[i, j] / cm[i].sum(), 3)})
    return pd.DataFrame(rows, columns=["true", "predicted", "errors", "share of true"])


def confused_examples(
    texts: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray, languages: Sequence[str],
    true: str, predicted: str, n: int = 3, width: int = 100,
) -> list[str]:
    """Up to ``n`` texts of language ``true`` predicted as ``predicted`` (cut to ``width`` chars)."""
    for code in (true, predicted):
        if code not in languages:
            raise ValueError(f"language {code!r} is not among the classes {list(languages)}")
    i, j = list(languages).index(true), list(languages).index(predicted)
    hits = np.flatnonzero((np.asarray(y_true) == i) & (np.asarray(y_pred) == j))[:n]
    return [texts[k] if len(texts[k]) <= width else texts[k][: width - 3] + "..." for k in hits]


def plot_settings(results: Sequence[SettingResult]):
    """Per run: training loss per mini-batch (x in epochs) and validation accuracy per epoch, beside
    the training and test accuracy (bars)."""
    fig, (ax_loss, ax_curve, ax_bar) = plt.subplots(1, 3, figsize=(14, 3.8),
                                                    gridspec_kw={"width_ratios": [3, 3, 2]})
    for r in results:
        losses = [b for e in r.history for b in e["batch_loss"]]
        per_epoch = len(r.history[0]["batch_loss"])
        ax_loss.plot(np.arange(1, len(losses) + 1) / per_epoch, losses, lw=0.8, label=r.name)
    ax_loss.set(xscale="log", xlabel="epoch (log scale)", ylabel="training loss (per batch)",
                title="Training loss")
    ax_loss.grid(alpha=0.3)
    plot_curves({r.name: [e["valid_acc"] for e in r.history] for r in results}, ylabel="validation accuracy",
                title="Validation accuracy", ax=ax_curve)
    ax_curve.set_xscale("log")
    ax_curve.set_xlabel("epoch (log scale)")
    ax_curve.legend(fontsize=7)
    names = [r.name for r in results]
    ks = np.arange(len(results))
    ax_bar.barh(ks - 0.2, [r.train_accuracy for r in results], 0.4, color="tab:gray", label="train")
    ax_bar.barh(ks + 0.2, [r.test_accuracy for r in results], 0.4, color="tab:blue", label="test")
    ax_bar.set_yticks(ks, names, fontsize=8)
    ax_bar.invert_yaxis()
    ax_bar.set(xlabel="accuracy", xlim=(0, 1), title="Training and test accuracy")
    for k, r in enumerate(results):
        ax_bar.text(r.test_accuracy + 0.01, k + 0.2, f"{r.test_accuracy:.3f}", va="center", fontsize=7)
    ax_bar.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_comparison(ours: dict[str, float], course: dict[str, float]):
    """Bar chart of our test accuracies beside the course's published figures."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = list(ours)
    xs = np.arange(len(names))
    ax.bar(xs - 0.2, [ours[n] for n in names], 0.4, label="this workbook")
    ax.bar(xs + 0.2, [course.get(n, np.nan) for n in names], 0.4, label="course (WiLI-2018)")
    for x, n in zip(xs, names, strict=True):
        ax.text(x - 0.2, ours[n] + 0.01, f"{ours[n]:.3f}", ha="center", fontsize=8)
        if n in course:
            ax.text(x + 0.2, course[n] + 0.01, f"{course[n]:.3f}", ha="center", fontsize=8)
    ax.set_xticks(xs, names)
    ax.set(ylabel="test accuracy", ylim=(0, 1.1), title="Test accuracy by stage")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_per_language(report: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, languages: Sequence[str]):
    """Confusion matrix (row-normalised) beside per-language F1."""
    fig, (ax_cm, ax_f1) = plt.subplots(1, 2, figsize=(14, 6.5), gridspec_kw={"width_ratios": [3, 1]})
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(len(languages)))
    plot_confusion_matrix(cm, languages, title="Strong model: confusion matrix (rows = true)", ax=ax_cm)
    ax_f1.barh(report.index, report["f1"], color="tab:green")
    ax_f1.set(xlabel="F1", xlim=(min(0.8, float(report["f1"].min())) - 0.02, 1.0), title="F1 per language")
    ax_f1.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig
