"""A small trainable sample of the SQuAD dev set and a seconds-long keyed training run on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_lib.core.data import require
from course_lib.core.digests import file_digest
from course_lib.core.training import History
from course_lib.qa.batching import build_vocab, encode, trainable
from course_lib.qa.config import SMOKE, QASettings
from course_lib.qa.data import QAExample, build_examples, load_squad
from course_lib.qa.evaluation import evaluate
from course_lib.qa.pipeline import (
    checkpoint_key,
    checkpoint_name,
    embeddings_digest,
    make_reader,
    predict_spans,
    spans_to_predictions,
    train_reader,
)


@dataclass
class DevSample:
    """Questions among the first 64 of the first dev article whose answers fit in ``window`` tokens,
    their vocabulary, that article and the dev file's digest."""

    examples: list[QAExample]
    vocab: list[str]
    index: dict[str, int]
    articles: list[dict[str, Any]]
    digest: str
    window: int = 24


def dev_sample() -> DevSample:
    """The sample (see :class:`DevSample`)."""
    path = require("squad-v1.1") / "dev-v1.1.json"
    articles = load_squad(path)[:1]
    examples = trainable(build_examples(articles)[:64], window=DevSample.window)
    vocab = build_vocab(examples)
    return DevSample(examples, vocab, {w: i for i, w in enumerate(vocab)}, articles, file_digest(path))


TINY = SMOKE.override(hidden=8, max_iters=2, lr=0.01, batch_size=16, epochs=2, bilstm_epochs=2,
                      max_answer_len=5)
"""Seconds-long training on :class:`DevSample` (two epochs of four batches)."""


@dataclass
class TinyRun:
    """A trained reader's history, its EM/F1 on the sample's article and its checkpoint."""

    history: History
    scores: dict[str, float]
    checkpoint: Path
    key: dict[str, Any]


def train_tiny(sample: DevSample, kind: str, folder: Path, settings: QASettings = TINY, *,
               data_digest: str | None = None) -> TinyRun:
    """Seed, build a ``kind`` reader, train it on ``sample`` with a keyed checkpoint in ``folder``,
    predict and score: the same call gives the same run."""
    vectors = torch.randn(len(sample.vocab), 8, generator=torch.Generator().manual_seed(0))
    key = checkpoint_key(kind, settings, seed=0, data_digest=data_digest or sample.digest,
                         embeddings_digest=embeddings_digest(sample.vocab, vectors))
    path = folder / checkpoint_name(key)
    torch.manual_seed(0)
    model = make_reader(kind, vectors, settings)
    encoded = encode(sample.examples, sample.index, window=sample.window, seed=0)
    history = train_reader(model, encoded, settings, kind=kind, device="cpu", checkpoint_path=path,
                           checkpoint_key=key)
    spans = predict_spans(model, encode(sample.examples, sample.index), settings, device="cpu")
    scores = evaluate(sample.articles, spans_to_predictions(sample.examples, spans))
    return TinyRun(history, scores, path, key)
