"""What a pruned concern module still does: classification report, sparsity, representation
similarity to the original model (CCA, linear CKA, RBF CKA) and exp(mean cross-entropy), per concern.

:func:`modularize` runs the whole experiment (every concern x every pruning method) and returns one
table of concerns x metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import classification_report
from torch import nn
from tqdm.auto import tqdm

from course_lib.core.training import progress_enabled

from .config import ModularizationSettings
from .data import TopicSplit, concern_indices, concern_samples, encode, trim_padding
from .masks import overall_sparsity, pruned_sparsity, sparsity_table
from .pruning import find_layers, prune_concern
from .similarity import cca_similarity, kernel_cka, linear_cka


@dataclass
class Outputs:
    """A model's outputs on N inputs: ``logits`` (N, K), last-layer states ``hidden`` (N, T, H),
    ``attention_mask`` (N, T) and ``labels`` (N,)."""

    logits: torch.Tensor
    hidden: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def subset(self, index: np.ndarray) -> Outputs:
        """The outputs of the inputs at ``index``."""
        i = torch.as_tensor(index, dtype=torch.long)
        return Outputs(self.logits[i], self.hidden[i], self.attention_mask[i], self.labels[i])

    def tokens(self) -> torch.Tensor:
        """States of the M non-padding tokens, (M, H)."""
        return self.hidden[self.attention_mask.bool()]

    def predictions(self) -> np.ndarray:
        return self.logits.argmax(-1).numpy()

    def perplexity(self) -> float:
        """exp(mean cross-entropy) of the true labels."""
        return float(torch.nn.functional.cross_entropy(self.logits.double(), self.labels).exp())


@torch.no_grad()
def forward(model: nn.Module, encoded: dict[str, torch.Tensor], device: torch.device,
            batch_size: int = 64) -> Outputs:
    """Run ``model`` (eval mode) on an :func:`encode` dict; outputs are on the CPU in float32.

    The inputs run shortest first, each batch cut to its longest question (:func:`trim_padding`), so
    padding costs little; ``hidden`` (N, T, H) is zero at the padding positions.
    """
    model.eval()
    n, width = encoded["input_ids"].shape
    order = torch.argsort(encoded["attention_mask"].sum(1), stable=True)
    logits: torch.Tensor | None = None
    hidden: torch.Tensor | None = None
    for index in order.split(batch_size):
        b = trim_padding({k: encoded[k][index] for k in ("input_ids", "attention_mask")})
        out = model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device),
                    output_hidden_states=True)
        states = out.hidden_states[-1].float().cpu()
        if logits is None or hidden is None:
            logits = torch.zeros(n, out.logits.shape[-1])
            hidden = torch.zeros(n, width, states.shape[-1])
        logits[index] = out.logits.float().cpu()
        hidden[index, :states.shape[1]] = states
    if logits is None or hidden is None:
        raise ValueError("forward: encoded holds no inputs (0 rows)")
    return Outputs(logits, hidden, encoded["attention_mask"], encoded["labels"])


def report(outputs: Outputs, classes: Sequence[str]) -> dict[str, Any]:
    """sklearn's classification report as a dict (per-class precision/recall/F1, accuracy)."""
    return classification_report(outputs.labels.numpy(), outputs.predictions(), labels=range(len(classes)),
                                 target_names=list(classes), output_dict=True, zero_division=0)


def predicted_counts(outputs: Outputs, classes: Sequence[str]) -> dict[str, int]:
    """How many inputs the model assigns to each class (0: a class it never predicts)."""
    counts = np.bincount(outputs.predictions(), minlength=len(classes))
    return {c: int(counts[k]) for k, c in enumerate(classes)}


