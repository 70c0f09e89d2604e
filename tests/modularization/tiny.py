"""A synthetic 3-topic task, a tiny BERT and its settings, shared by the course_lib.modularization tests."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

from course_lib.modularization import ModularizationSettings
from course_lib.modularization.config import SMOKE
from course_lib.modularization.data import TopicSplit

CLASSES = ("alpha", "beta", "gamma")
CPU = torch.device("cpu")
SETTINGS: ModularizationSettings = dataclasses.replace(
    SMOKE, model_name="tiny-bert-test", dataset="ag-news", train_per_class=None, max_length=10, epochs=6,
    lr=3e-3, batch_size=16, freeze_layers=0, concerns=(0, 2), num_samples=20,
)
"""Settings of the tiny BERT on the synthetic task (``dataset`` only enters the cache key)."""


def synthetic_split(n: int, seed: int) -> TopicSplit:
    """Texts of 3 topics: 3 words from the topic's own 8 words, 3 from 8 shared words, shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    texts = []
    for k in labels:
        words = [f"{CLASSES[k]}{j}" for j in rng.integers(0, 8, 3)]
        words += [f"common{j}" for j in rng.integers(0, 8, 3)]
        texts.append(" ".join(rng.permutation(words)))
    return TopicSplit(texts, labels.astype(np.int64), CLASSES)


def tiny_bert(vocab_size: int) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(config).eval()
