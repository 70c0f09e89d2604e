"""Training curves and error analysis: per-epoch tables, per-step loss curves, scores by question word
and by answer length, example tables, attention heatmaps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_lib.core.settings import check_choice
from course_lib.core.training import History
from course_lib.qa.data import QAExample

QUESTION_WORDS = ("what", "who", "when", "where", "why", "how", "which")
LENGTH_BUCKETS = ((1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 5, "4-5"), (6, 10**9, "6+"))


def question_word(question_tokens: list[str]) -> str:
    """The first of what/who/when/where/why/how/which in the question, else ``"other"``."""
    for token in question_tokens:
        if token.lower() in QUESTION_WORDS:
            return token.lower()
    return "other"


def answer_length_bucket(example: QAExample) -> str:
    """Length in tokens of the first ground truth, bucketed as 1, 2, 3, 4-5, 6+."""
    n = len(example.answers[0].split()) if example.answers else 0
    return next((name for lo, hi, name in LENGTH_BUCKETS if lo <= n <= hi), LENGTH_BUCKETS[0][2])


def breakdown(
    examples: list[QAExample], scores: Mapping[str, Mapping[str, tuple[float, float]]], by: str
) -> pd.DataFrame:
    """EM and F1 (%) per group and reader. ``scores``: reader -> {qid: (em, f1)};
    ``by``: ``"question word"`` or ``"answer length"``. Rows: groups with their question count."""
    group_of = {"question word": lambda ex: question_word(ex.question_tokens),
                "answer length": answer_length_bucket}
    check_choice("by", by, group_of)
    rows = []
    for ex in examples:
        row: dict[str, Any] = {by: group_of[by](ex)}
        for reader, per_question in scores.items():
            em, f1 = per_question[ex.qid]
            row[f"{reader} EM"], row[f"{reader} F1"] = 100 * em, 100 * f1
        rows.append(row)
    frame = pd.DataFrame(rows)
    table = frame.groupby(by).mean().round(1)
    table.insert(0, "questions", frame.groupby(by).size())
    order = (list(QUESTION_WORDS) + ["other"]) if by == "question word" else [b[2] for b in LENGTH_BUCKETS]
    return table.reindex([g for g in order if g in table.index])


def plot_breakdown(table: pd.DataFrame, metric: str = "F1", ax=None):
    """Grouped bars of ``metric`` per group (one bar per reader); returns the Axes."""
    cols = [c for c in table.columns if c.endswith(f" {metric}")]
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    x = np.arange(len(table))
    width = 0.8 / max(len(cols), 1)
    for i, col in enumerate(cols):
        ax.bar(x + i * width - 0.4 + width / 2, table[col], width, label=col.removesuffix(f" {metric}"))
    ax.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(table.index, table["questions"], strict=True)],
                  fontsize=8)
    ax.set(ylabel=f"{metric} (%)", xlabel=table.index.name)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


def examples_table(
    examples: list[QAExample], predictions: Mapping[str, Mapping[str, str]], n: int = 8, seed: int = 0
) -> pd.DataFrame:
    """``n`` seeded random questions with their ground truths and each reader's prediction."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(examples), size=min(n, len(examples)), replace=False)
    rows = []
    for i in sorted(picked.tolist()):
        ex = examples[i]
        row = {"question": ex.question, "ground truths": " | ".join(dict.fromkeys(ex.answers))}
        row.update({reader: preds.get(ex.qid, "") for reader, preds in predictions.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_attention(
    example: QAExample, attention: np.ndarray, span: tuple[int, int] | None = None,
    max_rows: int = 40, ax=None,
):
    """Heatmap of (T, J) document-to-question attention, for up to ``max_rows`` context tokens
    centred on ``span`` (default: the gold span), whose rows are marked; returns the Axes."""
    span = span or example.span or (0, 0)
    T = min(len(example.context_tokens), attention.shape[0])
    lo = max(0, min((span[0] + span[1]) // 2 - max_rows // 2, T - max_rows))
    hi = min(T, lo + max_rows)
    J = len(example.question_tokens)
    ax = ax or plt.subplots(figsize=(0.3 * J + 2.5, 0.2 * (hi - lo) + 1.5))[1]
    im = ax.imshow(attention[lo:hi, :J], aspect="auto", cmap="viridis")
    ax.set_xticks(range(J), example.question_tokens, rotation=90, fontsize=8)
    labels = [("> " if span[0] <= t <= span[1] else "") + example.context_tokens[t] for t in range(lo, hi)]
    ax.set_yticks(range(hi - lo), labels, fontsize=7)
    ax.set(xlabel="question token", ylabel="context token ('>' = answer)")
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    return ax


def training_table(
    history: History, terms: int, initial: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Per epoch (index ``epoch``; epoch 0 = ``initial``, the untrained reader's validation metrics):
    the training loss as optimised and per pointer (divided by ``terms``, see ``qa.loss_terms``), the
    validation loss (final start + end) and per pointer (halved), validation EM and F1."""
    rows = [{"epoch": 0, **initial}] if initial is not None else []
    rows += history.epochs
    table = pd.DataFrame([{
        "epoch": r["epoch"],
        "train loss": r.get("train_loss", np.nan),
        "train loss / pointer": r.get("train_loss", np.nan) / terms,
        "val loss": r["val_loss"],
        "val loss / pointer": r["val_loss"] / 2,
        "val EM": r["val_exact_match"],
        "val F1": r["val_f1"],
    } for r in rows])
    return table.set_index("epoch")


def plot_training(tables: Mapping[str, pd.DataFrame], curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                  axes) -> None:
    """Left: each reader's per-step training loss per pointer (``curves``: ``(x, loss)`` from
    :meth:`~course_lib.core.training.History.step_curve`)
    and its validation loss per pointer per epoch (``tables``, see :func:`training_table`); right:
    validation F1 per epoch. ``axes``: two Axes."""
    left, right = axes
    for i, (name, table) in enumerate(tables.items()):
        color = f"C{i}"
        if name in curves:
            left.plot(*curves[name], color=color, lw=1, alpha=0.8, label=f"{name}: train (per step)")
        left.plot(table.index, table["val loss / pointer"], "o--", color=color, label=f"{name}: validation")
        right.plot(table.index, table["val F1"], "o-", color=color, label=name)
    left.set(xlabel="epoch", ylabel="cross-entropy per pointer", title="loss per start/end pointer")
    right.set(xlabel="epoch", ylabel="F1 (%)", title="validation F1")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
