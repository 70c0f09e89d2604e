"""A small trainable sample of the SQuAD dev set, shared by the batching and pipeline tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from course_lib.core.data import require
from course_lib.qa.batching import build_vocab, trainable
from course_lib.qa.data import QAExample, build_examples, load_squad


@dataclass
class DevSample:
    """Questions among the first 64 of the first dev article whose answers fit in ``window`` tokens,
    and their vocabulary."""

    examples: list[QAExample]
    vocab: list[str]
    index: dict[str, int]
    window: int = 24


@pytest.fixture(scope="module")
def dev_sample() -> DevSample:
    articles = load_squad(require("squad-v1.1") / "dev-v1.1.json")[:1]
    examples = trainable(build_examples(articles)[:64], window=DevSample.window)
    vocab = build_vocab(examples)
    return DevSample(examples, vocab, {w: i for i, w in enumerate(vocab)})
