"""Fixtures of the course_lib.modularization tests: a word-level tokenizer for the synthetic task and
the tiny BERT fine-tuned on it once (with its cache folder)."""

from __future__ import annotations

import pytest
from transformers import BertTokenizer

from course_lib.modularization import encode, fine_tune

from .tiny import CLASSES, CPU, SETTINGS, synthetic_split, tiny_bert


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    words = [f"{c}{j}" for c in (*CLASSES, "common") for j in range(8)]
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    return BertTokenizer(str(vocab))


@pytest.fixture(scope="session")
def trained(tokenizer, tmp_path_factory):
    """A tiny BERT fine-tuned (with course_lib.core.training.fit) on the synthetic task, and its cache dir."""
    out = tmp_path_factory.mktemp("finetune")
    model = tiny_bert(tokenizer.vocab_size)
    train, test = synthetic_split(240, 0), synthetic_split(60, 1)
    result = fine_tune(model, encode(tokenizer, train, 10), encode(tokenizer, test, 10), SETTINGS, out, CPU,
                       seed=0, data_digest="v1", progress=False)
    return model, result, out, train, test
