"""Assignment 05: concern modularization of a fine-tuned BERT topic classifier.

- :mod:`.config`: :class:`ModularizationSettings` (every knob), the profiles and :data:`ASSIGNMENT`.
- :mod:`.data`: Yahoo! Answers / AG News loaders, concern samples, tokenisation, length-sorted batches.
- :mod:`.finetune`: the MiniLM classifier, fine-tuned with ``course_lib.core.training.fit`` and cached.
- :mod:`.activations`: per-feature statistics of the pruned layers' inputs on a concern's positive and
  negative samples, collected with forward hooks.
- :mod:`.pruning`: the course's concern-identification score (and a Wanda-style one) of the
  feed-forward weights, unstructured (per row) / structured (intermediate neurons) masks.
- :mod:`.masks`: the masks applied to a copy of the model, and the sparsity they leave.
- :mod:`.similarity`: linear CKA, RBF-kernel CKA and mean canonical correlation.
- :mod:`.evaluation`: per-module report, sparsity, similarity, and the whole experiment.
- :mod:`.plots`: fine-tuning curves, similarity heatmap, per-class F1 bars.
"""

from .activations import ActivationStats, activation_stats, feature_sums, paired_batches
from .config import ASSIGNMENT, ModularizationSettings
from .data import concern_samples, dataset_digest, encode, load_topics, per_class_sample
from .evaluation import baseline_margins, headline_metrics, modularize, resolve_concerns
from .finetune import fine_tune, finetune_key, load_classifier
from .masks import apply_masks, overall_sparsity, pruned_sparsity, sparsity_table
from .plots import plot_f1_bars, plot_finetune_curves, plot_similarity_heatmap
from .pruning import (
    ci_coefficient,
    concern_scores,
    find_layers,
    keep_mask,
    prune_concern,
    wanda_scores,
)
from .similarity import cca_similarity, kernel_cka, linear_cka

__all__ = [
    "ASSIGNMENT",
    "ActivationStats",
    "ModularizationSettings",
    "activation_stats",
    "apply_masks",
    "baseline_margins",
    "cca_similarity",
    "ci_coefficient",
    "concern_samples",
    "concern_scores",
    "dataset_digest",
    "encode",
    "feature_sums",
    "find_layers",
    "fine_tune",
    "finetune_key",
    "keep_mask",
    "kernel_cka",
    "linear_cka",
    "load_classifier",
    "load_topics",
    "headline_metrics",
    "modularize",
    "overall_sparsity",
    "paired_batches",
    "per_class_sample",
    "plot_f1_bars",
    "plot_finetune_curves",
    "plot_similarity_heatmap",
    "prune_concern",
    "pruned_sparsity",
    "resolve_concerns",
    "sparsity_table",
    "wanda_scores",
]