def class_table(rep: dict[str, Any], predicted: dict[str, int]) -> pd.DataFrame:
    """One row per class of a :func:`report`: precision, recall, F1, support and ``predicted`` (how many
    inputs the model assigned to the class)."""
    rows = {c: {"precision": rep[c]["precision"], "recall": rep[c]["recall"], "f1": rep[c]["f1-score"],
                "support": int(rep[c]["support"]), "predicted": n} for c, n in predicted.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def similarities(original: Outputs, pruned: Outputs, cca_components: int) -> dict[str, float]:
    """CCA (SVCCA with ``cca_components``), linear CKA and RBF CKA of the token states (M, H)."""
    X, Y = original.tokens(), pruned.tokens()
    return {"cca": cca_similarity(X, Y, n_components=cca_components),
            "linear_cka": linear_cka(X, Y), "kernel_cka": kernel_cka(X, Y)}


@dataclass
class ConcernResult:
    """The table row of one concern module and its full classification report."""

    row: dict[str, Any]
    report: dict[str, Any]
    sparsity: dict[str, float]
    predicted: dict[str, int]


def evaluate_module(
    module: nn.Module,
    concern: int,
    classes: Sequence[str],
    original: Outputs,
    pruned: Outputs,
    *,
    layer_names: Sequence[str],
    seed: int,
    cca_components: int = 10,
) -> ConcernResult:
    """Evaluate the pruned ``module`` of ``concern`` from the original's and its outputs on the test set.

    Similarity and perplexity are measured on the concern's test inputs and on as many non-concern
    test inputs (spread evenly over the other classes).
    """
    name = classes[concern]
    rep = report(pruned, classes)
    labels = pruned.labels.numpy()
    others = labels != concern
    base = report(original, classes)[name]
    row: dict[str, Any] = {
        "concern": name,
        "accuracy": rep["accuracy"],
        "original_accuracy": float(np.mean(original.predictions() == labels)),
        "concern_precision": rep[name]["precision"],
        "concern_recall": rep[name]["recall"],
        "concern_f1": rep[name]["f1-score"],
        "support": int(rep[name]["support"]),
        "original_concern_precision": base["precision"],
        "original_concern_recall": base["recall"],
        "original_concern_f1": base["f1-score"],
        "non_concern_accuracy": float(np.mean(pruned.predictions()[others] == labels[others])),
        "original_non_concern_accuracy": float(np.mean(original.predictions()[others] == labels[others])),
        "sparsity": pruned_sparsity(module, layer_names),
        "overall_sparsity": overall_sparsity(module),
    }
    pos, neg = concern_indices(labels, concern, None, seed)
    for tag, index in (("concern", pos), ("non_concern", neg)):
        o, p = original.subset(index), pruned.subset(index)
        for metric, value in similarities(o, p, cca_components).items():
            row[f"{metric}_{tag}"] = value
        row[f"perplexity_original_{tag}"] = o.perplexity()
        row[f"perplexity_pruned_{tag}"] = p.perplexity()
    return ConcernResult(row, rep, sparsity_table(module, layer_names), predicted_counts(pruned, classes))


def resolve_concerns(concerns: Sequence[int | str] | None, classes: Sequence[str]) -> list[int]:
    """Class indices for ``concerns`` given as names or indices (``None`` = every class)."""
    if concerns is None:
        return list(range(len(classes)))
    out = []
    for c in concerns:
        if isinstance(c, str) and c in classes:
            out.append(list(classes).index(c))
        elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(classes):
            out.append(c)
        else:
            raise ValueError(f"concerns holds {c!r}, which is not a class of the data; choose class names "
                             f"from {list(classes)} or indices 0..{len(classes) - 1} (None: every class)")
    return out


@dataclass
class Modularization:
    """The experiment's results: ``table`` (one row per module), the full per-module results keyed
    by ``(method, concern name)`` and the original model's classification report."""

    table: pd.DataFrame
    modules: dict[tuple[str, str], ConcernResult]
    original_report: dict[str, Any]
    original_predicted: dict[str, int]

    def original_classes(self) -> pd.DataFrame:
        """The original model's per-class table (see :func:`class_table`)."""
        return class_table(self.original_report, self.original_predicted)

    def concern_table(self) -> pd.DataFrame:
        """One row per module: its own concern's precision, recall, F1 and support, beside the
        original model's on the same class and test questions."""
        columns = ["method", "concern", "support", "original_concern_precision", "concern_precision",
                   "original_concern_recall", "concern_recall", "original_concern_f1", "concern_f1"]
        return self.table[columns]


def modularize(
    model: nn.Module,
    tokenizer,
    train: TopicSplit,
    test: TopicSplit,
    settings: ModularizationSettings,
    *,
    device: torch.device,
    seed: int,
    cca_components: int = 10,
    progress: bool | None = None,
) -> Modularization:
    """Prune one module per (concern, method) and evaluate it; ``model`` (on ``device``) is never changed.

    Uses ``settings.concerns`` (see :func:`resolve_concerns`), ``methods``, ``num_samples``,
    ``sparsity_ratio``, ``score``, ``negative_weight``, ``max_length``, ``include`` and ``exclude``.
    Positive / negative samples (``num_samples`` each) come from ``train``; evaluation uses ``test``.
    The table has one row per module: ``method``, ``concern`` and the metrics.
    ``progress=None`` shows a progress bar unless ``TQDM_DISABLE`` is set.
    """
    s = settings
    concerns = resolve_concerns(s.concerns, test.classes)
    layer_names = list(find_layers(model, s.include, s.exclude))
    test_encoded = encode(tokenizer, test, s.max_length)
    original = forward(model, test_encoded, device)
    results: dict[tuple[str, str], ConcernResult] = {}
    jobs = [(m, c) for m in s.methods for c in concerns]
    show = progress_enabled(progress)
    for method, concern in tqdm(jobs, desc="concern modules", disable=not show):
        pos, neg = concern_samples(train, concern, s.num_samples, seed)
        positives, negatives = encode(tokenizer, pos, s.max_length), encode(tokenizer, neg, s.max_length)
        module = prune_concern(model, positives, negatives, sparsity_ratio=s.sparsity_ratio, method=method,
                               score=s.score, negative_weight=s.negative_weight, include=s.include,
                               exclude=s.exclude)
        pruned = forward(module, test_encoded, device)
        result = evaluate_module(module, concern, test.classes, original, pruned, layer_names=layer_names,
                                 seed=seed, cca_components=cca_components)
        result.row = {"method": method, **result.row}
        results[(method, test.classes[concern])] = result
        del module
    table = pd.DataFrame([r.row for r in results.values()])
    return Modularization(table, results, report(original, test.classes),
                          predicted_counts(original, test.classes))


def headline_metrics(result: Modularization, methods: Sequence[str]) -> dict[str, float]:
    """Flat metrics for ``metrics.json``: means over concerns, unprefixed for ``methods[0]`` and
    prefixed ``<method>_`` for every method, each beside the original model's value on the same
    questions (``mean_original_*``); ``sparsity`` is the share of zeros among the pruned layers' weights
    (the ratio asked for), ``overall_sparsity`` the course's figure (over every linear layer). The
    margins (``methods[0]``): ``concern_recall_minus_original``, ``concern_f1_minus_original`` and
    ``concern_recall_minus_non_concern_accuracy`` (a module keeps its class better than the rest)."""
    metrics: dict[str, float] = {"original_accuracy": float(result.original_report["accuracy"])}
    columns = {"mean_pruned_accuracy": "accuracy", "sparsity": "sparsity",
               "overall_sparsity": "overall_sparsity"}
    for metric in ("concern_precision", "concern_recall", "concern_f1", "non_concern_accuracy"):
        columns[f"mean_{metric}"] = metric
        columns[f"mean_original_{metric}"] = f"original_{metric}"
    columns.update({f"mean_{m}_{t}": f"{m}_{t}" for m in ("cca", "linear_cka", "kernel_cka")
                    for t in ("concern", "non_concern")})
    for i, method in enumerate(methods):
        rows = result.table[result.table["method"] == method]
        for key, column in columns.items():
            value = float(rows[column].mean())
            metrics[f"{method}_{key}"] = value
            if i == 0:
                metrics[key] = value
    for metric in ("concern_recall", "concern_f1"):
        metrics[f"{metric}_minus_original"] = metrics[f"mean_{metric}"] - metrics[f"mean_original_{metric}"]
    metrics["concern_recall_minus_non_concern_accuracy"] = (
        metrics["mean_concern_recall"] - metrics["mean_non_concern_accuracy"])
    return metrics


def baseline_margins(result: Modularization, baseline: Modularization, method: str) -> dict[str, float]:
    """The ``method`` modules of ``result`` against the concern-blind ``baseline`` (the same concerns
    pruned with ``score="random"`` at the same ratio): the baseline's mean concern F1, recall and
    accuracy (``mean_random_*``) and the margins ``concern_f1_minus_random``,
    ``concern_recall_minus_random``."""
    ours = result.table[result.table["method"] == method]
    blind = baseline.table[baseline.table["method"] == method]
    if list(ours["concern"]) != list(blind["concern"]):
        raise ValueError(f"the baseline pruned {list(blind['concern'])}, the modules "
                         f"{list(ours['concern'])}; prune the same concerns with the same method")
    metrics = {f"mean_random_{m}": float(blind[m].mean())
               for m in ("concern_f1", "concern_recall", "accuracy")}
    for m in ("concern_f1", "concern_recall"):
        metrics[f"{m}_minus_random"] = float(ours[m].mean()) - metrics[f"mean_random_{m}"]
    return metrics
