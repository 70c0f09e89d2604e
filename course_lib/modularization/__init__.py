"""Assignment 05: concern modularization of a fine-tuned BERT topic classifier.

- :mod:`.data`: Yahoo! Answers / AG News loaders, concern samples, tokenisation.
- :mod:`.finetune`: the MiniLM classifier, fine-tuned with ``course_lib.training.fit`` and cached.
- :mod:`.pruning`: concern scores of feed-forward weights, unstructured / structured pruning.
- :mod:`.evaluation`: per-module report, sparsity, similarity, and the whole experiment.
- :mod:`.plots`: similarity heatmap, per-class F1 bars.
"""

from .data import concern_samples, encode, load_topics, per_class_sample
from .evaluation import modularize, resolve_concerns
from .finetune import FineTuneSettings, fine_tune, load_classifier
from .pruning import concern_scores, find_layers, keep_mask, prune_concern

__all__ = [
    "FineTuneSettings",
    "concern_samples",
    "concern_scores",
    "encode",
    "find_layers",
    "fine_tune",
    "keep_mask",
    "load_classifier",
    "load_topics",
    "modularize",
    "per_class_sample",
    "prune_concern",
    "resolve_concerns",
]
